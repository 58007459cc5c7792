"""The database itself refuses what the services would refuse: these write past the services."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from customers.models import Customer, ExternalId, Purchase, PurchaseLine, Reservation, Source
from customers.tests.factories import (
    CustomerFactory,
    ExternalIdFactory,
    ProductFactory,
    PurchaseFactory,
    PurchaseLineFactory,
    ReservationFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db


def _refused(create, errors: type[Exception] | tuple = IntegrityError) -> None:
    with pytest.raises(errors), transaction.atomic():
        create()


def _customer(**fields) -> Customer:
    return Customer.objects.create(**{"phone": None, "email": None, "card_number": None, **fields})


# --- Customer identifiers -------------------------------------------------------------------------


def test_a_phone_belongs_to_one_customer():
    _customer(phone="+79123456789")

    _refused(lambda: _customer(phone="+79123456789"))

    assert Customer.objects.count() == 1


def test_an_email_belongs_to_one_customer_whatever_its_case():
    _customer(email="anna@example.ru")

    _refused(lambda: _customer(email="Anna@Example.RU"))

    assert list(Customer.objects.values_list("email", flat=True)) == ["anna@example.ru"]


def test_a_card_belongs_to_one_customer():
    _customer(card_number="2900000012345")

    _refused(lambda: _customer(card_number="2900000012345"))

    assert Customer.objects.count() == 1


@pytest.mark.parametrize(
    ("card", "errors"),
    [
        ("290000001234", IntegrityError),
        ("29000000A2345", IntegrityError),
        ("", IntegrityError),
        # Too long: PostgreSQL's varchar(13) refuses it first, SQLite's check constraint does.
        ("29000000123456", (IntegrityError, DataError)),
    ],
)
def test_a_card_number_must_be_13_digits(card, errors):
    _refused(lambda: _customer(card_number=card), errors)

    assert Customer.objects.count() == 0


@pytest.mark.parametrize("phone", ["79123456789", "89123456789", ""])
def test_a_phone_must_be_stored_in_e164_with_a_plus(phone):
    _refused(lambda: _customer(phone=phone))

    assert Customer.objects.count() == 0


def test_customers_without_phone_email_or_card_may_be_many():
    _customer()
    _customer()
    _customer()

    assert Customer.objects.filter(phone=None, email=None, card_number=None).count() == 3


def test_an_external_id_is_unique_per_system():
    ExternalIdFactory(system=ExternalId.System.APP, external_id="u-1")
    ExternalIdFactory(system=ExternalId.System.SITE, external_id="u-1")
    other = CustomerFactory()

    _refused(
        lambda: ExternalId.objects.create(
            customer=other, system=ExternalId.System.APP, external_id="u-1"
        )
    )

    assert ExternalId.objects.count() == 2


# --- Purchases ------------------------------------------------------------------------------------


def test_a_purchase_id_is_unique_per_source_and_store():
    store, other_store = StoreFactory(), StoreFactory()
    customer = CustomerFactory()
    PurchaseFactory(source=Source.POS, store=store, external_id="000123", customer=customer)
    # The same receipt number in another store, or from another system, is another purchase.
    PurchaseFactory(source=Source.POS, store=other_store, external_id="000123", customer=customer)
    PurchaseFactory(source=Source.APP, store=store, external_id="000123", customer=customer)

    _refused(
        lambda: PurchaseFactory(
            source=Source.POS, store=store, external_id="000123", customer=customer
        )
    )

    assert Purchase.objects.filter(external_id="000123").count() == 3


def test_a_purchase_id_without_a_store_is_unique_per_source():
    customer = CustomerFactory()
    PurchaseFactory(source=Source.APP, store=None, external_id="A-1", customer=customer)
    PurchaseFactory(source=Source.SITE, store=None, external_id="A-1", customer=customer)
    PurchaseFactory(source=Source.POS, store=StoreFactory(), external_id="A-1", customer=customer)

    _refused(
        lambda: PurchaseFactory(source=Source.APP, store=None, external_id="A-1", customer=customer)
    )
    # An app or website order number is its channel's, whatever store it is picked up in.
    _refused(
        lambda: PurchaseFactory(
            source=Source.APP, store=StoreFactory(), external_id="A-1", customer=customer
        )
    )

    assert Purchase.objects.filter(external_id="A-1").count() == 3


@pytest.mark.parametrize("field", ["total", "discount", "bonus_spent"])
def test_purchase_money_cannot_be_negative(field):
    customer, store = CustomerFactory(), StoreFactory()
    PurchaseFactory(customer=customer, store=store, **{field: Decimal("0.00")})

    _refused(lambda: PurchaseFactory(customer=customer, store=store, **{field: Decimal("-0.01")}))

    assert Purchase.objects.count() == 1


@pytest.mark.parametrize("qty", [Decimal("0"), Decimal("-1")])
def test_a_purchase_line_quantity_must_be_positive(qty):
    purchase, product = PurchaseFactory(), ProductFactory()

    _refused(lambda: PurchaseLineFactory(purchase=purchase, product=product, qty=qty))

    assert PurchaseLine.objects.count() == 0


def test_a_purchase_line_price_cannot_be_negative_but_may_be_zero():
    purchase, product = PurchaseFactory(), ProductFactory()
    PurchaseLineFactory(purchase=purchase, product=product, price=Decimal("0.00"))

    _refused(
        lambda: PurchaseLineFactory(purchase=purchase, product=product, price=Decimal("-0.01"))
    )

    assert PurchaseLine.objects.count() == 1


@pytest.mark.parametrize("quantity", [Decimal("0"), Decimal("-1")])
def test_a_reservation_quantity_must_be_positive(quantity):
    customer, store, product = CustomerFactory(), StoreFactory(), ProductFactory()

    _refused(
        lambda: ReservationFactory(
            customer=customer, store=store, product=product, quantity=quantity
        )
    )

    assert Reservation.objects.count() == 0


def test_a_reservation_id_is_unique_per_source_but_blank_ids_may_repeat():
    customer, store, product = CustomerFactory(), StoreFactory(), ProductFactory()
    common = {"customer": customer, "store": store, "product": product}
    ReservationFactory(**common, source=Source.SITE, external_id="R-1")
    ReservationFactory(**common, source=Source.SITE, external_id="")
    ReservationFactory(**common, source=Source.SITE, external_id="")

    _refused(lambda: ReservationFactory(**common, source=Source.SITE, external_id="R-1"))

    assert Reservation.objects.count() == 3


# --- Customer helpers -----------------------------------------------------------------------------


def test_a_customer_is_shown_by_full_name():
    customer = CustomerFactory.build(last_name="Иванова", first_name="Анна", middle_name="")

    assert customer.full_name == "Иванова Анна"
    assert str(customer) == "Иванова Анна"


def test_a_customer_without_a_name_is_shown_by_phone_then_card_then_email_then_id():
    nameless = {"last_name": "", "first_name": "", "middle_name": ""}
    customer = _customer(
        phone="+79123456789", card_number="2900000012345", email="a@example.ru", **nameless
    )
    assert customer.full_name == ""
    assert str(customer) == "+79123456789"

    customer.phone = None
    assert str(customer) == "2900000012345"

    customer.card_number = None
    assert str(customer) == "a@example.ru"

    customer.email = None
    assert str(customer) == f"Customer #{customer.pk}"


@pytest.mark.parametrize(
    ("today", "birth_date", "age"),
    [
        (dt.date(2026, 3, 14), dt.date(1980, 3, 14), 46),  # birthday today
        (dt.date(2026, 3, 14), dt.date(1980, 3, 15), 45),  # birthday tomorrow
        (dt.date(2026, 3, 14), dt.date(2026, 3, 14), 0),  # born today
        (dt.date(2026, 2, 28), dt.date(2000, 2, 29), 25),  # a leap-day birthday not reached yet
        (dt.date(2026, 3, 1), dt.date(2000, 2, 29), 26),
    ],
)
def test_age_is_whole_years_on_the_chains_date(monkeypatch, today, birth_date, age):
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: today)

    assert CustomerFactory.build(birth_date=birth_date).age == age


def test_age_is_unknown_without_a_birth_date():
    assert CustomerFactory.build(birth_date=None).age is None
