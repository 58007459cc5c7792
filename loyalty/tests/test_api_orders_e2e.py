"""The chain's old failure, end to end through the API: a customer known to the app was a
stranger to the website. Now: a customer registers and orders through the app until the
cumulative discount reaches its top tier; the website finds the same customer and its checkout
quote gives the top-tier discount; the POS sees the same balance."""

from decimal import Decimal

import pytest

from customers.tests.factories import ProductFactory, StoreFactory
from loyalty.ledger_check import ledger_differences
from loyalty.models import CumulativeDiscountTier

pytestmark = pytest.mark.django_db
D = Decimal
SKU = "4600000000011"
# 3 % of 5,000.00, then three times 3 % of 4,850.00 − 100.00 spent (a first day's buyer earns
# the newcomer's percent), less the 300.00 spent.
BALANCE = "277.50"


@pytest.fixture
def clients(api):
    def client(kind, *scopes):
        made = api(*scopes, name=kind)
        made.client_row.kind = kind
        made.client_row.save(update_fields=["kind"])
        return made

    return {
        "app": client("app", "customers:write", "orders:write", "orders:read"),
        "site": client("site", "customers:read", "checkout:quote", "orders:read", "orders:write"),
        "pos": client("pos", "customers:read", "checkout:quote", "bonuses:read"),
    }


def test_orders_in_the_app_give_the_top_tier_discount_on_the_website_and_one_balance(clients):
    ProductFactory(sku=SKU, name="Тонометр")
    StoreFactory(code="A-017")
    app, site, pos = clients["app"], clients["site"], clients["pos"]
    top = CumulativeDiscountTier.objects.filter(is_active=True).order_by("-threshold").first()
    assert (top.threshold, top.percent) == (D("15000.00"), D("5.00"))

    registered = app.post(
        "/api/v1/customers/",
        {"phone": "8 912 345-67-89", "first_name": "Анна", "last_name": "Иванова"},
        format="json",
    )
    assert registered.status_code == 201, registered.json()
    customer_id = registered.json()["customer"]["id"]

    # Orders of 2 × 2,500.00 picked up and completed, each priced with the discount of the day
    # and spending 100 bonuses once there are some.
    expected = [
        # discount, total, bonuses spent
        ("0.00", "5000.00", "0.00"),
        ("150.00", "4850.00", "100.00"),  # 5,000.00 bought: 3 %
        ("150.00", "4850.00", "100.00"),  # 9,850.00: still 3 %
        ("150.00", "4850.00", "100.00"),  # 14,700.00: still 3 %; then 19,550.00
    ]
    for n, (discount, total, spent) in enumerate(expected, start=1):
        placed = app.post(
            "/api/v1/orders/",
            {
                "customer": customer_id,
                "number": f"A-{n}",
                "store": "A-017",
                "lines": [{"sku": SKU, "qty": "2", "price": "2500.00"}],
                "bonus_to_spend": spent,
            },
            format="json",
            headers={"Idempotency-Key": f"order-{n}"},
        )
        assert placed.status_code == 201, placed.json()
        order = placed.json()["order"]
        assert (order["discount"], order["total"], order["bonus_spent"]) == (
            discount,
            total,
            spent,
        )
        assert order["bonus_accrued"] == "0.00"  # nothing until completed
        completed = app.post(f"/api/v1/orders/{order['id']}/complete/", {}, format="json")
        assert completed.status_code == 200, completed.json()
    last = completed.json()
    assert last["order"]["status"] == "completed"
    assert last["balance"] == {"available": BALANCE, "pending": "0.00", "debt": "0.00"}

    # The website: the same person, found by the phone in another notation.
    found = site.get("/api/v1/customers/", {"phone": "+7 (912) 345 67 89"})
    assert [c["id"] for c in found.json()] == [customer_id]
    basket = {"customer": customer_id, "lines": [{"sku": SKU, "qty": "1", "price": "1000.00"}]}
    quote = site.post("/api/v1/checkout/quote/", basket, format="json")
    assert quote.status_code == 200, quote.json()
    answer = quote.json()
    assert answer["discount_percent"] == "5.00"
    assert (answer["discount"]["source"], answer["discount"]["source_id"]) == (
        "cumulative",
        top.pk,
    )
    assert (answer["discount_amount"], answer["total"]) == ("50.00", "950.00")
    assert answer["lifetime_total"] == "19550.00"
    assert answer["balance"] == last["balance"]

    # The POS: the same balance, and the same quote, byte for byte.
    bonuses = pos.get(f"/api/v1/customers/{customer_id}/bonuses/")
    assert bonuses.status_code == 200, bonuses.json()
    assert {k: bonuses.json()[k] for k in ("available", "pending", "debt")} == last["balance"]
    assert pos.post("/api/v1/checkout/quote/", basket, format="json").content == quote.content

    # The website lists the app's orders, and its own next order is priced at 5 % too.
    listed = site.get(f"/api/v1/customers/{customer_id}/orders/").json()
    assert [o["number"] for o in listed["results"]] == ["A-4", "A-3", "A-2", "A-1"]
    own = site.post(
        "/api/v1/orders/",
        {"customer": customer_id, "number": "W-1", "delivery": True, "lines": basket["lines"]},
        format="json",
        headers={"Idempotency-Key": "w-1"},
    )
    assert own.status_code == 201, own.json()
    assert own.json()["discount_applied"]["percent"] == "5.00"
    assert (own.json()["order"]["discount"], own.json()["order"]["total"]) == ("50.00", "950.00")
    assert ledger_differences() == []
