"""A till sale carrying `order_ref` completes the app or website order it names instead of adding a
second purchase (../shared/formats/pos-xml.md; the API issue's matching)."""

import datetime as dt
from decimal import Decimal

import pytest

from customers import pos_import
from customers.models import Customer, Purchase, Source
from customers.pos_import import pos_file_import
from customers.tests.factories import CustomerFactory, ProductFactory, StoreFactory
from loyalty.ledger import bonus_grant
from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusMovement, MovementKind
from loyalty.orders import OrderLine, order_cancel, order_complete, order_place

pytestmark = pytest.mark.django_db
D = Decimal
NUROFEN = {"sku": "4601234567890", "name": "Нурофен таб. 200 мг №20", "qty": "1", "price": "289.00"}
MASK = {"sku": "4607001234561", "name": "Маска медицинская №10", "qty": "2", "price": "55.50"}
WHEN = "2026-11-20T14:03:11+03:00"


@pytest.fixture(autouse=True, params=[2, 0], ids=["child-processes", "thread"])
def parse_processes(request, monkeypatch):
    monkeypatch.setattr(pos_import, "PARSE_PROCESSES", request.param)
    return request.param


@pytest.fixture(autouse=True)
def catalogue():
    for line in (NUROFEN, MASK):
        ProductFactory(sku=line["sku"], name=line["name"])
    StoreFactory(code="A-017")
    StoreFactory(code="B-002")


@pytest.fixture
def customer():
    customer = CustomerFactory(card_number="2900000012345")
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "1000.00", key=f"seed-{customer.pk}")
    return customer


def place(customer, number="A-1001", source=Source.APP, spend="50.00", store="B-002"):
    """An order as the app places it: 289.00 + 2 × 55.50 = 400.00, no discount yet."""
    return order_place(
        customer_id=customer.pk,
        number=number,
        source=source,
        store_code=store,
        lines=[
            OrderLine(NUROFEN["sku"], D("1"), D("289.00")),
            OrderLine(MASK["sku"], D("2"), D("55.5")),
        ],
        bonus_to_spend=D(spend),
    ).order


def sale(pid="000123", ref="A-1001", **extra):
    """The till's record of the pick-up: the same lines, 20.00 off at the till (total 380.00)."""
    return {
        "id": pid,
        "datetime": WHEN,
        "type": "preorder",
        "order_ref": ref,
        "customer": {"card": "2900000012345"},
        "lines": [NUROFEN, MASK],
        "discount": "20.00",
        "bonus_spent": "50.00",
        **extra,
    }


def kinds(order) -> list[tuple[str, D]]:
    return list(
        BonusMovement.objects.filter(purchase=order).order_by("id").values_list("kind", "amount")
    )


def balance(customer) -> D:
    return BonusAccount.objects.get(customer=customer).balance


def test_a_till_sale_naming_a_placed_order_completes_it_instead_of_adding_a_purchase(
    customer, pos_file
):
    order = place(customer)

    run = pos_file_import(path=pos_file([sale()]))

    assert (run.created, run.updated, run.unchanged, run.rejected, run.warnings) == (0, 1, 0, 0, 0)
    assert Purchase.objects.count() == 1
    order.refresh_from_db()
    assert (order.source, order.external_id, order.order_ref, order.customer) == (
        "app",
        "A-1001",
        "A-1001",
        customer,
    )
    assert (order.status, order.store.code, order.till_purchase_id, order.fulfilment) == (
        "completed",
        "A-017",
        "000123",
        "pickup",
    )
    assert order.purchased_at == dt.datetime.fromisoformat(WHEN)
    assert (order.total, order.discount, order.bonus_spent) == (D("380.00"), D("20.00"), D("50"))
    assert list(order.lines.order_by("id").values_list("product__sku", "qty", "amount")) == [
        (NUROFEN["sku"], D("1.000"), D("289.00")),
        (MASK["sku"], D("2.000"), D("111.00")),
    ]
    # The spend held since placement stays; the accrual: 3 % of 380.00 − 50.00.
    assert kinds(order) == [("redemption", D("-50.00")), ("accrual", D("9.90"))]
    assert balance(customer) == D("959.90")
    assert ledger_differences() == []


def test_reimporting_the_file_changes_nothing_and_a_reexported_return_returns_the_order(
    customer, pos_file
):
    order = place(customer)
    pos_file_import(path=pos_file([sale()]))

    again = pos_file_import(path=pos_file([sale()], name="copy.xml"))
    assert (again.created, again.updated, again.unchanged, again.warnings) == (0, 0, 1, 0)

    returned = pos_file_import(path=pos_file([sale(status="returned")], name="later.xml"))

    assert (returned.created, returned.updated) == (0, 1)
    assert Purchase.objects.count() == 1
    order.refresh_from_db()
    assert (order.status, order.till_purchase_id, order.customer) == (
        "returned",
        "000123",
        customer,
    )
    assert kinds(order)[2:] == [
        ("redemption_reversal", D("50.00")),
        ("accrual_reversal", D("-9.90")),
    ]
    assert balance(customer) == D("1000.00")
    assert ledger_differences() == []


