"""/api/v1/customers/{id}/family/ and /api/v1/customers/{id}/consents/."""

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Consent, FamilyMember
from customers.services import consent_record
from customers.tests.factories import ConsentFactory, CustomerFactory, FamilyMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(channel):
    return channel("app", "customers:read", "customers:write")


def family_url(customer) -> str:
    return f"/api/v1/customers/{customer.pk}/family/"


def consents_url(customer) -> str:
    return f"/api/v1/customers/{customer.pk}/consents/"


# --- Family ---------------------------------------------------------------------------------------


def test_a_customers_family_is_listed_oldest_first_and_paged(app):
    anna = CustomerFactory()
    son = FamilyMemberFactory(customer=anna, name="Пётр", birth_date=dt.date(2015, 3, 1))
    mother = FamilyMemberFactory(
        customer=anna, name="Вера", relation="parent", birth_date=None, sex="F"
    )
    FamilyMemberFactory()  # someone else's

    body = app.get(family_url(anna)).json()

    assert body["count"] == 2 and body["next"] is None
    assert body["results"] == [
        {"id": son.pk, "name": "Пётр", "relation": "child", "birth_date": "2015-03-01", "sex": ""},
        {"id": mother.pk, "name": "Вера", "relation": "parent", "birth_date": None, "sex": "F"},
    ]
    page = app.get(family_url(anna), {"page_size": 1, "page": 2}).json()
    assert [m["id"] for m in page["results"]] == [mother.pk]


def test_listing_the_family_costs_the_same_queries_for_one_or_many(
    app, django_assert_max_num_queries
):
    anna = CustomerFactory()
    FamilyMemberFactory(customer=anna)
    app.get(family_url(anna))
    FamilyMemberFactory.create_batch(20, customer=anna)

    with django_assert_max_num_queries(4):  # token, customer, count, page
        assert len(app.get(family_url(anna)).json()["results"]) == 21


def test_a_family_member_is_added(app):
    anna = CustomerFactory()

    response = app.post(
        family_url(anna),
        {"name": " Пётр ", "relation": "child", "birth_date": "2015-03-01", "sex": "M"},
        "json",
    )

    assert response.status_code == 201, response.json()
    member = FamilyMember.objects.get()
    assert response.json() == {
        "id": member.pk,
        "name": "Пётр",
        "relation": "child",
        "birth_date": "2015-03-01",
        "sex": "M",
    }
    assert member.customer_id == anna.pk


def test_a_retried_addition_with_its_idempotency_key_adds_one_member(app):
    anna = CustomerFactory()
    body = {"name": "Пётр", "relation": "child"}

    first = app.post(family_url(anna), body, "json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = app.post(family_url(anna), body, "json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = app.post(family_url(anna), {**body, "name": "Иван"}, "json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert FamilyMember.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"relation": "child"}, {"name"}),
        ({"name": "  ", "relation": "child"}, {"name"}),
        ({"name": "П" * 201, "relation": "child"}, {"name"}),
        ({"name": "Пётр", "relation": "neighbour"}, {"relation"}),
        ({"name": "Пётр", "relation": "child", "birth_date": "2999-01-01"}, {"birth_date"}),
        ({"name": "Пётр", "relation": "child", "birth_date": 20150301}, {"birth_date"}),
        ({"name": "Пётр", "relation": "child", "sex": "boy"}, {"sex"}),
        ({"name": "Пётр", "relation": "child", "customer": 5}, {"customer"}),
        ({"name": ["Пётр"], "relation": ["child"]}, {"name", "relation"}),
    ],
)
def test_a_bad_family_member_answers_400_naming_the_field_and_adds_nobody(app, body, fields):
    anna = CustomerFactory()

    response = app.post(family_url(anna), body, "json")

    assert response.status_code == 400, response.json()
    assert set(response.json()["errors"]) == fields
    assert not FamilyMember.objects.exists()


def test_a_family_member_is_removed_and_only_from_their_own_customer(app):
    anna, maria = CustomerFactory.create_batch(2)
    son = FamilyMemberFactory(customer=anna)
    marias_son = FamilyMemberFactory(customer=maria)

    assert app.delete(f"{family_url(anna)}{son.pk}/").status_code == 204
    assert app.delete(f"{family_url(anna)}{son.pk}/").status_code == 404
    assert app.delete(f"{family_url(anna)}{marias_son.pk}/").status_code == 404
    assert app.delete(f"{family_url(anna)}{2**64}/").status_code == 404
    assert list(FamilyMember.objects.values_list("pk", flat=True)) == [marias_son.pk]


def test_the_family_of_an_unknown_customer_answers_404(app):
    assert app.get("/api/v1/customers/999999/family/").status_code == 404
    assert (
        app.post(
            "/api/v1/customers/999999/family/", {"name": "Пётр", "relation": "child"}, "json"
        ).json()["code"]
        == "not_found"
    )
    assert not FamilyMember.objects.exists()


def test_family_scopes(channel, api):
    anna = CustomerFactory()
    son = FamilyMemberFactory(customer=anna)
    reader, writer = channel("app", "customers:read"), channel("app", "customers:write")
    body = {"name": "Иван", "relation": "child"}

    assert writer.get(family_url(anna)).status_code == 403
    assert reader.post(family_url(anna), body, "json").status_code == 403
    assert reader.delete(f"{family_url(anna)}{son.pk}/").status_code == 403
    assert api("customers:write").post(family_url(anna), body, "json").status_code == 403
    assert list(FamilyMember.objects.values_list("pk", flat=True)) == [son.pk]


