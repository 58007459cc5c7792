"""POST /api/v1/customers/ (registration through identity resolution), GET and PATCH
/api/v1/customers/{id}/."""

import datetime as dt
import logging

import pytest

from customers.merge import customer_merge
from customers.models import Customer, DuplicateSuspicion, ExternalId, IdentifierAlias, Source
from customers.services import customer_update
from customers.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/"


@pytest.fixture
def site(channel):
    return channel("site", "customers:read", "customers:write")


def _customers() -> list[tuple]:
    return list(
        Customer.objects.order_by("pk").values_list("pk", "phone", "card_number", "first_name")
    )


# --- Registration ---------------------------------------------------------------------------------


def test_registering_a_new_person_answers_201_with_the_customer(site):
    response = site.post(
        URL,
        {
            "phone": "8 (912) 345-67-89",
            "email": " Anna@Example.RU ",
            "external_ids": [{"system": "site", "id": "u-77"}],
            "first_name": "Анна",
            "last_name": "Иванова",
            "birth_date": "1985-06-01",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    customer = Customer.objects.get()
    assert body["outcome"] == "created" and body["merged_ids"] == []
    assert body["customer"]["id"] == customer.pk
    assert (body["customer"]["phone"], body["customer"]["email"]) == (
        "+79123456789",
        "anna@example.ru",
    )
    assert body["customer"]["birth_date"] == "1985-06-01"
    assert body["customer"]["created_at"].endswith("+03:00")
    assert customer.source == Source.SITE
    assert customer.field_sources["first_name"][0] == "site"
    assert list(ExternalId.objects.values_list("system", "external_id", "customer")) == [
        ("site", "u-77", customer.pk)
    ]


def test_registering_a_known_person_answers_200_and_fills_empty_fields(site):
    anna = CustomerFactory(phone="+79123456789", email=None, city="", source=Source.POS)

    response = site.post(
        URL, {"phone": "+7 912 345 67 89", "email": "anna@example.ru", "city": "Тверь"}, "json"
    )

    assert response.status_code == 200
    assert response.json()["outcome"] == "matched"
    assert response.json()["customer"]["id"] == anna.pk
    anna.refresh_from_db()
    assert (anna.email, anna.city) == ("anna@example.ru", "Тверь")
    assert Customer.objects.count() == 1


def test_two_customers_of_one_person_are_merged_and_the_survivor_returned(site):
    by_card = CustomerFactory(
        card_number="2900000012345", phone=None, email=None, first_name="", last_name=""
    )
    by_phone = CustomerFactory(phone="+79123456789", card_number=None, email=None)

    response = site.post(URL, {"card": "2900000012345", "phone": "89123456789"}, "json")

    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "merged" and body["merged_ids"] == [by_phone.pk]
    assert body["customer"]["id"] == by_card.pk
    assert (body["customer"]["phone"], body["customer"]["card_number"]) == (
        "+79123456789",
        "2900000012345",
    )
    assert list(Customer.objects.values_list("pk", flat=True)) == [by_card.pk]


def test_a_family_sharing_a_phone_stays_two_customers_with_a_suspicion(site):
    mother = CustomerFactory(phone="+79123456789", card_number=None, first_name="Анна")
    daughter = CustomerFactory(phone=None, card_number="2900000012345", first_name="Мария")

    response = site.post(
        URL, {"card": "2900000012345", "phone": "+79123456789", "first_name": "Мария"}, "json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "suspected" and body["merged_ids"] == []
    assert body["customer"]["id"] == daughter.pk  # the card is the stronger identifier
    assert body["customer"]["phone"] is None  # the phone stays with the mother
    (suspicion,) = DuplicateSuspicion.objects.all()
    assert {suspicion.customer_id, suspicion.other_id} == {mother.pk, daughter.pk}
    assert suspicion.source == "site"
    assert Customer.objects.count() == 2


def test_the_till_only_fills_what_the_app_left_empty(channel):
    pos = channel("pos", "customers:write")
    anna = CustomerFactory(
        phone="+79123456789",
        first_name="Анна",
        city="",
        field_sources={"first_name": ["app", "2026-01-01T10:00:00+03:00"]},
    )

    response = pos.post(URL, {"phone": "+79123456789", "first_name": "Аня", "city": "Тула"}, "json")

    assert response.status_code == 200
    anna.refresh_from_db()
    assert (anna.first_name, anna.city) == ("Анна", "Тула")
    assert anna.field_sources["city"][0] == "pos"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"phone": "12345"}, {"phone"}),
        ({"card": "29000000A2345"}, {"card"}),
        ({"email": "anna@"}, {"email"}),
        ({"phone": "12345", "email": "anna@", "card": "1"}, {"phone", "email", "card"}),
        ({"external_ids": [{"system": "crm", "id": "1"}]}, {"external_ids.0.system"}),
        ({"external_ids": [{"system": "app", "id": ""}]}, {"external_ids.0.id"}),
        ({"external_ids": "app:1"}, {"external_ids"}),
        ({"phone": "+79123456789", "birth_date": "01.06.1985"}, {"birth_date"}),
        ({"phone": "+79123456789", "birth_date": "2999-01-01"}, {"birth_date"}),
        ({"phone": "+79123456789", "sex": "X"}, {"sex"}),
        ({"phone": "+79123456789", "household_size": "many"}, {"household_size"}),
        ({"phone": "+79123456789", "household_size": 0}, {"household_size"}),
        ({"phone": "+79123456789", "first_name": "А" * 101}, {"first_name"}),
        ({"phone": "9" * 10_000}, {"phone"}),
        ({"phone": ["+79123456789"]}, {"phone"}),
        ({"phone": "+79123456789", "do_not_merge": True}, {"do_not_merge"}),
        ({"phone": "+79123456789", "id": 5, "field_sources": {}}, {"id", "field_sources"}),
        ({"first_name": "Анна"}, {"non_field_errors"}),
        ({}, {"non_field_errors"}),
        ([], {"non_field_errors"}),
        ("+79123456789", {"non_field_errors"}),
    ],
)
def test_bad_registrations_answer_400_naming_the_field_and_write_nothing(site, body, fields):
    CustomerFactory(phone="+79990000000")
    before = _customers()

    response = site.post(URL, body, "json")

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert set(response.json()["errors"]) == fields
    assert _customers() == before
    assert not ExternalId.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"phone": "+79123456789",',  # cut short
        b"\xff\xfe not json",
        b'{"phone": NaN}',
    ],
)
def test_a_body_that_is_not_json_text_answers_400(site, raw):
    response = site.generic("POST", URL, raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"phone": "+79123456789", "first_name": "\\ud800"}',  # a lone surrogate
        b'{"phone": "+79123456789", "first_name": "\\u0000"}',  # NUL
    ],
)
def test_text_that_cannot_be_stored_answers_400_naming_the_field(site, raw):
    response = site.generic("POST", URL, raw, content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert body["errors"]["first_name"][0]["code"] == "invalid_text"
    assert not Customer.objects.exists()


def test_a_form_encoded_body_answers_415(site):
    response = site.post(URL, {"phone": "+79123456789"})  # multipart

    assert response.status_code == 415
    assert not Customer.objects.exists()


def test_a_client_of_kind_other_cannot_register_customers(api):
    other = api("customers:write")  # kind "other": no channel to record data under

    response = other.post(URL, {"phone": "+79123456789"}, "json")

    assert (response.status_code, response.json()["code"]) == (403, "client_without_channel")
    assert not Customer.objects.exists()


def test_registering_needs_the_write_scope(channel):
    reader = channel("app", "customers:read")

    response = reader.post(URL, {"phone": "+79123456789"}, "json")

    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
    assert not Customer.objects.exists()


# --- The card -------------------------------------------------------------------------------------


def test_the_card_of_a_customer(site):
    anna = CustomerFactory(phone="+79123456789", birth_date=dt.date(1985, 6, 1), sex="F")

    response = site.get(f"{URL}{anna.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == anna.pk and body["phone"] == "+79123456789"
    assert (body["birth_date"], body["sex"], body["last_name"]) == ("1985-06-01", "F", "Иванова")
    assert body["updated_at"].endswith("+03:00")
    assert "field_sources" not in body and "do_not_merge" not in body


def test_an_unknown_customer_answers_404(site):
    for pk in (12345, 0, 2**63, 10**30):
        response = site.get(f"{URL}{pk}/")
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), pk
        response = site.patch(f"{URL}{pk}/", {"first_name": "Анна"}, "json")
        assert response.status_code == 404, pk


def test_a_merged_customer_answers_404_naming_the_survivor(site):
    survivor = CustomerFactory(phone="+79123456789", card_number=None, email=None)
    merged = CustomerFactory(phone=None, card_number="2900000099999", email=None)
    merged_id = merged.pk
    customer_merge(survivor=survivor, merged=merged, reason="test")

    response = site.get(f"{URL}{merged_id}/")

    assert (response.status_code, response.json()["code"]) == (404, "customer_merged")
    assert str(survivor.pk) in response.json()["message"]


def test_reading_the_card_needs_the_read_scope(channel):
    writer = channel("app", "customers:write")
    anna = CustomerFactory()

    assert writer.get(f"{URL}{anna.pk}/").status_code == 403


def test_the_card_costs_a_constant_number_of_queries(site, django_assert_max_num_queries):
    anna = CustomerFactory()
    site.get(f"{URL}{anna.pk}/")  # the token's last use is written once in five minutes

    with django_assert_max_num_queries(2):  # token, customer
        assert site.get(f"{URL}{anna.pk}/").status_code == 200


# --- Changing the card ----------------------------------------------------------------------------


def test_a_channel_changes_the_fields_it_sends(channel):
    app = channel("app", "customers:write")
    anna = CustomerFactory(phone="+79123456789", first_name="Анна", city="Москва")

    response = app.patch(
        f"{URL}{anna.pk}/", {"phone": "8 912 000-11-22", "first_name": "Аня"}, "json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["customer"]["phone"], body["customer"]["first_name"]) == ("+79120001122", "Аня")
    assert body["customer"]["city"] == "Москва"
    assert sorted(body["changed_fields"]) == ["first_name", "phone"]
    assert body["kept_fields"] == []
    anna.refresh_from_db()
    assert (anna.phone, anna.first_name) == ("+79120001122", "Аня")
    assert anna.field_sources["phone"][0] == anna.field_sources["first_name"][0] == "app"
    # The replaced phone still finds her (as after identity resolution).
    assert IdentifierAlias.objects.get(kind="phone", value="+79123456789").customer_id == anna.pk


def test_the_till_never_overwrites_what_the_app_gave_and_an_admin_edit_beats_both(channel):
    pos, app = channel("pos", "customers:write"), channel("app", "customers:write")
    anna = CustomerFactory(first_name="", last_name="", city="", source=Source.POS)
    assert app.patch(f"{URL}{anna.pk}/", {"first_name": "Анна"}, "json").status_code == 200
    anna.refresh_from_db()
    customer_update(customer=anna, data={"city": "Тверь"}, source=Source.ADMIN)

    response = pos.patch(f"{URL}{anna.pk}/", {"first_name": "Аня", "last_name": "Иванова"}, "json")

    assert response.status_code == 200
    assert response.json()["kept_fields"] == ["first_name"]
    assert response.json()["changed_fields"] == ["last_name"]
    response = app.patch(f"{URL}{anna.pk}/", {"city": "Тула", "last_name": "Петрова"}, "json")
    assert response.json()["kept_fields"] == ["city"]
    anna.refresh_from_db()
    assert (anna.first_name, anna.last_name, anna.city) == ("Анна", "Петрова", "Тверь")


@pytest.mark.parametrize(
    ("field", "value", "holder"),
    [
        ("phone", "8 912 345-67-89", {"phone": "+79123456789"}),
        ("email", "Maria@Example.ru", {"email": "maria@example.ru"}),
        ("card_number", "2900 0000 12345", {"card_number": "2900000012345"}),
    ],
)
def test_taking_another_customers_identifier_answers_409_naming_only_the_field(
    channel, field, value, holder
):
    app = channel("app", "customers:write")
    other = CustomerFactory(first_name="Мария", **holder)
    anna = CustomerFactory(first_name="Анна")
    before = _customers()

    response = app.patch(f"{URL}{anna.pk}/", {field: value, "first_name": "Аня"}, "json")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "identifier_taken"
    assert list(body["errors"]) == [field]
    assert body["errors"][field][0]["code"] == "identifier_taken"
    text = response.content.decode()
    assert str(other.pk) not in text and "Мария" not in text
    assert _customers() == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"phone": "12345"}, {"phone"}),
        ({"phone": "12345", "email": "x@", "card_number": "12"}, {"phone", "email", "card_number"}),
        ({"card": "2900000012345"}, {"card"}),  # the card's field here is card_number
        ({"id": 7}, {"id"}),
        ({"created_at": "2026-01-01T00:00:00+03:00"}, {"created_at"}),
        ({"first_name": None}, {"first_name"}),
        ({"household_size": 1000}, {"household_size"}),
        ({"birth_date": "1850-01-01"}, {"birth_date"}),
        ({"first_name": {"a": 1}}, {"first_name"}),
    ],
)
def test_bad_changes_answer_400_naming_the_field_and_change_nothing(site, body, fields):
    anna = CustomerFactory()
    before = _customers()

    response = site.patch(f"{URL}{anna.pk}/", body, "json")

    assert response.status_code == 400, response.json()
    assert set(response.json()["errors"]) == fields
    assert _customers() == before


