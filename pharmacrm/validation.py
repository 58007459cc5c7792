"""Validation errors that keep their codes.

`ValidationError({"field": "message"}, code="x")` drops the code (Django applies it only to a
plain message), and the API's error body and status (409 for state refusals such as
insufficient_bonus) are chosen by code: services raise `field_error(...)` instead."""

from django.core.exceptions import ValidationError


def field_error(field: str, message, code: str) -> ValidationError:
    """A ValidationError naming `field`, with `code` kept."""
    return ValidationError({field: ValidationError(message, code=code)})
