"""Orders under real concurrency: parallel PostgreSQL connections, one thread per request."""

from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from customers.models import Purchase
from customers.tests.factories import CustomerFactory, ProductFactory, StoreFactory
from loyalty.ledger import bonus_grant
from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusMovement, BonusRules, MovementKind
from loyalty.tests.test_ledger_concurrency import in_parallel
from pharmacrm.api.models import IdempotentRequest

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions"),
]
D = Decimal
SKU = "4600000000011"


@pytest.fixture(autouse=True)
def _reference_data(django_db_setup):
    BonusRules.objects.get_or_create(pk=1)  # transactional tests flush the migration's rows


@pytest.fixture
def token(api):
    client = api("orders:write", "orders:read", name="app")
    client.client_row.kind = "app"
    client.client_row.save(update_fields=["kind"])
    return client.token


@pytest.fixture
def customer():
    ProductFactory(sku=SKU)
    StoreFactory(code="A-017")
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "100.00", key="seed")
    return customer


def place(token, customer, key, number="A-1"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.post(
        "/api/v1/orders/",
        {
            "customer": customer.pk,
            "number": number,
            "store": "A-017",
            "lines": [{"sku": SKU, "qty": "1", "price": "200.00"}],
            "bonus_to_spend": "60.00",
        },
        format="json",
        headers={"Idempotency-Key": key},
    )
    return response.status_code, response.json()


def test_the_same_idempotency_key_sent_by_two_threads_at_once_creates_one_order(token, customer):
    results = in_parallel(place, [(token, customer, "same-key")] * 2)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert [status for status, _body in results] == [201, 201]
    assert results[0][1] == results[1][1]  # the second got the first's answer
    assert Purchase.objects.count() == 1 and IdempotentRequest.objects.count() == 1
    assert BonusMovement.objects.filter(kind="redemption").count() == 1
    assert BonusAccount.objects.get(customer=customer).balance == D("40.00")
    assert ledger_differences() == []


def test_one_order_number_sent_with_different_keys_at_once_creates_one_order(token, customer):
    results = in_parallel(place, [(token, customer, f"key-{i}") for i in range(4)])

    assert not [r for r in results if isinstance(r, Exception)], results
    statuses = sorted(status for status, _body in results)
    assert statuses == [201, 409, 409, 409]
    assert {body["code"] for status, body in results if status == 409} == {"order_exists"}
    assert Purchase.objects.count() == 1
    assert BonusAccount.objects.get(customer=customer).balance == D("40.00")
    assert ledger_differences() == []


def test_concurrent_orders_never_spend_more_than_the_balance(token, customer):
    results = in_parallel(place, [(token, customer, f"k-{i}", f"A-{i}") for i in range(4)])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(status for status, _body in results) == [201, 409, 409, 409]
    assert {body["code"] for status, body in results if status == 409} == {"insufficient_bonus"}
    assert Purchase.objects.count() == 1
    assert BonusAccount.objects.get(customer=customer).balance == D("40.00")
    assert ledger_differences() == []


def test_a_cancel_racing_a_completion_leaves_one_outcome(token, customer):
    status, body = place(token, customer, "k")
    assert status == 201
    order_id = body["order"]["id"]

    def act(name):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.post(f"/api/v1/orders/{order_id}/{name}/", {}, format="json")
        return name, response.status_code

    results = dict(in_parallel(act, [("complete",), ("cancel",)]))

    assert sorted(results.values()) == [200, 409]
    order = Purchase.objects.get(pk=order_id)
    winner = "complete" if results["complete"] == 200 else "cancel"
    assert order.status == {"complete": "completed", "cancel": "cancelled"}[winner]
    balance = BonusAccount.objects.get(customer=customer).balance
    # Completed: 100 − 60 + 3 % of 140.00; cancelled: the 60 refunded.
    assert balance == (D("44.20") if winner == "complete" else D("100.00"))
    assert ledger_differences() == []