def test_an_identifier_can_be_cleared_and_an_empty_change_changes_nothing(site):
    anna = CustomerFactory(email="anna@example.ru")

    assert site.patch(f"{URL}{anna.pk}/", {}, "json").json()["changed_fields"] == []
    response = site.patch(f"{URL}{anna.pk}/", {"email": None}, "json")

    assert response.json()["changed_fields"] == ["email"]
    anna.refresh_from_db()
    assert anna.email is None


def test_changing_the_card_needs_the_write_scope_and_a_channel(api, channel):
    anna = CustomerFactory(first_name="Анна")

    assert (
        channel("app", "customers:read")
        .patch(f"{URL}{anna.pk}/", {"first_name": "Аня"}, "json")
        .status_code
        == 403
    )
    assert (
        api("customers:write").patch(f"{URL}{anna.pk}/", {"first_name": "Аня"}, "json").status_code
        == 403
    )
    anna.refresh_from_db()
    assert anna.first_name == "Анна"


def test_phones_emails_and_names_never_reach_the_logs(site, caplog):
    caplog.set_level(logging.DEBUG)
    CustomerFactory(phone="+79120001122", email="maria@example.ru", first_name="Мария")
    anna = site.post(
        URL, {"phone": "+79123456789", "email": "anna@example.ru", "first_name": "Анна"}, "json"
    ).json()["customer"]
    site.patch(f"{URL}{anna['id']}/", {"phone": "+79120001122"}, "json")  # 409
    site.patch(f"{URL}{anna['id']}/", {"email": "not-an-email@", "last_name": "Ж" * 500}, "json")
    site.get(URL, {"phone": "+79123456789"})

    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in ("9123456789", "9120001122", "anna@", "maria@", "Анна", "Мария", "ЖЖЖ"):
        assert secret not in logged
