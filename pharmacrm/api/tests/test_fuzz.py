"""Property-based fuzzing of the OpenAPI schema (schemathesis): every endpoint, a bounded
number of generated requests each (valid and invalid), sent with a token holding every scope.
No request may get a server error, and every response must match the schema: its status code
documented, its body the documented shape."""

import json

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from pharmacrm.api.models import Scope
from pharmacrm.wsgi import application


def _schema():
    # Built in-process (no request, no database) when the tests are collected; requests then go
    # to the WSGI application.
    raw = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(raw)))
    loaded.app = application
    return loaded


schema = _schema()
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# A bounded number per endpoint keeps the whole suite's run time in check.
EXAMPLES = 25


@pytest.fixture
def token(api, settings):
    settings.ALLOWED_HOSTS = ["localhost"]  # the Host schemathesis sends
    # Requests go through the real WSGI handler, which closes the database connection when a
    # request ends; the test's transaction must survive them (Django's test client does the
    # same).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield api(*Scope.values).token
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_every_generated_request_within_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
