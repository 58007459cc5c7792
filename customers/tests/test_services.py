import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone

from customers import services
from customers.models import Consent, Customer, FamilyMember, Product, Source
from customers.selectors import (
    consent_current_map,
    customer_consent_granted,
    customers_with_consent,
)
from customers.services import (
    consent_record,
    customer_create,
    customer_update,
    family_member_add,
    product_get_or_create_from_line,
    products_ensure_from_lines,
)
from customers.tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

PHONE_TAKEN = "This phone number already belongs to another customer."
EMAIL_TAKEN = "This email address already belongs to another customer."
CARD_TAKEN = "This loyalty card already belongs to another customer."


def _messages(exc: ValidationError) -> dict[str, list[str]]:
    return {field: ValidationError(errors).messages for field, errors in exc.error_dict.items()}


def _snapshot(customer: Customer) -> tuple:
    customer = Customer.objects.get(pk=customer.pk)
    return (customer.phone, customer.email, customer.card_number, customer.first_name)


# --- customer_create ------------------------------------------------------------------------------


def test_creating_a_customer_normalises_phone_email_and_card():
    customer = customer_create(
        phone="8 (912) 345-67-89",
        email="  Anna.Ivanova@Example.RU ",
        card_number="2900 0000 12345",
        first_name="Анна",
        birth_date=dt.date(1985, 6, 1),
    )

    customer.refresh_from_db()
    assert customer.phone == "+79123456789"
    assert customer.email == "anna.ivanova@example.ru"
    assert customer.card_number == "2900000012345"
    assert customer.first_name == "Анна"
    assert customer.birth_date == dt.date(1985, 6, 1)
    assert customer.source == Source.ADMIN


def test_a_customer_may_be_created_without_any_identifier():
    customer = customer_create(first_name="Анна", phone="", email="  ", source=Source.POS)

    assert (customer.phone, customer.email, customer.card_number) == (None, None, None)
    assert customer.source == Source.POS


def test_every_bad_identifier_is_reported_under_its_own_field_at_once():
    with pytest.raises(ValidationError) as exc:
        customer_create(phone="12345", email="anna@", card_number="29000000A2345")

    assert _messages(exc.value) == {
        "phone": ["“12345” is not a valid phone number."],
        "email": ["“anna@” is not a valid email address."],
        "card_number": ["A loyalty card number has 13 digits; got “29000000A2345”."],
    }
    assert Customer.objects.count() == 0


def test_an_identifier_someone_else_holds_is_refused_naming_the_field():
    CustomerFactory(phone="+79123456789", email="other@example.ru", card_number="2900000012345")

    with pytest.raises(ValidationError) as exc:
        customer_create(phone="8 912 345-67-89", email="new@example.ru", first_name="Анна")

    assert _messages(exc.value) == {"phone": [PHONE_TAKEN]}
    assert exc.value.error_dict["phone"][0].code == "duplicate"
    assert Customer.objects.count() == 1


def test_every_identifier_someone_else_holds_is_reported():
    CustomerFactory(phone="+79123456789", email="other@example.ru", card_number="2900000012345")

    with pytest.raises(ValidationError) as exc:
        customer_create(phone="+79123456789", email="other@example.ru", card_number="2900000012345")

    assert _messages(exc.value) == {
        "phone": [PHONE_TAKEN],
        "email": [EMAIL_TAKEN],
        "card_number": [CARD_TAKEN],
    }
    assert Customer.objects.count() == 1


def test_an_email_someone_else_holds_is_refused_whatever_its_case():
    # Written past the service, so stored with capitals.
    CustomerFactory(email="Anna.Ivanova@Example.ru")

    with pytest.raises(ValidationError) as exc:
        customer_create(email="anna.ivanova@example.RU")

    assert _messages(exc.value) == {"email": [EMAIL_TAKEN]}
    assert Customer.objects.count() == 1


def test_a_bad_personal_field_is_reported_and_nothing_is_created():
    with pytest.raises(ValidationError) as exc:
        customer_create(phone="+79123456789", household_size=0, sex="X")

    assert set(exc.value.error_dict) == {"household_size", "sex"}
    assert Customer.objects.count() == 0


def test_creating_with_an_unknown_field_is_a_programming_error():
    with pytest.raises(TypeError) as exc:
        customer_create(phone="+79123456789", loyalty_status="vip")

    assert str(exc.value) == "customer_create() got unknown fields: ['loyalty_status']"
    assert Customer.objects.count() == 0


# --- customer_update ------------------------------------------------------------------------------


