"""GET /api/v1/customers/?phone=|card=|email=|external_id=."""

import pytest

from customers.merge import customer_merge
from customers.tests.factories import CustomerFactory, ExternalIdFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/"


@pytest.fixture
def reader(api):
    return api("customers:read")


@pytest.mark.parametrize(
    "query",
    [
        {"phone": "8 912 345-67-89"},
        {"phone": "+7 (912) 345 67 89"},
        {"card": "2900000012345"},
        {"email": " Anna@Example.RU "},
    ],
)
def test_lookup_by_any_identifier_in_any_notation(reader, query):
    anna = CustomerFactory(
        phone="+79123456789", card_number="2900000012345", email="anna@example.ru"
    )
    response = reader.get(URL, query)
    assert response.status_code == 200
    (found,) = response.json()
    assert found["id"] == anna.pk and found["phone"] == "+79123456789"
    assert found["created_at"].endswith("+03:00")  # ISO 8601 with the chain's offset


def test_lookup_by_external_id_and_nobody_found(reader):
    ext = ExternalIdFactory(system="app", external_id="777")
    assert reader.get(URL, {"external_id": "app:777"}).json()[0]["id"] == ext.customer_id
    assert reader.get(URL, {"phone": "+79990000000"}).json() == []


def test_an_identifier_of_a_merged_customer_finds_the_survivor(reader):
    survivor = CustomerFactory(phone="+79123456789", card_number=None, email=None)
    merged = CustomerFactory(phone=None, card_number="2900000099999", email=None)
    customer_merge(survivor=survivor, merged=merged, reason="test")
    assert reader.get(URL, {"card": "2900000099999"}).json()[0]["id"] == survivor.pk


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"card": "12"}, "card"),
        ({"email": "not-an-email"}, "email"),
        ({"external_id": "nocolon"}, "external_id"),
        ({}, "non_field_errors"),
        ({"phone": "+79123456789", "card": "2900000012345"}, "non_field_errors"),
    ],
)
def test_bad_lookups_answer_400_naming_the_field(reader, query, field):
    response = reader.get(URL, query)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["errors"], body


def test_lookup_costs_a_constant_number_of_queries(reader, django_assert_max_num_queries):
    CustomerFactory(phone="+79123456789")
    with django_assert_max_num_queries(3):  # the API client, its last use, the customer's row
        assert reader.get(URL, {"phone": "+79123456789"}).status_code == 200
    with django_assert_max_num_queries(1):  # the customer's row (the client: remembered)
        assert reader.get(URL, {"phone": "+79123456789"}).status_code == 200


def test_an_old_identifier_costs_two_queries_more(reader, django_assert_max_num_queries):
    survivor = CustomerFactory(phone="+79123456789", card_number=None, email=None)
    merged = CustomerFactory(phone=None, card_number="2900000099999", email=None)
    customer_merge(survivor=survivor, merged=merged, reason="test")
    reader.get(URL, {"card": "2900000099999"})  # the token's last use written
    # Nobody's card; the alias; the survivor's row.
    with django_assert_max_num_queries(3):
        assert reader.get(URL, {"card": "2900000099999"}).json()[0]["id"] == survivor.pk


def test_the_lookup_renders_the_card_as_the_customer_serializer_does(reader):
    from customers.api.serializers import CustomerSerializer

    anna = CustomerFactory(phone="+79123456789", birth_date="1990-02-03", household_size=3)
    anna.refresh_from_db()
    (found,) = reader.get(URL, {"phone": "+79123456789"}).json()
    assert found == CustomerSerializer(anna).data
    assert found["created_at"].endswith("+03:00") and found["birth_date"] == "1990-02-03"


@pytest.mark.parametrize(
    "query",
    [
        {"phone": "  +79123456789  "},
        {"phone": ["+70000000000", "+79123456789"]},
        {"phone": "+79123456789", "format": "json"},
        {"phone": "x" * 65},
        {"phone": "   "},
        {"phone": "+7912\x00"},
        {"card": "2900000012345", "email": "anna@example.ru"},
        {"nickname": "anna"},
    ],
)
def test_the_lookup_answers_as_its_query_serializer_validates(reader, query):
    # The usual query skips building CustomerLookupSerializer: the same answers either way.
    from django.http import QueryDict

    from customers.api.serializers import CustomerLookupSerializer

    CustomerFactory(phone="+79123456789")
    response = reader.get(URL, query)
    params = QueryDict(mutable=True)
    for name, value in query.items():
        params.setlist(name, value if isinstance(value, list) else [value])
    form = CustomerLookupSerializer(data=params.dict())
    if form.is_valid():
        assert response.status_code == 200
        assert len(response.json()) == 1
    else:
        assert response.status_code == 400
        assert set(response.json()["errors"]) == set(form.errors)
