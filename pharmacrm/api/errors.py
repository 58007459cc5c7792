"""One error body for every API failure:

    {"code": "invalid", "message": "…", "errors": {"field": [{"message": "…", "code": "…"}]}}

`code` is machine-readable and stable; `message` is for people; `errors` names each field (dotted
for nested ones, `lines.0.qty`), "non_field_errors" for the request as a whole.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

# Django ValidationError codes that mean "the request is fine but the state refuses it".
CONFLICT_CODES = {"insufficient_bonus", "identifier_taken", "idempotency_key_reused", "conflict"}


def _flatten(detail, prefix: str = "") -> dict[str, list[dict]]:
    """DRF's nested error detail as {"a.b.0.c": [{"message", "code"}]}."""
    out: dict[str, list[dict]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail | str) for item in detail):
            out[prefix or "non_field_errors"] = [
                {"message": str(item), "code": getattr(item, "code", "invalid")} for item in detail
            ]
        else:
            for index, item in enumerate(detail):
                if item:
                    for k, v in _flatten(
                        item, f"{prefix}.{index}" if prefix else str(index)
                    ).items():
                        out.setdefault(k, []).extend(v)
    else:
        out[prefix or "non_field_errors"] = [
            {"message": str(detail), "code": getattr(detail, "code", "invalid")}
        ]
    return out


def _django_validation(error: DjangoValidationError) -> tuple[int, dict]:
    if hasattr(error, "error_dict"):
        fields = {
            field: [{"message": m, "code": e.code or "invalid"} for e in errors for m in e.messages]
            for field, errors in error.error_dict.items()
        }
    else:
        fields = {
            "non_field_errors": [
                {"message": m, "code": e.code or "invalid"}
                for e in error.error_list
                for m in e.messages
            ]
        }
    codes = {item["code"] for items in fields.values() for item in items}
    conflict = codes & CONFLICT_CODES
    code = next(iter(conflict)) if conflict else "invalid"
    first = next(iter(fields.values()))[0]["message"]
    return (
        status.HTTP_409_CONFLICT if conflict else status.HTTP_400_BAD_REQUEST,
        {"code": code, "message": first, "errors": fields},
    )


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        status_code, body = _django_validation(exc)
        return Response(body, status=status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_handler(exc, context)
    if response is None:
        return None  # a bug: a 500, logged by Django
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.values()))[0]["message"] if fields else _("Invalid request.")
        response.data = {"code": "invalid", "message": first, "errors": fields}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = {"code": code, "message": str(detail), "errors": {}}
    return response


def not_found(request, exception=None):
    """handler404: the API's error body under /api/ (a URL no route matches, such as an id that
    is not a number), Django's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "not_found", "message": _("Not found."), "errors": {}}, status=404
        )
    return page_not_found(request, exception)


def server_error(request):
    """handler500: the API's error body under /api/ (the error itself is logged by Django)."""
    from django.http import JsonResponse
    from django.views.defaults import server_error as page

    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "server_error", "message": _("Server error."), "errors": {}}, status=500
        )
    return page(request)