def test_updating_a_customer_normalises_the_identifiers_given():
    customer = CustomerFactory(phone="+79123456789", email="anna@example.ru")

    customer_update(
        customer=customer, data={"phone": "8 (912) 000-11-22", "email": "ANNA@new.example.ru"}
    )

    customer.refresh_from_db()
    assert customer.phone == "+79120001122"
    assert customer.email == "anna@new.example.ru"


def test_an_update_through_a_stale_copy_changes_only_its_own_fields():
    customer = CustomerFactory(first_name="Анна", city="Тула")
    stale = Customer.objects.get(pk=customer.pk)
    Customer.objects.filter(pk=customer.pk).update(first_name="Анюта")  # someone else, since

    customer_update(customer=stale, data={"city": "Тверь"}, source=Source.APP)

    customer.refresh_from_db()
    assert (customer.first_name, customer.city) == ("Анюта", "Тверь")
    assert customer.field_sources["city"][0] == Source.APP
    assert "first_name" not in customer.field_sources
    assert stale.city == "Тверь"


def test_a_customer_may_keep_their_own_identifiers_in_any_notation():
    customer = CustomerFactory(
        phone="+79123456789", email="anna@example.ru", card_number="2900000012345"
    )

    customer_update(
        customer=customer,
        data={
            "phone": "8 912 345 67 89",
            "email": "Anna@Example.ru",
            "card_number": "2900-000012345",
            "first_name": "Аня",
        },
    )

    assert _snapshot(customer) == ("+79123456789", "anna@example.ru", "2900000012345", "Аня")


def test_taking_another_customers_identifier_on_update_is_refused_and_nothing_changes():
    CustomerFactory(phone="+79120001122", email="boris@example.ru")
    customer = CustomerFactory(phone="+79123456789", email="anna@example.ru", first_name="Анна")
    before = _snapshot(customer)

    with pytest.raises(ValidationError) as exc:
        customer_update(
            customer=customer,
            data={"phone": "+7 912 000-11-22", "email": "BORIS@example.ru", "first_name": "Аня"},
        )

    assert _messages(exc.value) == {"phone": [PHONE_TAKEN], "email": [EMAIL_TAKEN]}
    assert _snapshot(customer) == before


def test_every_bad_identifier_on_update_is_reported_and_nothing_changes():
    customer = CustomerFactory()
    before = _snapshot(customer)

    with pytest.raises(ValidationError) as exc:
        customer_update(
            customer=customer, data={"phone": "телефон", "email": "@", "card_number": "1"}
        )

    assert set(exc.value.error_dict) == {"phone", "email", "card_number"}
    assert _snapshot(customer) == before


def test_an_identifier_can_be_cleared_on_update():
    customer = CustomerFactory(email="anna@example.ru")

    customer_update(customer=customer, data={"email": ""})

    customer.refresh_from_db()
    assert customer.email is None


def test_updating_an_unknown_field_is_a_programming_error():
    customer = CustomerFactory(first_name="Анна")

    with pytest.raises(TypeError) as exc:
        customer_update(customer=customer, data={"first_name": "Аня", "source": Source.APP})

    assert str(exc.value) == "customer_update() got unknown fields: ['source']"
    customer.refresh_from_db()
    assert (customer.first_name, customer.source) == ("Анна", Source.POS)


# --- A lost race between check and insert --------------------------------------------------------


def test_an_identifier_taken_between_the_check_and_the_insert_is_reported_on_its_field(
    monkeypatch,
):
    CustomerFactory(phone="+79123456789")
    real_check = services._check_identifiers_free
    checks = []

    def the_first_check_misses_it(identifiers, exclude_pk):
        # As if the other customer had been committed just after our check.
        checks.append(dict(identifiers))
        if len(checks) > 1:
            real_check(identifiers, exclude_pk)

    monkeypatch.setattr(services, "_check_identifiers_free", the_first_check_misses_it)

    with pytest.raises(ValidationError) as exc:
        customer_create(phone="+79123456789", first_name="Анна")

    assert _messages(exc.value) == {"phone": [PHONE_TAKEN]}
    assert len(checks) == 2
    assert Customer.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions")
