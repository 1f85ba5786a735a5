"""Shared test setup. Personas for API tests live in tests/personas.py."""

import os

os.environ.setdefault("KUMO_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))
