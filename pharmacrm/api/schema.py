"""Shared pieces of the OpenAPI schema: the error body every endpoint answers with."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ERROR = inline_serializer(
    name="Error",
    fields={
        "code": serializers.CharField(help_text="machine-readable, stable"),
        "message": serializers.CharField(),
        "errors": serializers.DictField(
            child=serializers.ListField(
                child=inline_serializer(
                    name="FieldError",
                    fields={"message": serializers.CharField(), "code": serializers.CharField()},
                )
            ),
            help_text="field name (dotted when nested) -> its errors",
        ),
    },
)

ERRORS = {
    400: OpenApiResponse(ERROR, description="Bad input: the fields are named in `errors`."),
    401: OpenApiResponse(ERROR, description="No token, or an unknown or revoked one."),
    403: OpenApiResponse(ERROR, description="The client lacks the scope this call needs."),
    429: OpenApiResponse(ERROR, description="The client's request limit is reached."),
}