@pytest.mark.django_db(transaction=True)
def test_two_customers_created_with_one_phone_at_once_give_one_customer_and_one_refusal(
    monkeypatch,
):
    # Both writers pass the duplicate check before either inserts: the database settles it.
    both_checked = threading.Barrier(2, timeout=10)
    real_check = services._check_identifiers_free
    local = threading.local()
    checks = []

    def check_then_wait(identifiers, exclude_pk):
        checks.append(threading.get_ident())
        real_check(identifiers, exclude_pk)
        if not getattr(local, "waited", False):
            local.waited = True
            both_checked.wait()

    monkeypatch.setattr(services, "_check_identifiers_free", check_then_wait)
    outcomes: list[object] = []

    def create(name: str) -> None:
        try:
            outcomes.append(customer_create(phone="8 (912) 345-67-89", first_name=name))
        except Exception as exc:  # the test inspects whatever was raised
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(name,)) for name in ("Анна", "Борис")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(outcomes) == 2
    # Two checks that found nothing, then the loser's check after its INSERT failed.
    assert len(checks) == 3
    created = [o for o in outcomes if isinstance(o, Customer)]
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(created) == 1
    assert len(refused) == 1
    assert _messages(refused[0]) == {"phone": [PHONE_TAKEN]}
    assert list(Customer.objects.values_list("phone", "first_name")) == [
        ("+79123456789", created[0].first_name)
    ]


# --- Consents -------------------------------------------------------------------------------------


def test_recording_consent_appends_and_the_latest_row_is_current():
    customer = CustomerFactory()
    morning = timezone.now() - dt.timedelta(hours=5)

    consent_record(customer=customer, channel="sms", granted=True, source=Source.APP)
    consent_record(
        customer=customer,
        channel="sms",
        granted=False,
        source=Source.POS,
        note="Отказ на кассе",
    )
    # A grant that happened earlier but arrived late does not override the later withdrawal.
    consent_record(
        customer=customer, channel="sms", granted=True, source=Source.SITE, occurred_at=morning
    )
    consent_record(customer=customer, channel="email", granted=True, source=Source.SITE)

    assert Consent.objects.filter(customer=customer).count() == 4
    current = consent_current_map(customer=customer)
    assert {channel: (c.granted, c.source) for channel, c in current.items()} == {
        "sms": (False, Source.POS),
        "email": (True, Source.SITE),
    }
    assert current["sms"].note == "Отказ на кассе"
    assert customer_consent_granted(customer=customer, channel="sms") is False
    assert customer_consent_granted(customer=customer, channel="email") is True
    assert customer_consent_granted(customer=customer, channel="viber") is False


def test_granting_again_after_a_withdrawal_makes_the_customer_reachable_again():
    customer = CustomerFactory()
    consent_record(customer=customer, channel="sms", granted=True, source=Source.APP)
    consent_record(customer=customer, channel="sms", granted=False, source=Source.APP)

    consent_record(customer=customer, channel="sms", granted=True, source=Source.APP)

    assert list(
        Consent.objects.filter(customer=customer).order_by("id").values_list("granted", flat=True)
    ) == [True, False, True]
    assert customer_consent_granted(customer=customer, channel="sms") is True


def test_customers_with_consent_go_by_each_customers_latest_row():
    now = timezone.now()
    granted, withdrawn, _never, other_channel = CustomerFactory.create_batch(4)
    consent_record(
        customer=granted,
        channel="sms",
        granted=False,
        source=Source.APP,
        occurred_at=now - dt.timedelta(days=2),
    )
    consent_record(customer=granted, channel="sms", granted=True, source=Source.APP)
    consent_record(
        customer=withdrawn,
        channel="sms",
        granted=True,
        source=Source.APP,
        occurred_at=now - dt.timedelta(days=2),
    )
    consent_record(customer=withdrawn, channel="sms", granted=False, source=Source.APP)
    consent_record(customer=other_channel, channel="email", granted=True, source=Source.APP)

    assert list(customers_with_consent(channel="sms")) == [granted]
    assert list(customers_with_consent(channel="email")) == [other_channel]
    assert (
        list(
            customers_with_consent(channel="sms", queryset=Customer.objects.exclude(pk=granted.pk))
        )
        == []
    )


def test_consent_for_an_unknown_channel_is_refused_and_not_recorded():
    customer = CustomerFactory()

    with pytest.raises(ValidationError) as exc:
        consent_record(customer=customer, channel="telegram", granted=True, source=Source.APP)

    assert set(exc.value.error_dict) == {"channel"}
    assert Consent.objects.count() == 0


def test_consent_from_an_unknown_source_is_refused_and_not_recorded():
    customer = CustomerFactory()

    with pytest.raises(ValidationError) as exc:
        consent_record(customer=customer, channel="sms", granted=True, source="fax")

    assert set(exc.value.error_dict) == {"source"}
    assert Consent.objects.count() == 0


