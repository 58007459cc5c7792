"""POST /api/v1/checkout/quote/: one answer whoever asks, bad input named field by field."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import PurchaseType
from customers.tests.factories import CustomerFactory, ProductFactory
from loyalty.api.serializers import QuoteSerializer
from loyalty.checkout import checkout_quote
from loyalty.models import AccrualRate, BonusAccount, BonusDiscountType, PersonalDiscount
from pharmacrm.api.models import ApiClient

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/api/v1/checkout/quote/"


@pytest.fixture
def customer():
    """A newcomer with 1,000 bonuses and a 10 % personal discount."""
    customer = CustomerFactory(phone="+79123456789", card_number="2900000012345")
    BonusAccount.objects.create(customer=customer, balance=D("1000.00"), pending=D("12.00"))
    PersonalDiscount.objects.create(
        customer=customer,
        discount_type=BonusDiscountType.objects.get(code="personal"),
        percent=D("10"),
        valid_from=timezone.localdate() - dt.timedelta(days=30),
    )
    return customer


@pytest.fixture
def quoter(api):
    client = api("checkout:quote")
    client.post(URL, {}, format="json")  # the first call also stamps last_used_at
    return client


def basket(products) -> list[dict]:
    return [
        {"sku": "4600000000011", "qty": "2", "price": "150.50"},
        {"product_id": products["mask"].pk, "qty": "0.5", "price": "10.05"},
        {"sku": "4600000000035", "qty": 1, "price": "400.00"},
    ]


def post(client, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", **headers)


# --- the answer -----------------------------------------------------------------------------------


def test_the_quote_is_the_checkout_services_answer(quoter, customer, products):
    response = post(quoter, {"customer": customer.pk, "lines": basket(products)})

    assert response.status_code == 200, response.json()
    body = response.json()
    lines = [
        ("4600000000011", "2", "150.50"),
        (products["mask"].pk, "0.5", "10.05"),
        ("4600000000035", 1, "400.00"),
    ]
    assert body == checkout_quote(customer.pk, lines).as_dict()
    # Subtotal 706.03 (0.5 × 10.05 = 5.025 -> 5.03); 10 % = 70.60; 30 % of the eligible 275.43.
    assert (body["subtotal"], body["discount_amount"], body["total"]) == (
        "706.03",
        "70.60",
        "635.43",
    )
    assert (body["eligible_amount"], body["max_spend"]) == ("275.43", "82.63")
    assert body["balance"] == {"available": "1000.00", "pending": "12.00", "debt": "0.00"}
    assert [line["bonus_eligible"] for line in body["lines"]] == [True, True, False]
    assert body["lines"][1] == {
        "product_id": products["mask"].pk,
        "sku": "4600000000028",
        "qty": "0.500",
        "price": "10.05",
        "amount": "5.03",
        "bonus_eligible": True,
    }


def test_the_app_the_site_and_the_pos_get_byte_identical_answers(api, customer, products):
    body = json.dumps({"customer": customer.pk, "lines": basket(products)})
    answers = set()
    for kind in (ApiClient.Kind.APP, ApiClient.Kind.SITE, ApiClient.Kind.POS):
        client = api("checkout:quote", name=f"quote-{kind}")
        ApiClient.objects.filter(pk=client.client_row.pk).update(kind=kind)
        response = post(client, body)
        assert response.status_code == 200
        answers.add(response.content)
    assert len(answers) == 1
    by_card = api("checkout:quote", name="contact-centre")
    response = post(
        by_card,
        {"customer_lookup": {"card": "2900000012345"}, "lines": basket(products)},
    )
    assert response.content in answers


def test_json_numbers_are_read_as_written_never_as_floats(quoter, customer, products):
    # Read as floats, 0.10 and 10.05 would be refused by the checkout service (a float is not
    # the amount the client wrote); read as Decimals they are exact.
    body = (
        f'{{"customer": {customer.pk}, "lines": ['
        '{"sku": "4600000000011", "qty": 3, "price": 0.10}, '
        '{"sku": "4600000000028", "qty": 0.5, "price": 10.05}]}'
    )

    answer = post(quoter, body).json()

    assert [line["amount"] for line in answer["lines"]] == ["0.30", "5.03"]
    assert answer["lines"][0]["price"] == "0.10"


@pytest.mark.parametrize(
    "lookup",
    [
        {"phone": "8 (912) 345-67-89"},
        {"card": "2900000012345"},
        {"email": "  ANNA@example.ru"},
    ],
)
def test_the_customer_may_be_named_by_any_identifier(quoter, customer, products, lookup):
    customer.email = "anna@example.ru"
    customer.save()

    response = post(quoter, {"customer_lookup": lookup, "lines": basket(products)[:1]})

    assert response.status_code == 200, response.json()
    assert response.json()["customer_id"] == customer.pk


def test_the_purchase_type_selects_its_accrual_rate(quoter, customer, products):
    delivery = PurchaseType.objects.get(code="delivery")
    AccrualRate.objects.create(purchase_type=delivery, status="", percent=D("1.5"))
    lines = [{"sku": "4600000000011", "qty": "1", "price": "100.00"}]

    plain = post(quoter, {"customer": customer.pk, "lines": lines}).json()
    delivered = post(
        quoter, {"customer": customer.pk, "lines": lines, "purchase_type": "delivery"}
    ).json()

    assert (plain["accrual_percent"], delivered["accrual_percent"]) == ("3.00", "1.50")
    # 100.00 - 10 % = 90.00 eligible: 2.70 at 3 %, 1.35 at 1.5 %.
    assert (plain["accrual_without_spending"], delivered["accrual_without_spending"]) == (
        "2.70",
        "1.35",
    )


def covers(value, documented) -> bool:
    """Whether an answer has exactly the documented keys wherever it is not null."""
    if isinstance(value, list):
        return all(covers(item, documented) for item in value)
    if isinstance(value, dict):
        return set(value) == set(documented or {}) and all(
            covers(item, documented[key]) for key, item in value.items() if item is not None
        )
    return documented is None


def documented_keys(serializer) -> dict:
    out = {}
    for name, field in serializer.fields.items():
        child = getattr(field, "child", field)
        out[name] = documented_keys(child) if hasattr(child, "fields") else None
    return out


def test_the_documented_shape_is_the_answers_shape(quoter, customer, products):
    """QuoteSerializer documents Quote.as_dict(): the same keys at every level."""
    documented = documented_keys(QuoteSerializer())
    with_discount = post(quoter, {"customer": customer.pk, "lines": basket(products)}).json()
    PersonalDiscount.objects.all().delete()
    with_next_tier = post(quoter, {"customer": customer.pk, "lines": basket(products)}).json()

    assert with_discount["discount"] is not None and with_next_tier["next_tier"] is not None
    assert covers(with_discount, documented) and covers(with_next_tier, documented)


# --- bad input ------------------------------------------------------------------------------------


def errors(response) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and body["message"]
    return {field: [e["code"] for e in items] for field, items in body["errors"].items()}


def test_bad_lines_are_named_by_their_index_and_field(quoter, customer, products):
    lines = [
        {"sku": "4600000000011", "qty": "0", "price": "1.00"},
        {"sku": "4600000000011", "qty": "1.0001", "price": "-1"},
        {"sku": "0000000000000", "qty": "1", "price": "1.00"},
        {"product_id": 999999, "qty": "1", "price": "1.00"},
        {"sku": "4600000000011", "qty": "1", "price": "1.005"},
        {"product_id": products["mask"].pk, "qty": "NaN", "price": "Infinity"},
        {"sku": "4600000000011", "qty": "1e9", "price": "1e20"},
        {"sku": "4600000000011", "qty": "-1e30", "price": "-1e30"},
    ]

    response = post(quoter, {"customer": customer.pk, "lines": lines})

    assert errors(response)  # a 400 with the error body
    # The checkout service names each value's problem (its codes are all "invalid" so far: it
    # gathers the lines' errors by message).
    assert {
        field: [item["message"] for item in items]
        for field, items in response.json()["errors"].items()
    } == {
        "lines.0.qty": ["Must be greater than zero."],
        "lines.1.qty": ["At most three decimal places."],
        "lines.1.price": ["Must not be negative."],
        "lines.4.price": ["At most two decimal places."],
        "lines.5.qty": ["Not a number."],
        "lines.5.price": ["Not a number."],
        "lines.6.qty": ["Too large."],
        "lines.6.price": ["Too large."],
        "lines.7.qty": ["Must be greater than zero."],
        "lines.7.price": ["Too large."],
        "lines.2.sku": ["No product with SKU 0000000000000."],
        "lines.3.product_id": ["No product with id 999999."],
    }


@pytest.mark.parametrize(
    ("line", "field", "code"),
    [
        ({"qty": "1", "price": "1"}, "lines.0.non_field_errors", "one_product"),
        (
            {"sku": "x", "product_id": 1, "qty": "1", "price": "1"},
            "lines.0.non_field_errors",
            "one_product",
        ),
        ({"sku": "4600000000011", "price": "1"}, "lines.0.qty", "required"),
        ({"sku": "4600000000011", "qty": "1"}, "lines.0.price", "required"),
        ({"sku": "4600000000011", "qty": True, "price": "1"}, "lines.0.qty", "invalid"),
        ({"sku": "4600000000011", "qty": None, "price": "1"}, "lines.0.qty", "null"),
        ({"sku": "4600000000011", "qty": [1], "price": "1"}, "lines.0.qty", "invalid"),
        ({"sku": "4600000000011", "qty": {"v": 1}, "price": "1"}, "lines.0.qty", "invalid"),
        ({"sku": "4600000000011", "qty": "1" * 40, "price": "1"}, "lines.0.qty", "max_length"),
        ({"sku": "4600000000011", "qty": "-1e30", "price": "1"}, "lines.0.qty", "min_value"),
        ({"sku": "4600000000011", "qty": -(10**40), "price": "1"}, "lines.0.qty", "min_value"),
        ({"sku": "4600000000011", "qty": "1", "price": "-1e30"}, "lines.0.price", "max_value"),
        ({"sku": "", "qty": "1", "price": "1"}, "lines.0.sku", "blank"),
        ({"sku": 4.5, "qty": "1", "price": "1"}, "lines.0.sku", "invalid"),
        ({"sku": "x" * 65, "qty": "1", "price": "1"}, "lines.0.sku", "max_length"),
        ({"product_id": "abc", "qty": "1", "price": "1"}, "lines.0.product_id", "invalid"),
        ({"product_id": 1.5, "qty": "1", "price": "1"}, "lines.0.product_id", "invalid"),
        ({"product_id": 0, "qty": "1", "price": "1"}, "lines.0.product_id", "min_value"),
        ({"product_id": 2**64, "qty": "1", "price": "1"}, "lines.0.product_id", "max_value"),
        ("a line", "lines.0.non_field_errors", "invalid"),
        (["4600000000011", "1", "1"], "lines.0.non_field_errors", "invalid"),
    ],
)
def test_malformed_lines_are_refused_naming_the_field(quoter, customer, line, field, code):
    found = errors(post(quoter, {"customer": customer.pk, "lines": [line]}))
    assert list(found) == [field]
    if code:
        assert found[field] == [code]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": []}, "non_field_errors"),
        ({"customer": 1, "customer_lookup": {"card": "2900000012345"}, "lines": []}, ""),
        ({"customer": "one", "lines": []}, "customer"),
        ({"customer": 0, "lines": []}, "customer"),
        ({"customer": -5, "lines": []}, "customer"),
        ({"customer": 10**30, "lines": []}, "customer"),
        ({"customer": 1.5, "lines": []}, "customer"),
        ({"customer": True, "lines": []}, "customer"),
        ({"customer": 424242, "lines": []}, "lines"),
        ({"customer": "CUSTOMER", "lines": "all of them"}, ""),
        ({"customer_lookup": {}, "lines": []}, "customer_lookup.non_field_errors"),
        ({"customer_lookup": "+79123456789", "lines": []}, "customer_lookup.non_field_errors"),
        ({"customer_lookup": {"phone": "123"}, "lines": []}, "customer_lookup.phone"),
        ({"customer_lookup": {"external_id": "x"}, "lines": []}, "customer_lookup.external_id"),
        ({"customer_lookup": {"card": "2900000099999"}, "lines": []}, "customer_lookup"),
        ({"lines": {"sku": "4600000000011"}, "customer": 1}, "lines"),
        ({"lines": None, "customer": 1}, "lines"),
        ({"lines": [{}] * 501, "customer": 1}, "lines"),
        ({"customer": 1, "lines": [], "purchase_type": "teleport"}, "purchase_type"),
        ({"customer": 1, "lines": [], "purchase_type": 7}, "purchase_type"),
        ({"customer": 1, "lines": [], "purchase_type": ["retail"]}, "purchase_type"),
    ],
)
def test_malformed_requests_are_refused_naming_the_field(quoter, customer, body, field):
    found = errors(post(quoter, body))
    if field:
        assert field in found, found


def test_an_unknown_customer_is_named(quoter, products):
    response = post(
        quoter, {"customer": 424242, "lines": [{"sku": "4600000000011", "qty": 1, "price": 1}]}
    )
    assert errors(response) == {"customer": ["invalid"]}
    assert response.json()["errors"]["customer"][0]["message"] == "No such customer."
    nobody = post(
        quoter,
        {
            "customer_lookup": {"phone": "+79990000000"},
            "lines": [{"sku": "x", "qty": 1, "price": 1}],
        },
    )
    assert errors(nobody) == {"customer_lookup": ["not_found"]}


def test_an_empty_basket_is_refused(quoter, customer):
    response = post(quoter, {"customer": customer.pk, "lines": []})
    assert list(errors(response)) == ["lines"]
    assert response.json()["message"] == "At least one line."


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{",
        "not json",
        '{"customer": NaN, "lines": []}',
        '{"customer": 1, "lines": [{"sku": "4600000000011", "qty": Infinity, "price": 1}]}',
        '{"customer": 1, "lines": [{"sku": "4600000000011", "qty": 1e400, "price": -1e400}]}',
        '{"customer": 1, "lines": [{"sku": "4600000000011", "qty": -1e30, "price": 1}]}',
        '{"customer": 1, "lines": [{"sku": "4600000000011", "qty": -1e-30, "price": 1e-999}]}',
        '{"customer": ' + "9" * 5000 + ', "lines": []}',
        "[" * 100000 + "]" * 100000,
        '{"customer": 1, "lines": [' + "[" * 50000 + "]" * 50000 + "]}",
        "[]",
        '"a string"',
        "null",
        "12",
        b"\xff\xfe\x00garbage",
    ],
)
def test_a_body_that_is_not_a_quote_request_gets_400_never_500(quoter, customer, raw):
    response = post(quoter, raw)
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["code"] in {"invalid", "parse_error"}


def test_other_content_types_are_refused(quoter, customer):
    response = quoter.post(URL, "customer=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=30)
        | st.decimals(allow_nan=False, allow_infinity=False).map(str),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["customer", "lines", "sku", "product_id", "qty", "price", "x"]),
                inner,
                max_size=5,
            )
        ),
        max_leaves=12,
    )
)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_generated_body_gets_a_server_error(quoter, customer, products, body):
    if isinstance(body, dict) and "customer" not in body:
        body["customer"] = customer.pk
    response = post(quoter, body)
    assert response.status_code in (200, 400), (body, response.content)


# --- access and cost ------------------------------------------------------------------------------


def test_quotes_need_the_checkout_scope(api, customer, products):
    response = post(api("bonuses:read", "customers:read"), {"customer": customer.pk, "lines": []})
    assert response.status_code == 403 and response.json()["code"] == "missing_scope"
    anonymous = api("checkout:quote")
    anonymous.credentials()
    assert post(anonymous, {"customer": customer.pk, "lines": []}).status_code == 401


def test_the_quote_costs_a_fixed_number_of_queries(
    quoter, customer, products, django_assert_num_queries
):
    one = [{"sku": "4600000000011", "qty": "1", "price": "100.00"}]
    many = [
        {"product_id": ProductFactory(prescription_only=n % 2 == 0).pk, "qty": "1", "price": "9"}
        for n in range(40)
    ]
    # The first quote of a process also reads the configuration (config_cache) and the API
    # client, once.
    assert post(quoter, {"customer": customer.pk, "lines": one}).status_code == 200
    # The lines' products (with their prescription-only flags); the customer's account,
    # lifetime total, personal discounts and purchase months in one statement (four on SQLite).
    expected = 2 if connection.vendor == "postgresql" else 5
    for lines in (one, many):
        with django_assert_num_queries(expected):
            assert post(quoter, {"customer": customer.pk, "lines": lines}).status_code == 200
    # A purchase type is one more; a customer named by an identifier one more.
    with django_assert_num_queries(expected + 1):
        body = {"customer": customer.pk, "lines": one, "purchase_type": "retail"}
        assert post(quoter, body).status_code == 200
    with django_assert_num_queries(expected + 1):
        body = {"customer_lookup": {"phone": "+79123456789"}, "lines": one}
        assert post(quoter, body).status_code == 200
