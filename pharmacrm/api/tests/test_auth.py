"""Every API call is authenticated by an API client's token and limited to its scopes."""

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from customers.tests.factories import CustomerFactory
from pharmacrm.api.models import ApiClient, hash_key

pytestmark = pytest.mark.django_db
LOOKUP = "/api/v1/customers/"


def test_no_token_and_a_wrong_token_get_401_with_the_error_body():
    CustomerFactory(phone="+79123456789")
    response = APIClient().get(LOOKUP, {"phone": "+79123456789"})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = client.get(LOOKUP, {"phone": "+79123456789"})
    assert (response.status_code, response.json()["code"]) == (401, "invalid_token")


def test_a_client_without_the_scope_gets_403(api):
    response = api("orders:read").get(LOOKUP, {"phone": "+79123456789"})
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")


def test_a_revoked_token_stops_working_at_once(api):
    client = api("customers:read")
    assert client.get(LOOKUP, {"phone": "+79123456789"}).status_code == 200
    client.client_row.revoke()
    assert client.get(LOOKUP, {"phone": "+79123456789"}).status_code == 401


def test_tokens_are_stored_as_sha256_only(api):
    client = api("customers:read")
    row = ApiClient.objects.get(pk=client.client_row.pk)
    assert row.key_hash == hash_key(client.token) and client.token not in str(row.__dict__)


def test_create_api_client_prints_the_token_once_and_checks_scopes():
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_client",
        "Website",
        "--scopes",
        "customers:read",
        "--kind",
        "site",
        stdout=out,
        stderr=err,
    )
    token = out.getvalue().strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(LOOKUP, {"card": "2900000012345"}).status_code == 200
    with pytest.raises(CommandError, match="Unknown scopes: fly"):
        call_command("create_api_client", "App", "--scopes", "fly", stdout=out, stderr=err)


def test_the_request_limit_answers_429(api):
    client = api("customers:read")
    ApiClient.objects.filter(pk=client.client_row.pk).update(throttle_rate="2/min")
    codes = [client.get(LOOKUP, {"card": "2900000012345"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_schema_and_docs_are_served_without_a_token():
    assert APIClient().get("/api/schema/").status_code == 200
    assert APIClient().get("/api/docs/").status_code == 200


def test_a_method_a_view_does_not_handle_answers_405(api):
    assert api("customers:read").put(LOOKUP, {}, format="json").status_code == 405


def test_an_unknown_api_url_answers_the_json_error_body(api):
    response = api("customers:read").get("/api/v1/customers/null,null/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "errors": {}}


def test_text_that_cannot_be_stored_is_a_400_naming_the_field(api):
    from pharmacrm.api.parsers import unstorable

    assert unstorable({"lines": [{"sku": "a\x00b"}]}) == "lines.0.sku"
    assert unstorable({"name": "\ud800"}) == "name"
    assert unstorable({"ok": ["fine", {"x": 1}]}) is None


def test_a_revoked_token_stops_working_at_once_in_every_process(api):
    # Each process remembers the clients it has seen; a revocation anywhere (here: the shared
    # cache's version replaced, as another worker's save leaves it) makes it forget them.
    from pharmacrm import shared_cache
    from pharmacrm.api.auth import CLIENTS

    client = api("customers:read")
    assert client.get(LOOKUP, {"phone": "+79123456789"}).status_code == 200
    ApiClient.objects.filter(pk=client.client_row.pk).update(is_active=False)  # the other's
    redis = shared_cache.redis_client()
    key = f"{shared_cache.PREFIX}version:{CLIENTS}"
    if redis is not None:
        redis.set(key, "another-worker")
    else:
        from django.core.cache import cache

        cache.set(key, "another-worker", None)
    assert client.get(LOOKUP, {"phone": "+79123456789"}).status_code == 401


def test_an_authenticated_request_reads_no_client_row_once_seen(api, django_assert_num_queries):
    client = api("customers:read")
    client.get(LOOKUP, {"card": "2900000012345"})  # the client read, its last use written
    with django_assert_num_queries(2):  # the lookup's own: nobody's card, no alias
        assert client.get(LOOKUP, {"card": "2900000012345"}).status_code == 200
