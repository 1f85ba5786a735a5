"""noVNC's files, as npm installed them (package.json), served read-only from that directory only."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

# The page loads noVNC's ES modules from here; the same path on the standalone proxy.
URL_PREFIX = "/console/novnc/"
# Only what the browser loads: modules and the vendored inflate/deflate code.
SERVED_DIRS = ("core", "vendor")
SERVED_SUFFIXES = {".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json"}


def novnc_dir() -> Path:
    return Path(settings.KUMO_NOVNC_DIR)


def installed() -> bool:
    return (novnc_dir() / "core" / "rfb.js").is_file()


def resolve(relative: str) -> tuple[Path, str] | None:
    """The file and content type for a path under URL_PREFIX, or None when it is not one of
    noVNC's served files (anything outside core/ and vendor/, traversal, other file types)."""
    root = novnc_dir().resolve()
    parts = [p for p in relative.split("/") if p]
    if not parts or parts[0] not in SERVED_DIRS or any(p in (".", "..") for p in parts):
        return None
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    content_type = SERVED_SUFFIXES.get(path.suffix)
    if content_type is None:
        return None
    return path, content_type
