"""Per-client request limits: a fixed-window counter in the shared cache (Redis when CACHE_URL
says so, Django's cache otherwise)."""

import io

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from pharmacrm import shared_cache
from pharmacrm.api.models import DEFAULT_RATE, ApiClient
from pharmacrm.api.throttling import parse_rate

pytestmark = pytest.mark.django_db
LOOKUP = "/api/v1/customers/"
LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def limited(api, rate: str):
    client = api("customers:read")
    ApiClient.objects.filter(pk=client.client_row.pk).update(throttle_rate=rate)
    return client


def codes(client, n: int) -> list[int]:
    return [client.get(LOOKUP, {"card": "2900000012345"}).status_code for _ in range(n)]


def test_rates_are_read_as_requests_per_period():
    assert parse_rate("6000/min") == (6000, 60)
    assert parse_rate("10/s") == (10, 1)
    assert parse_rate("100/hour") == (100, 3600)
    assert parse_rate("5/day") == (5, 86400)
    for bad in ("", "6000", "x/min", "10/fortnight", "-1/s"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_over_the_limit_answers_429_with_retry_after_within_the_window(api):
    client = limited(api, "3/min")
    assert codes(client, 4) == [200, 200, 200, 429]
    response = client.get(LOOKUP, {"card": "2900000012345"})
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_each_client_has_its_own_count_and_rate(api):
    slow, fast = limited(api, "2/min"), limited(api, "5/min")
    assert codes(slow, 3) == [200, 200, 429]
    assert codes(fast, 6) == [200] * 5 + [429]


def test_the_counter_lives_in_redis_and_expires_with_its_window(api):
    redis = shared_cache.redis_client()
    if redis is None:
        pytest.skip("the shared cache is not Redis (set CACHE_URL)")
    client = limited(api, "100/min")
    codes(client, 3)
    (key,) = redis.keys(f"{shared_cache.PREFIX}throttle:{client.client_row.pk}:*")
    assert int(redis.get(key)) == 3
    assert 0 < redis.ttl(key) <= 61


def test_without_redis_django_s_cache_counts(api, settings):
    settings.CACHES = LOCAL_CACHE
    assert shared_cache.redis_client() is None
    cache.clear()
    client = limited(api, "2/min")
    assert codes(client, 3) == [200, 200, 429]


def test_a_rate_typed_wrong_falls_back_to_the_default_not_a_500(api):
    client = limited(api, "lots/min")
    assert codes(client, 2) == [200, 200]


def test_the_default_rate_is_above_what_a_box_serves():
    requests, seconds = parse_rate(DEFAULT_RATE)
    assert requests / seconds >= 500  # the REST API issue's target, per client
    assert ApiClient().throttle_rate == DEFAULT_RATE
    out = io.StringIO()
    call_command(
        "create_api_client", "Site", "--scopes", "customers:read", stdout=out, stderr=io.StringIO()
    )
    assert ApiClient.objects.get(name="Site").throttle_rate == DEFAULT_RATE


def test_a_revoked_token_is_refused_before_it_is_counted(api):
    client = limited(api, "1/min")
    client.client_row.revoke()
    assert codes(client, 2) == [401, 401]
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {client.token}")
    assert fresh.get(LOOKUP, {"card": "2900000012345"}).status_code == 401