# --- Family ---------------------------------------------------------------------------------------


def test_a_relative_is_added_to_the_customers_card():
    customer = CustomerFactory()

    member = family_member_add(
        customer=customer,
        name="Пётр",
        relation=FamilyMember.Relation.CHILD,
        birth_date=dt.date(2015, 3, 1),
        sex="M",
    )

    assert list(customer.family_members.values_list("name", "relation", "birth_date", "sex")) == [
        ("Пётр", "child", dt.date(2015, 3, 1), "M")
    ]
    assert str(member) == "Пётр (Child)"


def test_a_relative_with_an_unknown_relation_is_refused_and_not_added():
    customer = CustomerFactory()

    with pytest.raises(ValidationError) as exc:
        family_member_add(customer=customer, name="Пётр", relation="neighbour")

    assert set(exc.value.error_dict) == {"relation"}
    assert FamilyMember.objects.count() == 0


def test_a_relative_without_a_name_is_refused_and_not_added():
    customer = CustomerFactory()

    with pytest.raises(ValidationError) as exc:
        family_member_add(customer=customer, name="", relation=FamilyMember.Relation.SPOUSE)

    assert set(exc.value.error_dict) == {"name"}
    assert FamilyMember.objects.count() == 0


# --- Products named by till lines -----------------------------------------------------------------


def test_an_unknown_sku_on_a_till_line_creates_a_product_to_complete():
    product = product_get_or_create_from_line(sku=" 4601234567890 ", name="НУРОФЕН  ТАБ 200МГ")

    assert (product.sku, product.name, product.needs_review) == (
        "4601234567890",
        "НУРОФЕН ТАБ 200МГ",
        True,
    )
    assert Product.objects.count() == 1


def test_a_known_sku_on_a_till_line_returns_the_product_unchanged():
    known = ProductFactory(sku="4601234567890", name="Нурофен, таблетки 200 мг")

    product = product_get_or_create_from_line(sku="4601234567890", name="НУРОФЕН ТАБ")

    assert product.pk == known.pk
    known.refresh_from_db()
    assert (known.name, known.needs_review) == ("Нурофен, таблетки 200 мг", False)
    assert Product.objects.count() == 1


def test_a_till_line_without_a_name_is_named_by_its_sku():
    product = product_get_or_create_from_line(sku="4601234567890", name="  ")

    assert product.name == "4601234567890"


@pytest.mark.parametrize("sku", ["", "   ", "4" * 65])
def test_a_till_line_with_a_blank_or_overlong_sku_is_refused(sku):
    with pytest.raises(ValidationError) as exc:
        product_get_or_create_from_line(sku=sku, name="Нурофен")

    assert set(exc.value.error_dict) == {"sku"}
    assert Product.objects.count() == 0


def test_products_for_till_lines_are_found_or_created_in_a_few_queries(
    django_assert_num_queries,
):
    known = ProductFactory(sku="4601234567890", name="Нурофен")
    lines = {
        "4601234567890": "НУРОФЕН ТАБ",
        "4601234567891": "АСПИРИН ТАБ",
        " 4601234567892": "",
    }

    # Known ones, then one INSERT for the new ones, then their ids.
    with django_assert_num_queries(3):
        ids = products_ensure_from_lines(lines)

    new = {p.sku: p for p in Product.objects.exclude(pk=known.pk)}
    assert ids == {
        "4601234567890": known.pk,
        "4601234567891": new["4601234567891"].pk,
        " 4601234567892": new["4601234567892"].pk,
    }
    assert {sku: (p.name, p.needs_review) for sku, p in new.items()} == {
        "4601234567891": ("АСПИРИН ТАБ", True),
        "4601234567892": ("4601234567892", True),
    }
    known.refresh_from_db()
    assert (known.name, known.needs_review) == ("Нурофен", False)


def test_products_for_known_till_lines_take_one_query(django_assert_num_queries):
    a, b = ProductFactory(sku="A"), ProductFactory(sku="B")

    with django_assert_num_queries(1):
        ids = products_ensure_from_lines({"A": "a", "B": "b"})

    assert ids == {"A": a.pk, "B": b.pk}


def test_a_bad_sku_among_till_lines_refuses_them_all():
    with pytest.raises(ValidationError) as exc:
        products_ensure_from_lines({"4601234567891": "Аспирин", "": "Без артикула"})

    assert set(exc.value.error_dict) == {"sku"}
    assert Product.objects.count() == 0
