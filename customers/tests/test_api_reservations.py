"""POST /api/v1/reservations/, POST /api/v1/reservations/{id}/cancel/,
GET /api/v1/customers/{id}/reservations/, and the reservation services behind them."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from customers.models import Reservation
from customers.reservations import (
    reservation_cancel,
    reservation_create,
    reservation_default_deadline,
    reservations_expire,
)
from customers.tasks import reservations_expire_task
from customers.tests.factories import (
    CustomerFactory,
    ProductFactory,
    ReservationFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/reservations/"
MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture
def site(channel):
    return channel("site", "reservations:read", "reservations:write")


@pytest.fixture
def shelf():
    """A customer, a store and a product to reserve."""
    return (
        CustomerFactory(),
        StoreFactory(code="MSK-001", name="Аптека на Тверской"),
        ProductFactory(sku="4601234567890", name="Ибупрофен 200 мг №20"),
    )


def _body(customer, **extra) -> dict:
    return {"customer": customer.pk, "store": "MSK-001", "product": "4601234567890", **extra}


# --- The deadline rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "zone", "deadline"),
    [
        # Monday morning in Moscow: until Wednesday 23:59:59 Moscow time.
        (dt.datetime(2026, 3, 2, 10, 0, tzinfo=MSK), "Europe/Moscow", "2026-03-04T23:59:59+03:00"),
        # Monday 23:30 in Moscow is already Tuesday in Yekaterinburg: the store's day counts.
        (
            dt.datetime(2026, 3, 2, 23, 30, tzinfo=MSK),
            "Asia/Yekaterinburg",
            "2026-03-05T23:59:59+05:00",
        ),
        # A store with a broken zone falls back to the chain's.
        (dt.datetime(2026, 3, 2, 10, 0, tzinfo=MSK), "Mars/Olympus", "2026-03-04T23:59:59+03:00"),
    ],
)
def test_a_reservation_waits_until_the_end_of_the_stores_day_two_days_later(at, zone, deadline):
    store = StoreFactory(time_zone=zone)

    assert reservation_default_deadline(store=store, at=at).isoformat() == deadline


# --- Reserving ------------------------------------------------------------------------------------


def test_a_product_is_reserved_until_the_default_deadline(site, shelf):
    customer, store, _product = shelf

    response = site.post(URL, _body(customer, quantity="2", external_id="web-1"), "json")

    assert response.status_code == 201, response.json()
    reservation = Reservation.objects.get()
    body = response.json()
    assert body == {
        "id": reservation.pk,
        "customer": customer.pk,
        "store": "MSK-001",
        "store_name": "Аптека на Тверской",
        "product": "4601234567890",
        "product_name": "Ибупрофен 200 мг №20",
        "quantity": "2.000",
        "status": "active",
        "source": "site",
        "external_id": "web-1",
        "pickup_deadline": reservation_default_deadline(
            store=store, at=reservation.created_at
        ).isoformat(),
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_at"].endswith("+03:00")
    assert (reservation.customer, reservation.store, reservation.product) == shelf
    assert reservation.quantity == Decimal("2")


def test_a_reservation_with_its_own_deadline_and_from_the_app(channel, shelf):
    customer, _store, _product = shelf
    app = channel("app", "reservations:write")
    deadline = (timezone.now() + dt.timedelta(days=5)).replace(microsecond=0)

    response = app.post(
        URL, _body(customer, quantity=0.5, pickup_deadline=deadline.isoformat()), "json"
    )

    assert response.status_code == 201, response.json()
    reservation = Reservation.objects.get()
    assert (reservation.pickup_deadline, reservation.source) == (deadline, "app")
    assert reservation.quantity == Decimal("0.5")


def test_a_retried_reservation_with_its_idempotency_key_reserves_once(site, shelf):
    customer, _store, _product = shelf

    first = site.post(URL, _body(customer, quantity=1), "json", HTTP_IDEMPOTENCY_KEY="r-1")
    again = site.post(URL, _body(customer, quantity=1), "json", HTTP_IDEMPOTENCY_KEY="r-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert Reservation.objects.count() == 1


def test_an_external_id_the_channel_already_used_answers_409(site, channel, shelf):
    customer, _store, _product = shelf
    assert (
        site.post(URL, _body(customer, quantity=1, external_id="web-1"), "json").status_code == 201
    )

    response = site.post(URL, _body(customer, quantity=3, external_id="web-1"), "json")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert list(response.json()["errors"]) == ["external_id"]
    # Another channel's ids are its own.
    app = channel("app", "reservations:write")
    assert (
        app.post(URL, _body(customer, quantity=1, external_id="web-1"), "json").status_code == 201
    )
    assert sorted(Reservation.objects.values_list("source", "quantity")) == [
        ("app", Decimal("1.000")),
        ("site", Decimal("1.000")),
    ]


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"customer": 999999}, {"customer"}),
        ({"customer": 2**63}, {"customer"}),
        ({"customer": "anna"}, {"customer"}),
        ({"store": "NOPE"}, {"store"}),
        ({"store": "S" * 51}, {"store"}),
        ({"product": "000"}, {"product"}),
        ({"customer": 999999, "store": "NOPE", "product": "000"}, {"customer", "store", "product"}),
        ({"quantity": 0}, {"quantity"}),
        ({"quantity": "-1"}, {"quantity"}),
        ({"quantity": "1.0001"}, {"quantity"}),
        ({"quantity": "1e9"}, {"quantity"}),
        ({"quantity": "NaN"}, {"quantity"}),
        ({"quantity": None}, {"quantity"}),
        ({"pickup_deadline": "2020-01-01T10:00:00+03:00"}, {"pickup_deadline"}),
        ({"pickup_deadline": "2099-01-01T10:00:00+03:00"}, {"pickup_deadline"}),
        ({"pickup_deadline": "2026-12-31T10:00:00"}, {"pickup_deadline"}),
        ({"external_id": "x" * 65}, {"external_id"}),
        ({"status": "picked_up"}, {"status"}),
    ],
)
def test_a_bad_reservation_answers_400_naming_the_field_and_reserves_nothing(
    site, shelf, change, fields
):
    customer, _store, _product = shelf

    response = site.post(URL, {**_body(customer, quantity="1"), **change}, "json")

    assert response.status_code == 400, response.json()
    assert set(response.json()["errors"]) == fields
    assert not Reservation.objects.exists()


def test_a_closed_store_takes_no_reservations(site, shelf):
    customer, store, _product = shelf
    store.is_active = False
    store.save()

    response = site.post(URL, _body(customer, quantity=1), "json")

    assert response.status_code == 400
    assert response.json()["errors"]["store"][0]["code"] == "inactive"
    assert not Reservation.objects.exists()


def test_reserving_needs_the_write_scope_and_a_channel(channel, api, shelf):
    customer, _store, _product = shelf

    response = channel("site", "reservations:read").post(URL, _body(customer, quantity=1), "json")
    assert (response.status_code, response.json()["code"]) == (403, "missing_scope")
    response = api("reservations:write").post(URL, _body(customer, quantity=1), "json")
    assert (response.status_code, response.json()["code"]) == (403, "client_without_channel")
    assert not Reservation.objects.exists()


# --- Cancelling -----------------------------------------------------------------------------------


def test_a_reservation_is_cancelled_and_cancelling_again_changes_nothing(site):
    reservation = ReservationFactory()

    first = site.post(f"{URL}{reservation.pk}/cancel/")
    again = site.post(f"{URL}{reservation.pk}/cancel/")

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["status"] == again.json()["status"] == "cancelled"
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.CANCELLED
    assert again.json()["updated_at"] == first.json()["updated_at"]


@pytest.mark.parametrize("status", [Reservation.Status.PICKED_UP, Reservation.Status.EXPIRED])
def test_a_picked_up_or_expired_reservation_cannot_be_cancelled(site, status):
    reservation = ReservationFactory(status=status)

    response = site.post(f"{URL}{reservation.pk}/cancel/")

    assert (response.status_code, response.json()["code"]) == (409, "conflict")
    reservation.refresh_from_db()
    assert reservation.status == status


def test_cancelling_an_unknown_reservation_answers_404(site, channel):
    reservation = ReservationFactory()

    for pk in (999999, 0, 2**63):
        assert site.post(f"{URL}{pk}/cancel/").status_code == 404
    assert (
        channel("site", "reservations:read").post(f"{URL}{reservation.pk}/cancel/").status_code
        == 403
    )
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.ACTIVE


def test_the_services_refuse_by_field_and_write_nothing():
    customer, store = CustomerFactory(), StoreFactory()

    with pytest.raises(ValidationError) as exc:
        reservation_create(
            customer_id=customer.pk,
            store_code=store.code,
            sku="nope",
            quantity=Decimal("0"),
            source="site",
        )

    assert set(exc.value.error_dict) == {"product"}
    with pytest.raises(Reservation.DoesNotExist):
        reservation_cancel(reservation_id=1)
    assert not Reservation.objects.exists()


def test_reservations_past_their_deadline_expire_and_no_others():
    now = timezone.now()
    late = ReservationFactory(pickup_deadline=now - dt.timedelta(minutes=1))
    due_later = ReservationFactory(pickup_deadline=now + dt.timedelta(hours=1))
    cancelled = ReservationFactory(
        pickup_deadline=now - dt.timedelta(days=1), status=Reservation.Status.CANCELLED
    )
    picked_up = ReservationFactory(
        pickup_deadline=now - dt.timedelta(days=1), status=Reservation.Status.PICKED_UP
    )

    assert reservations_expire(now=now) == 1
    assert reservations_expire(now=now) == 0  # again: nothing changes
    statuses = dict(Reservation.objects.values_list("pk", "status"))
    assert statuses == {
        late.pk: "expired",
        due_later.pk: "active",
        cancelled.pk: "cancelled",
        picked_up.pk: "picked_up",
    }
    with pytest.raises(ValidationError) as refused:
        reservation_cancel(reservation_id=late.pk)
    assert refused.value.code == "conflict"
    assert reservations_expire_task() == 0  # the periodic task runs the same service


# --- Listing --------------------------------------------------------------------------------------


def test_a_customers_reservations_are_listed_newest_first_and_filtered_by_status(site):
    anna = CustomerFactory()
    old = ReservationFactory(customer=anna, status=Reservation.Status.PICKED_UP)
    new = ReservationFactory(customer=anna)
    ReservationFactory()  # someone else's
    url = f"/api/v1/customers/{anna.pk}/reservations/"

    body = site.get(url).json()
    active = site.get(url, {"status": "active"}).json()

    assert body["count"] == 2
    assert [r["id"] for r in body["results"]] == [new.pk, old.pk]
    assert body["results"][0]["store"] == new.store.code
    assert body["results"][0]["product_name"] == new.product.name
    assert [r["id"] for r in active["results"]] == [new.pk]
    response = site.get(url, {"status": "lost"})
    assert (response.status_code, list(response.json()["errors"])) == (400, ["status"])
    assert site.get("/api/v1/customers/999999/reservations/").status_code == 404
    assert site.get(url, {"page": 5}).status_code == 404


def test_listing_reservations_costs_the_same_queries_for_one_or_many(
    site, django_assert_max_num_queries
):
    anna = CustomerFactory()
    ReservationFactory(customer=anna)
    url = f"/api/v1/customers/{anna.pk}/reservations/"
    site.get(url)
    for _ in range(10):
        ReservationFactory(customer=anna, store=StoreFactory(), product=ProductFactory())

    with django_assert_max_num_queries(4):  # token, customer, count, page with store and product
        assert len(site.get(url).json()["results"]) == 11


def test_listing_reservations_needs_the_read_scope(channel):
    anna = CustomerFactory()

    assert (
        channel("site", "reservations:write", "customers:read")
        .get(f"/api/v1/customers/{anna.pk}/reservations/")
        .status_code
        == 403
    )