def test_a_till_spend_above_the_held_one_is_redeemed_on_top_and_a_lower_one_refunds_nothing(
    customer, pos_file
):
    more, less = place(customer, "A-1"), place(customer, "A-2")

    run = pos_file_import(
        path=pos_file(
            [sale("1", ref="A-1", bonus_spent="80.00"), sale("2", ref="A-2", bonus_spent=None)]
        )
    )

    assert (run.created, run.updated) == (0, 2)
    more.refresh_from_db()
    less.refresh_from_db()
    assert (more.bonus_spent, less.bonus_spent) == (D("80.00"), D("50.00"))
    assert kinds(more) == [
        ("redemption", D("-50.00")),
        ("redemption", D("-30.00")),
        ("accrual", D("9.00")),  # 3 % of 380.00 − 80.00
    ]
    assert kinds(less) == [("redemption", D("-50.00")), ("accrual", D("9.90"))]
    assert ledger_differences() == []


def test_a_till_spend_the_balance_cannot_cover_rejects_the_sale_and_the_order_stays_placed(
    pos_file,
):
    poor = CustomerFactory(card_number="2900000012345")
    bonus_grant(poor.pk, MovementKind.CAMPAIGN, "60.00", key="seed-poor")
    order = place(poor)  # holds 50.00: 10.00 left

    run = pos_file_import(path=pos_file([sale(bonus_spent="80.00")]))

    assert (run.created, run.updated, run.rejected) == (0, 0, 1)
    issue = run.issues.get(level="error")
    assert (issue.record_id, issue.field) == ("000123", "bonus.spent")
    order.refresh_from_db()
    assert (order.status, order.till_purchase_id, order.total) == ("placed", "", D("400.00"))
    assert kinds(order) == [("redemption", D("-50.00"))]
    assert balance(poor) == D("10.00")


def test_the_order_keeps_its_customer_and_the_tills_card_creates_nobody(customer, pos_file):
    order = place(customer)
    customers = Customer.objects.count()

    pos_file_import(path=pos_file([sale(customer={"card": "2900000099999"})]))

    order.refresh_from_db()
    assert order.customer == customer and order.status == "completed"
    assert Customer.objects.count() == customers


def test_an_order_completed_through_the_api_is_matched_by_its_till_sale(customer, pos_file):
    order = place(customer)
    order_complete(order_id=order.pk)

    run = pos_file_import(path=pos_file([sale()]))

    assert (run.created, run.updated, run.warnings) == (0, 1, 0)
    order.refresh_from_db()
    assert (order.status, order.total, order.till_purchase_id) == (
        "completed",
        D("380.00"),
        "000123",
    )
    # The accrual follows the till's amounts: 3 % of 400.00 − 50.00 = 10.50, then 9.90.
    assert kinds(order) == [
        ("redemption", D("-50.00")),
        ("accrual", D("10.50")),
        ("accrual_reversal", D("-0.60")),
    ]
    assert ledger_differences() == []


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        ("cancelled", "Order “A-1001” is cancelled: imported as an ordinary purchase."),
        (
            "ambiguous",
            "Order “A-1001” is ambiguous: several channels have an order with this "
            "number. Imported as an ordinary purchase.",
        ),
        ("unknown", "Order “A-1001” is not known: imported as an ordinary purchase."),
    ],
)
def test_a_reference_that_completes_nothing_imports_an_ordinary_purchase_with_a_warning(
    customer, pos_file, prepare, message
):
    if prepare == "cancelled":
        order_cancel(order_id=place(customer).pk)
    elif prepare == "ambiguous":
        place(customer, source=Source.APP)
        place(customer, source=Source.SITE)

    run = pos_file_import(path=pos_file([sale()]))

    assert (run.created, run.updated, run.warnings) == (1, 0, 1)
    warning = run.issues.get(level="warning")
    assert (warning.record_id, warning.field, warning.message) == ("000123", "order_ref", message)
    till = Purchase.objects.get(source="pos")
    assert (till.external_id, till.order_ref, till.customer) == ("000123", "A-1001", customer)
    assert Purchase.objects.filter(status="placed").count() == (2 if prepare == "ambiguous" else 0)


def test_a_second_sale_naming_a_completed_order_is_an_ordinary_purchase(customer, pos_file):
    order = place(customer)

    run = pos_file_import(path=pos_file([sale("1"), sale("2")]))

    assert (run.created, run.updated, run.warnings) == (1, 1, 1)
    assert run.issues.get(level="warning").message == (
        "Order “A-1001” was completed by till sale 1: imported as an ordinary purchase."
    )
    order.refresh_from_db()
    assert order.till_purchase_id == "1"
    assert Purchase.objects.get(source="pos").external_id == "2"


def test_a_tills_online_sale_is_updated_by_its_export_not_duplicated(customer, pos_file):
    online = order_place(
        customer_id=customer.pk,
        number="000123",
        source=Source.POS,
        store_code="A-017",
        lines=[
            OrderLine(NUROFEN["sku"], D("1"), D("289.00")),
            OrderLine(MASK["sku"], D("2"), D("55.5")),
        ],
        bonus_to_spend=D("50.00"),
        status="completed",
    ).order

    run = pos_file_import(path=pos_file([sale(ref=None)]))

    assert (run.created, run.updated, run.warnings) == (0, 1, 0)
    assert Purchase.objects.get() == online
    online.refresh_from_db()
    assert (online.total, online.bonus_spent, online.customer) == (
        D("380.00"),
        D("50.00"),
        customer,
    )
    # 3 % of 400.00 − 50.00 online, then of 380.00 − 50.00 from the till's record.
    assert kinds(online) == [
        ("redemption", D("-50.00")),
        ("accrual", D("10.50")),
        ("accrual_reversal", D("-0.60")),
    ]
    assert ledger_differences() == []
