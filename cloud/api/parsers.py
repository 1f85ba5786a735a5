"""The one request-body parser of every API: any body is read as JSON, and JSON that no API can take
is refused here with a 400, before any view, schema or database sees it."""

from __future__ import annotations

import math
from typing import Any

from rest_framework.parsers import JSONParser

from cloud import errors

# No API body nests deeper than a few levels (scheduler hints, Keystone options); a body nested
# deeper is garbage, and recursive code after the parser (schema checks, rendering) could overflow
# the stack on it as the parser itself does on 100,000 brackets.
MAX_DEPTH = 32


class LenientJSONParser(JSONParser):
    """Reads any request body as JSON. Clients differ in the content type they send (Glance's
    json-patch type, none at all); views that stream raw bytes never touch request.data."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise errors.BadRequest(
                f"The request body nests deeper than {MAX_DEPTH} levels."
            ) from None
        check_json(data)
        return data


def check_json(data: Any) -> None:
    """Refuse what JSON can spell but nothing can store: a NUL (PostgreSQL text cannot hold one), a
    lone UTF-16 surrogate (no UTF-8 encoding exists), a number too big to be finite, and nesting
    past MAX_DEPTH. Iterative, so it cannot overflow the stack itself."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise errors.BadRequest("The request body holds a number too large to represent.")
        elif isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise errors.BadRequest(
                    f"The request body nests deeper than {MAX_DEPTH} levels."
                )
            if isinstance(value, dict):
                for key in value:
                    _check_text(key)
                pending.extend((item, depth + 1) for item in value.values())
            else:
                pending.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise errors.BadRequest("The request body holds a NUL character (\\u0000).")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise errors.BadRequest(
                "The request body holds a lone UTF-16 surrogate, which is not a character."
            ) from None
