import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from customers.identity import IdentityRecord, Outcome, customer_resolve, field_wins
from customers.merge import customer_merge
from customers.models import (
    Customer,
    DuplicateSuspicion,
    ExternalId,
    IdentifierAlias,
    MergeRecord,
    Purchase,
    Source,
)
from customers.tests.factories import (
    ConsentFactory,
    CustomerFactory,
    FamilyMemberFactory,
    PurchaseFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db


def pos(**kwargs) -> IdentityRecord:
    return IdentityRecord(source=Source.POS, **kwargs)


def buy(customer, store_code):
    return PurchaseFactory(customer=customer, store=StoreFactory(code=store_code))


def test_one_person_through_three_stores_is_one_customer_with_every_purchase():
    first = customer_resolve(record=pos(card="2900000012345"))
    buy(first.customer, "A-001")
    second = customer_resolve(record=pos(phone="8 912 345-67-89"))
    buy(second.customer, "A-002")
    assert first.outcome == second.outcome == Outcome.CREATED
    assert Customer.objects.count() == 2

    third = customer_resolve(record=pos(phone="+7 (912) 345 67 89", card="2900000012345"))
    buy(third.customer, "A-003")

    assert third.outcome == Outcome.MERGED
    assert Customer.objects.count() == 1
    survivor = Customer.objects.get()
    assert survivor.card_number == "2900000012345"
    assert survivor.phone == "+79123456789"
    assert Purchase.objects.filter(customer=survivor).count() == 3
    assert MergeRecord.objects.get().merged_customer_id == second.customer.pk


def test_two_people_sharing_a_phone_stay_two_customers_with_a_suspicion():
    mother = customer_resolve(
        record=pos(card="2900000000011", phone="89123456789", data={"first_name": "Анна"})
    ).customer
    son = customer_resolve(record=pos(card="2900000000028", data={"first_name": "Пётр"})).customer

    result = customer_resolve(
        record=pos(card="2900000000028", phone="+79123456789", data={"first_name": "Пётр"})
    )

    assert result.outcome == Outcome.SUSPECTED
    assert result.customer == son  # the card is the stronger identifier
    assert Customer.objects.count() == 2
    son.refresh_from_db()
    mother.refresh_from_db()
    assert son.phone is None  # the phone stays with the customer who holds it
    assert mother.phone == "+79123456789"
    suspicion = DuplicateSuspicion.objects.get()
    assert (suspicion.customer, suspicion.other) == (son, mother)
    assert suspicion.shared == "phone"  # what named the other customer
    assert suspicion.reason == "different first names"


def test_a_repeated_suspicion_is_recorded_once():
    customer_resolve(
        record=pos(card="2900000000011", phone="89123456789", data={"first_name": "Анна"})
    )
    customer_resolve(record=pos(card="2900000000028", data={"first_name": "Пётр"}))
    for _ in range(2):
        customer_resolve(record=pos(card="2900000000028", phone="89123456789"))
    assert DuplicateSuspicion.objects.count() == 1


def test_do_not_merge_keeps_records_apart_even_without_conflicting_data():
    a = CustomerFactory(card_number="2900000000011", phone=None, email=None, do_not_merge=True)
    b = CustomerFactory(card_number=None, phone="+79123456789", email=None)
    result = customer_resolve(record=pos(card="2900000000011", phone="89123456789"))
    assert result.outcome == Outcome.SUSPECTED
    assert set(Customer.objects.values_list("pk", flat=True)) == {a.pk, b.pk}


def test_till_data_never_overwrites_what_the_customer_gave_through_the_app():
    app = customer_resolve(
        record=IdentityRecord(
            source=Source.APP, phone="89123456789", data={"first_name": "Анна", "city": ""}
        )
    ).customer
    customer_resolve(record=pos(phone="89123456789", data={"first_name": "Аня", "city": "Тула"}))
    app.refresh_from_db()
    assert app.first_name == "Анна"
    assert app.city == "Тула"  # an empty field is filled from any source
    assert app.field_sources["first_name"][0] == "app"
    assert app.field_sources["city"][0] == "pos"


def test_an_admin_edit_beats_the_app_and_the_app_beats_the_till():
    assert field_wins(
        current_value="Аня",
        current_source=["app", "2026-01-01"],
        new_value="Анна",
        new_source="admin",
        new_at="2025-01-01",
    )
    assert not field_wins(
        current_value="Анна",
        current_source=["admin", "2026-01-01"],
        new_value="Аня",
        new_source="app",
        new_at="2027-01-01",
    )
    assert field_wins(
        current_value="Аня",
        current_source=["pos", "2026-01-01"],
        new_value="Анна",
        new_source="site",
        new_at="2020-01-01",
    )
    assert field_wins(
        current_value="Аня",
        current_source=["app", "2026-01-01"],
        new_value="Анна",
        new_source="site",
        new_at="2026-02-01",
    )


def test_a_record_without_any_identifier_is_refused_and_creates_nothing():
    with pytest.raises(ValidationError) as exc:
        customer_resolve(record=pos(data={"first_name": "Анна"}))
    assert exc.value.code == "no_identifier"
    assert Customer.objects.count() == 0


def test_every_bad_identifier_is_reported_under_its_field():
    with pytest.raises(ValidationError) as exc:
        customer_resolve(record=pos(card="123", phone="12345", email="anna@"))
    assert set(exc.value.error_dict) == {"card", "phone", "email"}
    assert Customer.objects.count() == 0


def test_external_ids_find_the_customer_and_are_attached_once():
    created = customer_resolve(
        record=IdentityRecord(source=Source.APP, phone="89123456789", external_ids=[("app", "u-1")])
    ).customer
    found = customer_resolve(
        record=IdentityRecord(source=Source.APP, external_ids=[("app", "u-1")], email="A@B.RU")
    )
    assert found.customer == created
    assert found.outcome == Outcome.MATCHED
    assert ExternalId.objects.filter(customer=created).count() == 1
    created.refresh_from_db()
    assert created.email == "a@b.ru"


def test_merge_moves_everything_and_old_identifiers_find_the_survivor():
    a = CustomerFactory(card_number="2900000000011", phone="+79120000001", email="a@example.ru")
    b = CustomerFactory(
        card_number="2900000000028",
        phone="+79120000002",
        email="b@example.ru",
        first_name="",
        last_name="",
        middle_name="",
        birth_date=dt.date(1980, 5, 1),
    )
    for _ in range(3):
        PurchaseFactory(customer=b)
    PurchaseFactory(customer=a)
    FamilyMemberFactory(customer=b)
    ConsentFactory(customer=b, channel="sms", granted=True)
    ConsentFactory(customer=b, channel="sms", granted=False)
    ExternalId.objects.create(customer=b, system="site", external_id="s-9")

    record = customer_merge(survivor=a, merged=b, reason=MergeRecord.Reason.MANUAL)

    a.refresh_from_db()
    assert not Customer.objects.filter(pk=b.pk).exists()
    assert a.purchases.count() == 4
    assert a.family_members.count() == 1
    assert a.consents.count() == 2
    assert a.external_ids.get().external_id == "s-9"
    assert a.birth_date == dt.date(1980, 5, 1)  # A had none
    assert record.moved["purchases"] == 3
    assert record.merged_phone == "+79120000002"
    # Neither card carries a field source: B's are the more recent, so A takes them and its
    # own become aliases; either way every old identifier still finds A.
    assert (a.phone, a.card_number, a.email) == ("+79120000002", "2900000000028", "b@example.ru")
    assert set(IdentifierAlias.objects.values_list("kind", "value")) == {
        ("card", "2900000000011"),
        ("phone", "+79120000001"),
        ("email", "a@example.ru"),
    }
    for old in (
        {"phone": "8 912 000-00-01"},
        {"phone": "8 912 000-00-02"},
        {"card": "2900000000011"},
        {"card": "2900000000028"},
        {"email": "A@example.ru"},
        {"email": "b@example.ru"},
    ):
        found = customer_resolve(record=pos(**old))
        assert found.customer == a
        assert found.outcome == Outcome.MATCHED
    assert Customer.objects.count() == 1


def test_merging_twice_changes_nothing_more():
    a = CustomerFactory()
    b = CustomerFactory()
    PurchaseFactory(customer=b)
    first = customer_merge(survivor=a, merged=b, reason=MergeRecord.Reason.MANUAL)
    second = customer_merge(survivor=a, merged=b, reason=MergeRecord.Reason.MANUAL)
    assert first.pk == second.pk
    assert MergeRecord.objects.count() == 1
    assert a.purchases.count() == 1


def test_in_a_merge_the_more_trusted_source_wins_field_by_field():
    a = CustomerFactory(
        first_name="Аня",
        city="Тула",
        field_sources={"first_name": ["pos", "2026-05-01"], "city": ["app", "2026-01-01"]},
    )
    b = CustomerFactory(
        first_name="Анна",
        city="Орёл",
        field_sources={"first_name": ["app", "2025-01-01"], "city": ["app", "2026-03-01"]},
    )
    customer_merge(survivor=a, merged=b, reason=MergeRecord.Reason.MANUAL)
    a.refresh_from_db()
    assert a.first_name == "Анна"  # app beats pos, however recent
    assert a.city == "Орёл"  # same trust: the more recent
    assert a.field_sources["first_name"] == ["app", "2025-01-01"]


def test_an_admin_edit_is_not_overwritten_by_the_app_or_the_till():
    from customers.services import customer_create, customer_update

    customer = customer_create(phone="89123456789", first_name="Аня")
    customer_update(customer=customer, data={"first_name": "Анна", "city": "Тула"})
    for source in (Source.APP, Source.POS):
        customer_resolve(
            record=IdentityRecord(
                source=source, phone="+79123456789", data={"first_name": "Анюта", "city": "Орёл"}
            )
        )
    customer.refresh_from_db()
    assert (customer.first_name, customer.city) == ("Анна", "Тула")
    assert customer.field_sources["first_name"][0] == "admin"


def test_putting_a_merged_customers_old_phone_on_a_card_releases_the_alias():
    from customers.services import customer_create

    IdentifierAlias.objects.create(kind="phone", value="+79123456789", customer=CustomerFactory())
    new_owner = customer_create(phone="8 912 345 67 89")
    assert not IdentifierAlias.objects.exists()
    assert customer_resolve(record=pos(phone="+79123456789")).customer == new_owner


@pytest.mark.django_db(transaction=True)
def test_two_opposite_merges_of_one_pair_at_once_leave_one_customer():
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("real concurrency is tested on PostgreSQL")
    a, b = CustomerFactory(), CustomerFactory()
    PurchaseFactory(customer=a)
    PurchaseFactory(customer=b)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def merge(survivor, merged):
        from django.db import connections

        try:
            barrier.wait()
            results.append(
                customer_merge(survivor=survivor, merged=merged, reason=MergeRecord.Reason.MANUAL)
            )
        except Exception as exc:  # collected for the assertion
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=merge, args=(a, b)),
        threading.Thread(target=merge, args=(b, a)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Customer.objects.count() == 1
    assert MergeRecord.objects.count() == 1
    assert Customer.objects.get().purchases.count() == 2
    assert {r.pk for r in results} == {MergeRecord.objects.get().pk}
