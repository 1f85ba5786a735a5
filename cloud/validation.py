"""Request-body validation with JSON Schema, answering 400 with a message that names the field."""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from cloud.errors import BadRequest

_validators: dict[int, Draft202012Validator] = {}


def validate(schema: dict, body: Any) -> None:
    validator = _validators.get(id(schema))
    if validator is None:
        validator = _validators[id(schema)] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path) or "body"
    raise BadRequest(f"Invalid input for field/attribute {where}. {error.message}")


def name_schema(max_length: int = 255) -> dict:
    # No leading/trailing whitespace and no control characters, as Nova's name rule.
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": r"^(?![\s])[^\x00-\x1f\x7f]*(?<![\s])$",
    }


def parse_bool(value: str, refusal: str) -> bool:
    """A query parameter's true/false, as OpenStack's APIs spell them; BadRequest(refusal) if it is
    neither (each API family words that refusal its own way)."""
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(refusal)
