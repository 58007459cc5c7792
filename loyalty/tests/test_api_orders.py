"""/api/v1/orders/ and /api/v1/customers/{id}/orders/: placing with an Idempotency-Key, complete,
cancel, return, read and list; error bodies; nothing written on a refusal."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from customers.models import Purchase, PurchaseLine
from customers.tests.factories import (
    CustomerFactory,
    ProductFactory,
    PurchaseFactory,
    PurchaseLineFactory,
    StoreFactory,
)
from loyalty.ledger import bonus_grant
from loyalty.models import BonusAccount, BonusMovement, MovementKind
from pharmacrm.api.models import IdempotentRequest

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/api/v1/orders/"
NUROFEN, MASK = "4600000000011", "4600000000028"


@pytest.fixture
def client_of(api):
    """client_of(kind, *scopes): an API client of that kind (app, site, pos, ...)."""

    def make(kind, *scopes):
        client = api(*(scopes or ("orders:write", "orders:read")), name=f"{kind}-client")
        client.client_row.kind = kind
        client.client_row.save(update_fields=["kind"])
        return client

    return make


@pytest.fixture
def app(client_of):
    return client_of("app")


@pytest.fixture(autouse=True)
def catalogue():
    ProductFactory(sku=NUROFEN, name="Нурофен таб. 200 мг №20")
    ProductFactory(sku=MASK, name="Маска медицинская №10")
    StoreFactory(code="A-017")
    StoreFactory(code="C-CLOSED", is_active=False)


@pytest.fixture
def customer():
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "1000.00", key=f"seed-{customer.pk}")
    return customer


def body(who, **extra):
    return {
        "customer": who.pk,
        "number": "A-1001",
        "store": "A-017",
        "lines": [
            {"sku": NUROFEN, "qty": "2", "price": "150.50"},
            {"sku": MASK, "qty": "1", "price": "99.00"},
        ],
        "bonus_to_spend": "100.00",
        **extra,
    }


def post(client, data, key="key-1"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(URL, data, format="json", headers=headers)


def written() -> tuple[int, int, int]:
    return (
        Purchase.objects.count(),
        PurchaseLine.objects.count(),
        BonusMovement.objects.filter(purchase__isnull=False).count(),
    )


# --- placing ---------------------------------------------------------------------------------


def test_placing_an_order_answers_201_with_amounts_bonuses_and_balance(app, customer):
    response = post(app, body(customer))

    assert response.status_code == 201, response.json()
    result = response.json()
    order = result.pop("order")
    assert order.pop("id") == Purchase.objects.get().pk
    assert order.pop("created_at").endswith("+03:00") and order.pop("purchased_at")
    assert order == {
        "number": "A-1001",
        "customer": customer.pk,
        "source": "app",
        "status": "placed",
        "fulfilment": "pickup",
        "store": "A-017",
        "purchase_type": "preorder",
        "order_ref": "A-1001",
        "lines": [
            {
                "sku": NUROFEN,
                "name": "Нурофен таб. 200 мг №20",
                "qty": "2.000",
                "price": "150.50",
                "amount": "301.00",
            },
            {
                "sku": MASK,
                "name": "Маска медицинская №10",
                "qty": "1.000",
                "price": "99.00",
                "amount": "99.00",
            },
        ],
        "subtotal": "400.00",
        "discount": "0.00",
        "total": "400.00",
        "bonus_spent": "100.00",
        "bonus_accrued": "0.00",
    }
    assert result == {
        "balance": {"available": "900.00", "pending": "0.00", "debt": "0.00"},
        "discount_applied": None,
    }


def test_the_order_is_priced_with_the_customers_current_discount(app, customer):
    store = StoreFactory(code="B-001")
    PurchaseFactory(customer=customer, store=store, total=D("15000.00"))  # the 5 % tier

    response = post(app, body(customer, bonus_to_spend="0"))

    assert response.status_code == 201, response.json()
    result = response.json()
    assert result["discount_applied"] == {
        "percent": "5.00",
        "source": "cumulative",
        "label": "Cumulative discount 5 % (purchases from 15,000 ₽)",
    }
    assert (result["order"]["discount"], result["order"]["total"]) == ("20.00", "380.00")


def test_a_retry_with_the_same_key_gets_the_first_answer_and_changes_nothing(app, customer):
    first = post(app, body(customer))
    before = written()

    again = post(app, body(customer))

    assert (again.status_code, again.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert written() == before
    assert BonusAccount.objects.get(customer=customer).balance == D("900.00")


def test_the_same_key_with_another_body_is_refused_with_422(app, customer):
    post(app, body(customer))
    before = written()

    response = post(app, body(customer, bonus_to_spend="50.00"))

    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
    assert written() == before


def test_a_refused_order_leaves_the_key_free_for_a_corrected_retry(app, customer):
    refused = post(app, body(customer, bonus_to_spend="120.01"))
    assert refused.status_code == 400
    assert not IdempotentRequest.objects.exists()

    assert post(app, body(customer, bonus_to_spend="120.00")).status_code == 201


def test_placing_without_an_idempotency_key_is_refused(app, customer):
    response = post(app, body(customer), key=None)

    assert response.status_code == 400
    assert response.json()["errors"]["Idempotency-Key"][0]["code"] == "required"
    assert written() == (0, 0, 0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer": "abc"}, "customer"),
        ({"customer": 2**70}, "customer"),
        ({"customer": 999_999_999}, "customer"),  # no such customer
        ({"number": ""}, "number"),
        ({"number": "x" * 65}, "number"),
        ({"number": "A\x00"}, "number"),
        ({"store": "Z-404"}, "store"),
        ({"store": "C-CLOSED"}, "store"),
        ({"store": None}, "store"),  # neither pick-up nor delivery
        ({"delivery": True}, "store"),  # both
        ({"lines": []}, "lines"),
        ({"lines": "all of them"}, "lines"),
        ({"lines": [{"sku": NUROFEN, "qty": "0", "price": "1.00"}]}, "lines.0.qty"),
        ({"lines": [{"sku": NUROFEN, "qty": "1.0001", "price": "1.00"}]}, "lines.0.qty"),
        ({"lines": [{"sku": NUROFEN, "qty": "1", "price": "-1.00"}]}, "lines.0.price"),
        ({"lines": [{"sku": NUROFEN, "qty": "1", "price": "1.001"}]}, "lines.0.price"),
        ({"lines": [{"sku": NUROFEN, "qty": "1", "price": "NaN"}]}, "lines.0.price"),
        ({"lines": [{"sku": NUROFEN, "qty": "1"}]}, "lines.0.price"),
        ({"lines": [{"sku": "4699999999999", "qty": "1", "price": "1.00"}]}, "lines.0.sku"),
        ({"bonus_to_spend": "-1.00"}, "bonus_to_spend"),
        ({"bonus_to_spend": "1e400"}, "bonus_to_spend"),
        ({"bonus_to_spend": "120.01"}, "bonus_to_spend"),  # over 30 % of 400.00
        ({"status": "returned"}, "status"),
        ({"bonus": "10.00"}, "bonus"),  # a misspelt field is not silently ignored
    ],
)
def test_bad_input_answers_400_naming_the_field_and_writes_nothing(app, customer, change, field):
    response = post(app, {**body(customer), **change})

    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert field in errors, errors
    assert written() == (0, 0, 0)
    assert BonusAccount.objects.get(customer=customer).balance == D("1000.00")


@pytest.mark.parametrize("payload", [[1, 2], "text", None])
def test_a_body_that_is_not_an_object_answers_400(app, payload):
    response = app.post(URL, payload, format="json", headers={"Idempotency-Key": "k"})
    assert response.status_code == 400


def test_malformed_json_answers_400(app):
    response = app.post(
        URL, b"{not json", content_type="application/json", headers={"Idempotency-Key": "k"}
    )
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_a_spend_over_the_balance_answers_409_naming_bonus_to_spend(app):
    poor = CustomerFactory()
    bonus_grant(poor.pk, MovementKind.CAMPAIGN, "20.00", key="seed-poor")

    response = post(app, body(poor, bonus_to_spend="20.01"))

    assert response.status_code == 409
    assert response.json() == {
        "code": "insufficient_bonus",
        "message": "Not enough bonuses: 20.01 requested, 20.00 available.",
        "errors": {
            "bonus_to_spend": [
                {
                    "message": "Not enough bonuses: 20.01 requested, 20.00 available.",
                    "code": "insufficient_bonus",
                }
            ]
        },
    }
    assert written() == (0, 0, 0)


def test_a_number_the_channel_already_has_answers_409(app, client_of, customer):
    post(app, body(customer), key="first")

    response = post(app, body(customer, bonus_to_spend="0"), key="second")

    assert response.status_code == 409
    assert response.json()["code"] == "order_exists"
    assert "number" in response.json()["errors"]
    # The website numbers its own orders.
    assert post(client_of("site"), body(customer, bonus_to_spend="0")).status_code == 201


def test_the_channel_is_the_clients_kind_and_the_pos_records_online_sales(client_of, customer):
    site = post(client_of("site"), body(customer, store=None, delivery=True, number="W-1"))
    assert site.status_code == 201, site.json()
    order = site.json()["order"]
    assert (order["source"], order["fulfilment"], order["store"]) == ("site", "delivery", None)

    pos = client_of("pos")
    sale = post(pos, body(customer, number="000123", status="completed", bonus_to_spend="0"))
    assert sale.status_code == 201, sale.json()
    order = sale.json()["order"]
    assert (order["source"], order["status"], order["fulfilment"], order["store"]) == (
        "pos",
        "completed",
        None,
        "A-017",
    )
    assert order["bonus_accrued"] == "12.00"  # a newcomer's 3 % of 400.00


def test_clients_without_the_scope_or_of_another_kind_cannot_place(client_of, customer):
    reader = client_of("app", "orders:read")
    assert post(reader, body(customer)).status_code == 403
    other = client_of("other")
    response = post(other, body(customer))
    assert (response.status_code, response.json()["code"]) == (403, "client_without_channel")
    assert written() == (0, 0, 0)


# --- complete, cancel, return ---------------------------------------------------------------


def action(client, order_id, name, data=None, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"{URL}{order_id}/{name}/", data or {}, format="json", headers=headers)


@pytest.fixture
def placed(app, customer):
    return post(app, body(customer)).json()["order"]["id"]


def test_completing_answers_with_the_accrual_and_the_new_balance(app, placed):
    response = action(app, placed, "complete", {"store": "A-017"})

    assert response.status_code == 200, response.json()
    result = response.json()
    assert result["order"]["status"] == "completed"
    assert (result["order"]["bonus_spent"], result["order"]["bonus_accrued"]) == ("100.00", "9.00")
    assert result["balance"] == {"available": "909.00", "pending": "0.00", "debt": "0.00"}
    assert result["discount_applied"] is None


def test_cancelling_refunds_and_completing_afterwards_is_409(app, placed):
    response = action(app, placed, "cancel")
    assert response.status_code == 200
    assert response.json()["order"]["bonus_spent"] == "0.00"
    assert response.json()["balance"]["available"] == "1000.00"

    again = action(app, placed, "complete")
    assert again.status_code == 409
    assert again.json()["code"] == "order_not_placed"
    assert again.json()["errors"]["status"][0]["code"] == "order_not_placed"


def test_a_placed_order_cannot_be_returned(app, placed):
    response = action(app, placed, "return")
    assert (response.status_code, response.json()["code"]) == (409, "order_not_completed")


def test_a_partial_return_by_lines_and_then_the_rest(app, placed):
    action(app, placed, "complete")

    response = action(app, placed, "return", {"lines": [{"sku": NUROFEN, "qty": "1"}]}, key="r1")

    assert response.status_code == 200, response.json()
    order = response.json()["order"]
    assert order["status"] == "completed"
    assert [(line["sku"], line["qty"]) for line in order["lines"]] == [
        (NUROFEN, "1.000"),
        (MASK, "1.000"),
    ]
    # 249.50 kept of 400.00: spend 100.00 × 249.50 / 400.00 = 62.38; accrual 3 % of 187.12.
    assert (order["total"], order["bonus_spent"], order["bonus_accrued"]) == (
        "249.50",
        "62.38",
        "5.61",
    )
    assert response.json()["balance"]["available"] == str(D("1000.00") - D("62.38") + D("5.61"))
    # The same partial return retried with its key is not applied twice.
    retry = action(app, placed, "return", {"lines": [{"sku": NUROFEN, "qty": "1"}]}, key="r1")
    assert retry.json() == response.json()
    assert Purchase.objects.get(pk=placed).total == D("249.50")

    whole = action(app, placed, "return")
    assert whole.json()["order"]["status"] == "returned"
    assert whole.json()["balance"]["available"] == "1000.00"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": NUROFEN, "qty": "3"}]}, "lines.0.qty"),
        ({"lines": [{"sku": "4699999999999", "qty": "1"}]}, "lines.0.sku"),
        ({"lines": [{"sku": NUROFEN, "qty": "-1"}]}, "lines.0.qty"),
        ({"lines": [{"sku": NUROFEN}]}, "lines.0.qty"),
    ],
)
def test_a_bad_return_answers_400_naming_the_line(app, placed, data, field):
    action(app, placed, "complete")
    before = written()

    response = action(app, placed, "return", data)

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert written() == before
    assert Purchase.objects.get(pk=placed).total == D("400.00")


@pytest.mark.parametrize("name", ["complete", "cancel", "return"])
def test_an_unknown_order_is_404(app, name):
    assert action(app, 999_999_999, name).status_code == 404
    assert action(app, 2**64, name).status_code == 404


def test_reading_an_order(app, placed, client_of):
    reader = client_of("site", "orders:read")
    response = reader.get(f"{URL}{placed}/")
    assert response.status_code == 200
    assert response.json()["order"]["number"] == "A-1001"
    assert response.json()["balance"]["available"] == "900.00"
    assert reader.get(f"{URL}999999999/").status_code == 404
    assert action(reader, placed, "cancel").status_code == 403


# --- a customer's orders ---------------------------------------------------------------------


def orders_of(client, customer, **query):
    return client.get(f"/api/v1/customers/{customer.pk}/orders/", query)


def test_the_list_holds_every_channels_orders_and_till_purchases_newest_first(
    app, client_of, customer
):
    store = StoreFactory(code="B-002")
    till = PurchaseFactory(
        customer=customer,
        store=store,
        external_id="000777",
        purchased_at=dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC),
    )
    PurchaseLineFactory(purchase=till, product=ProductFactory(sku=MASK))
    post(app, body(customer, number="A-1"), key="a1")
    post(client_of("site"), body(customer, number="W-1", bonus_to_spend="0"), key="w1")
    PurchaseFactory(store=store)  # another customer's

    response = orders_of(app, customer)

    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 3
    assert [(o["source"], o["number"], o["status"]) for o in page["results"]] == [
        ("site", "W-1", "placed"),
        ("app", "A-1", "placed"),
        ("pos", "000777", "completed"),
    ]
    assert page["results"][2]["lines"][0]["sku"] == MASK
    assert page["results"][1]["bonus_spent"] == "100.00"
    assert "balance" not in page["results"][0]


def test_the_list_filters_by_status_and_source_and_pages(app, client_of, customer):
    post(app, body(customer, number="A-1"), key="a1")
    second = post(app, body(customer, number="A-2", bonus_to_spend="0"), key="a2")
    action(app, second.json()["order"]["id"], "cancel")
    post(client_of("site"), body(customer, number="W-1", bonus_to_spend="0"), key="w1")

    assert [o["number"] for o in orders_of(app, customer, status="placed").json()["results"]] == [
        "W-1",
        "A-1",
    ]
    assert [o["number"] for o in orders_of(app, customer, source="app").json()["results"]] == [
        "A-2",
        "A-1",
    ]
    first_page = orders_of(app, customer, page_size=2).json()
    assert (first_page["count"], len(first_page["results"])) == (3, 2)
    assert first_page["next"].endswith("page=2&page_size=2")


@pytest.mark.parametrize(
    "query", [{"status": "lost"}, {"source": "fax"}, {"page": "x"}, {"page": "99"}]
)
def test_bad_list_queries_answer_4xx(app, customer, query):
    assert orders_of(app, customer, **query).status_code in (400, 404)


def test_the_list_of_an_unknown_customer_is_404(app):
    response = app.get("/api/v1/customers/999999999/orders/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_the_list_costs_the_same_queries_for_2_and_12_orders(
    app, customer, django_assert_num_queries
):
    store = StoreFactory(code="B-003")

    def add(n):
        for _ in range(n):
            p = PurchaseFactory(customer=customer, store=store)
            PurchaseLineFactory(purchase=p, product=ProductFactory(sku=NUROFEN))
            PurchaseLineFactory(purchase=p, product=ProductFactory(sku=MASK))

    add(2)
    orders_of(app, customer)  # the token's last use is written once
    # customer, count, page, lines with products, bonuses (the API client: the process's copy)
    with django_assert_num_queries(5):
        assert len(orders_of(app, customer).json()["results"]) == 2
    add(10)
    with django_assert_num_queries(5):
        assert len(orders_of(app, customer).json()["results"]) == 12


def test_the_schema_documents_the_order_endpoints_with_their_errors():
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    create = schema["paths"]["/api/v1/orders/"]["post"]
    assert {"201", "400", "401", "403", "409", "422", "429"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in create["parameters"])
    for name in ("complete", "cancel", "return"):
        responses = schema["paths"][f"/api/v1/orders/{{order_id}}/{name}/"]["post"]["responses"]
        assert {"200", "400", "404", "409", "422"} <= set(responses)
    listing = schema["paths"]["/api/v1/customers/{customer_id}/orders/"]["get"]
    assert {"200", "404"} <= set(listing["responses"])
    assert {"status", "source", "page", "page_size"} <= {p["name"] for p in listing["parameters"]}


def test_the_list_of_a_merged_customer_names_the_survivor(app, customer):
    from customers.merge import customer_merge

    merged = CustomerFactory()
    customer_merge(survivor=customer, merged=merged, reason="test")

    response = app.get(f"/api/v1/customers/{merged.pk}/orders/")

    assert (response.status_code, response.json()["code"]) == (404, "customer_merged")
    assert str(customer.pk) in response.json()["message"]


# --- the hot path ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["placed", "completed"])
def test_the_answer_to_placing_is_what_reading_the_order_back_gives(app, customer, status):
    # The 201 is built from what placing computed, not read back: it must not differ.
    placed = post(app, body(customer, status=status)).json()
    read = app.get(f"{URL}{placed['order']['id']}/").json()
    assert placed.pop("discount_applied") is None and read.pop("discount_applied") is None
    assert placed == read
    if status == "completed":
        assert placed["order"]["bonus_accrued"] == "9.00"  # 3 % of 400.00 - 100.00


@pytest.mark.parametrize("months_back", [[], [0], [1, 2, 3, 4, 5, 6], [30]])
def test_an_order_accrues_at_the_status_the_ledger_would_work_out(app, months_back):
    # The order's accrual takes the quote's status (not read again): it must be the status on
    # the purchase's day counting it, as purchase_status works it out for any purchase.
    from django.utils import timezone

    from loyalty.purchase_status import status_at_purchase

    today = timezone.localdate()
    buyer = CustomerFactory()
    for months in months_back:
        PurchaseFactory(customer=buyer, purchase_date=today - dt.timedelta(days=30 * months))
    placed = post(app, body(buyer, status="completed", bonus_to_spend="0.00")).json()

    accrual = BonusMovement.objects.get(
        purchase_id=placed["order"]["id"], kind=MovementKind.ACCRUAL
    )
    assert accrual.status == status_at_purchase(buyer.pk, today)


def test_placing_costs_a_fixed_number_of_queries_whatever_the_lines(
    app, customer, django_assert_max_num_queries
):
    post(app, body(customer, number="A-0"), key="warm")  # the configuration, the token's use
    many = [{"sku": sku, "qty": "1", "price": "100.00"} for sku in (NUROFEN, MASK)] * 10
    # The idempotency key claimed (one INSERT ... ON CONFLICT) and its answer
    # stored; the store with the number's check; the products; the customer's facts (one
    # statement); the order and its lines; the account opened and locked, its lots (bonuses
    # are spent), the ledger rows (at the status the quote worked out), what they consumed,
    # the lots and the account written; 3 savepoints (the test's transaction makes every
    # atomic block one).
    # Nothing is read back for the answer. SQLite reads the customer's facts in four.
    expected = 18 if connection.vendor == "postgresql" else 21
    for n, lines in enumerate((body(customer)["lines"], many)):
        data = body(customer, number=f"A-{n + 1}", lines=lines, status="completed")
        with django_assert_max_num_queries(expected):
            assert post(app, data, key=f"k-{n}").status_code == 201