# --- Consents -------------------------------------------------------------------------------------


def test_consents_show_every_channels_current_state_and_the_history(app):
    anna = CustomerFactory()
    now = timezone.now()
    first = ConsentFactory(
        customer=anna, channel="sms", granted=True, occurred_at=now - dt.timedelta(days=3)
    )
    last = ConsentFactory(
        customer=anna,
        channel="sms",
        granted=False,
        source="pos",
        occurred_at=now - dt.timedelta(days=1),
    )
    # Recorded later but decided earlier: history, not the current state.
    late = ConsentFactory(
        customer=anna, channel="sms", granted=True, occurred_at=now - dt.timedelta(days=2)
    )
    email = ConsentFactory(customer=anna, channel="email", granted=True, source="site")
    ConsentFactory(channel="viber")  # someone else's

    body = app.get(consents_url(anna)).json()

    current = {c["channel"]: c for c in body["current"]}
    assert list(current) == ["sms", "email", "viber", "vk", "calls", "personal_data"]
    assert (current["sms"]["granted"], current["sms"]["source"]) == (False, "pos")
    assert current["sms"]["occurred_at"].endswith("+03:00")
    assert (current["email"]["granted"], current["email"]["source"]) == (True, "site")
    assert current["viber"] == {
        "channel": "viber",
        "granted": False,
        "occurred_at": None,
        "source": None,
    }
    assert [c["id"] for c in body["results"]] == [email.pk, last.pk, late.pk, first.pk]
    assert body["next"] is None


def test_the_consent_history_is_cursor_paged(app):
    anna = CustomerFactory()
    now = timezone.now()
    rows = [
        ConsentFactory(customer=anna, occurred_at=now - dt.timedelta(hours=h)) for h in range(5)
    ]

    seen, url = [], consents_url(anna) + "?page_size=2"
    while url:
        body = app.get(url).json()
        seen += [c["id"] for c in body["results"]]
        url = body["next"]

    assert seen == [c.pk for c in rows]


def test_reading_consents_costs_the_same_queries_for_a_short_or_long_history(
    app, django_assert_max_num_queries
):
    anna = CustomerFactory()
    ConsentFactory(customer=anna)
    app.get(consents_url(anna))
    for channel in ("sms", "email", "viber", "vk", "calls", "personal_data") * 10:
        ConsentFactory(customer=anna, channel=channel)

    with django_assert_max_num_queries(4):  # token, customer, history page, current state
        assert len(app.get(consents_url(anna)).json()["results"]) == 50


def test_a_grant_and_a_withdrawal_are_recorded_under_the_clients_channel(app):
    anna = CustomerFactory()

    granted = app.post(
        consents_url(anna),
        {"channel": "sms", "granted": True, "occurred_at": "2026-03-01T10:00:00+05:00"},
        "json",
    )
    withdrawn = app.post(consents_url(anna), {"channel": "sms", "granted": False}, "json")

    assert (granted.status_code, withdrawn.status_code) == (201, 201), granted.json()
    assert granted.json()["occurred_at"] == "2026-03-01T08:00:00+03:00"
    assert granted.json()["source"] == "app"
    assert list(
        Consent.objects.order_by("id").values_list("customer", "channel", "granted", "source")
    ) == [(anna.pk, "sms", True, "app"), (anna.pk, "sms", False, "app")]
    current = {c["channel"]: c["granted"] for c in app.get(consents_url(anna)).json()["current"]}
    assert current["sms"] is False


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"granted": True}, {"channel"}),
        ({"channel": "telegram", "granted": True}, {"channel"}),
        ({"channel": "sms"}, {"granted"}),
        ({"channel": "sms", "granted": "maybe"}, {"granted"}),
        (
            {"channel": "sms", "granted": True, "occurred_at": "2026-03-01T10:00:00"},
            {"occurred_at"},
        ),
        ({"channel": "sms", "granted": True, "occurred_at": "yesterday"}, {"occurred_at"}),
        (
            {"channel": "sms", "granted": True, "occurred_at": "2999-01-01T00:00:00+03:00"},
            {"occurred_at"},
        ),
        (
            {"channel": "sms", "granted": True, "occurred_at": "0001-01-01T00:00:00+05:00"},
            {"occurred_at"},
        ),
        ({"channel": "sms", "granted": True, "source": "admin"}, {"source"}),
        ({"channel": "sms", "granted": True, "note": "x"}, {"note"}),
    ],
)
def test_a_bad_consent_answers_400_naming_the_field_and_records_nothing(app, body, fields):
    anna = CustomerFactory()

    response = app.post(consents_url(anna), body, "json")

    assert response.status_code == 400, response.json()
    assert set(response.json()["errors"]) == fields
    assert not Consent.objects.exists()


def test_consent_scopes_and_unknown_customers(channel, api):
    anna = CustomerFactory()
    consent_record(customer=anna, channel="sms", granted=True, source="app")
    body = {"channel": "sms", "granted": False}

    assert channel("site", "customers:write").get(consents_url(anna)).status_code == 403
    assert (
        channel("site", "customers:read").post(consents_url(anna), body, "json").status_code == 403
    )
    assert api("customers:write").post(consents_url(anna), body, "json").status_code == 403
    writer = channel("site", "customers:write", "customers:read")
    assert writer.get("/api/v1/customers/999999/consents/").status_code == 404
    assert writer.post("/api/v1/customers/999999/consents/", body, "json").status_code == 404
    assert writer.get(consents_url(anna), {"cursor": "garbage"}).status_code == 404
    assert Consent.objects.count() == 1
