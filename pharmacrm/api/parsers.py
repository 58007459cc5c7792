"""The API's JSON parser: text that can be stored and echoed back, or a 400.

PostgreSQL cannot store NUL characters, and DRF's renderer cannot write back a lone surrogate
("\\ud800") that an error message echoes: both would be server errors, so the request is refused
here as malformed. The default parser of every endpoint (REST_FRAMEWORK settings)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.parsers import JSONParser


def unstorable(value: Any, path: str = "") -> str | None:
    """The dotted path of the first text PostgreSQL cannot store or the renderer cannot write
    back (NUL characters, lone surrogates), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return path or "non_field_errors"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "non_field_errors"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if unstorable(key):
                return path or "non_field_errors"
            found = unstorable(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        where = unstorable(data)
        if where:
            # A 400 naming the field, as any other bad value.
            raise exceptions.ValidationError(
                {
                    where[:200]: [
                        exceptions.ErrorDetail(
                            _("Holds characters that are not text (NUL or a lone surrogate)."),
                            code="invalid_text",
                        )
                    ]
                }
            )
        return data
