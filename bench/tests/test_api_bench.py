"""The API benchmark's bare baseline and its traffic: the same answers as the DRF endpoint."""

import random

import pytest

from bench.api_load import lua_value
from bench.bench_api import _notation
from customers.normalize import normalize_phone
from customers.tests.factories import CustomerFactory


def test_every_phone_notation_the_benchmark_sends_is_the_same_phone():
    rnd = random.Random(1)
    sent = {_notation("+79123456789", rnd) for _ in range(200)}
    assert sent == {"8 (912) 345-67-89", "+7 912 345 67 89", "89123456789", "+79123456789"}
    assert {normalize_phone(phone) for phone in sent} == {"+79123456789"}


def test_lua_values_are_quoted_and_non_ascii_text_is_refused():
    assert lua_value(["8 (912) 345", 7, '[{"sku":"A"}]']) == (
        '{\n"8 (912) 345",\n7,\n"[{\\"sku\\":\\"A\\"}]"\n}'
    )
    with pytest.raises(ValueError):
        lua_value("Иванова")


@pytest.mark.django_db
def test_the_bare_lookup_finds_whom_the_api_finds_behind_the_same_token_check(api, settings):
    settings.ROOT_URLCONF = "bench.api_urls"
    anna = CustomerFactory(phone="+79123456789")
    reader = api("customers:read")
    for url in ("/api/v1/customers/", "/bench/lookup/"):
        (found,) = reader.get(url, {"phone": "8 (912) 345-67-89"}).json()
        assert found["id"] == anna.pk and found["phone"] == "+79123456789"
        assert reader.get(url, {"phone": "+79990000000"}).json() == []
    assert api("checkout:quote").get("/bench/lookup/", {"phone": "+79123456789"}).status_code == 403
    reader.credentials(HTTP_AUTHORIZATION="Token nope")
    assert reader.get("/bench/lookup/", {"phone": "+79123456789"}).status_code == 401
