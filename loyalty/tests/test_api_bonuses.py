"""GET /api/v1/customers/{id}/bonuses/ and /bonuses/ledger/."""

import base64
import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from customers.merge import customer_merge
from customers.tests.factories import CustomerFactory, ProductFactory
from loyalty.ledger import bonus_adjust, bonus_grant, bonus_redeem
from loyalty.models import BonusMovement, BonusRules, MovementKind
from loyalty.tests.factories import bonus_purchase

pytestmark = pytest.mark.django_db
D = Decimal


def balance_url(customer_id) -> str:
    return f"/api/v1/customers/{customer_id}/bonuses/"


def ledger_url(customer_id, **query) -> str:
    url = f"/api/v1/customers/{customer_id}/bonuses/ledger/"
    return f"{url}?{urlencode(query, doseq=True)}" if query else url


def iso(moment: dt.datetime) -> str:
    """What the API writes: local time with the chain's offset."""
    return timezone.localtime(moment).isoformat()


@pytest.fixture
def reader(api):
    client = api("bonuses:read")
    client.get(balance_url(0))  # the first call also stamps last_used_at: not counted below
    return client


def grant(customer, amount: str, days_ago: int = 0, kind=MovementKind.CAMPAIGN):
    posted = bonus_grant(
        customer.pk,
        kind,
        amount,
        channel="campaign",
        now=timezone.now() - dt.timedelta(days=days_ago),
    )
    return BonusMovement.objects.get(pk=posted.movement_id)


# --- the balance ----------------------------------------------------------------------------------


def test_the_balance_shows_available_pending_debt_and_what_expires_within_30_days(reader):
    customer = CustomerFactory()
    # Valid 365 days: granted 350 and 340 days ago they expire within 30 days; today's does not.
    old = grant(customer, "100.00", days_ago=350)
    older_still_valid = grant(customer, "50.00", days_ago=340)
    grant(customer, "30.00")
    # Spending takes the soonest-expiring lot first: 80.00 of the oldest is left.
    bonus_redeem(customer.pk, "20.00", key="till-1")
    rules = BonusRules.objects.get(pk=1)
    rules.activation_days = 14
    rules.save()  # as the admin does: every worker sees it at once (config_cache)
    bonus_purchase(customer, ProductFactory(), "1000.00")  # 3 % = 30.00, pending for 14 days

    response = reader.get(balance_url(customer.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["expiring"].pop("before").endswith("+03:00")
    assert body == {
        "customer_id": customer.pk,
        "available": "160.00",
        "pending": "30.00",
        "debt": "0.00",
        "expiring": {"amount": "130.00", "first_expires_at": iso(old.expires_at)},
    }
    assert old.expires_at < older_still_valid.expires_at
    assert body["expiring"]["first_expires_at"].endswith("+03:00")


def test_the_expiry_window_ends_30_days_from_now(reader):
    customer = CustomerFactory()
    grant(customer, "10.00", days_ago=300)  # expires in about 66 days

    before = timezone.now() + dt.timedelta(days=30)
    body = reader.get(balance_url(customer.pk)).json()
    after = timezone.now() + dt.timedelta(days=30)

    assert body["expiring"]["amount"] == "0.00"
    assert body["expiring"]["first_expires_at"] is None
    assert before <= dt.datetime.fromisoformat(body["expiring"]["before"]) <= after


def test_debt_left_by_an_adjustment_below_zero_is_shown(reader):
    customer = CustomerFactory()
    grant(customer, "10.00")
    bonus_adjust(customer.pk, "-25.00", reason="Возврат после списания")

    body = reader.get(balance_url(customer.pk)).json()

    assert (body["available"], body["pending"], body["debt"]) == ("0.00", "0.00", "15.00")


def test_a_customer_the_ledger_never_saw_has_zeros(reader):
    customer = CustomerFactory()

    body = reader.get(balance_url(customer.pk)).json()

    assert body["customer_id"] == customer.pk
    assert (body["available"], body["pending"], body["debt"]) == ("0.00", "0.00", "0.00")
    assert body["expiring"]["amount"] == "0.00" and body["expiring"]["first_expires_at"] is None


@pytest.mark.parametrize(
    "customer_id", ["0", "999999", "9223372036854775808", "9" * 30, "-1", "abc", "null,null", "1.0"]
)
def test_an_unknown_customer_is_404(reader, customer_id):
    for url in (balance_url(customer_id), ledger_url(customer_id)):
        response = reader.get(url)
        assert response.status_code == 404, url
        assert response.json() == {
            "code": "not_found",
            "message": "There is no such customer.",
            "errors": {},
        }


def test_a_merged_customer_answers_404_naming_the_survivor(reader):
    survivor = CustomerFactory(phone="+79123456789", card_number=None, email=None)
    merged = CustomerFactory(phone=None, card_number="2900000099999", email=None)
    customer_merge(survivor=survivor, merged=merged, reason="test")

    for url in (balance_url(merged.pk), ledger_url(merged.pk)):
        response = reader.get(url)
        assert response.status_code == 404
        assert response.json()["code"] == "customer_merged"
        assert str(survivor.pk) in response.json()["message"]


def test_the_balance_costs_one_query(reader, django_assert_num_queries):
    customer = CustomerFactory()
    grant(customer, "100.00", days_ago=350)
    grant(customer, "100.00")
    # The account with what expires (the API client: the process's copy since the first call).
    with django_assert_num_queries(1):
        assert reader.get(balance_url(customer.pk)).status_code == 200


def test_bonuses_need_the_bonuses_scope(api):
    customer = CustomerFactory()
    other = api("customers:read", "checkout:quote")
    for url in (balance_url(customer.pk), ledger_url(customer.pk)):
        response = other.get(url)
        assert response.status_code == 403
        assert response.json()["code"] == "missing_scope"
    anonymous = api("bonuses:read")
    anonymous.credentials()
    assert anonymous.get(balance_url(customer.pk)).status_code == 401


# --- the ledger -----------------------------------------------------------------------------------


def test_the_ledger_lists_every_movement_newest_first_with_its_details(reader):
    customer = CustomerFactory()
    purchase = bonus_purchase(customer, ProductFactory(), "500.00")  # 3 % = 15.00
    bonus_redeem(customer.pk, "5.00", key="till-2", channel="pos")
    bonus_adjust(customer.pk, "-20.00", reason="Ошибка кассира", channel="admin")
    accrual, redemption, adjustment = BonusMovement.objects.filter(customer=customer).order_by("id")
    CustomerFactory()  # another customer's ledger stays out
    bonus_grant(CustomerFactory().pk, MovementKind.WELCOME, "100.00")

    response = reader.get(ledger_url(customer.pk))

    assert response.status_code == 200
    body = response.json()
    assert (body["next"], body["previous"]) == (None, None)
    assert body["results"] == [
        {
            "id": adjustment.pk,
            "kind": "adjustment",
            "kind_label": "Manual adjustment",
            "amount": "-20.00",
            "created_at": iso(adjustment.created_at),
            "purchase_id": None,
            "purchase_number": None,
            "available_at": None,
            "expires_at": None,
            "remaining": None,
            "reason": "Ошибка кассира",
            "channel": "admin",
        },
        {
            "id": redemption.pk,
            "kind": "redemption",
            "kind_label": "Redemption at checkout",
            "amount": "-5.00",
            "created_at": iso(redemption.created_at),
            "purchase_id": None,
            "purchase_number": None,
            "available_at": None,
            "expires_at": None,
            "remaining": None,
            "reason": None,
            "channel": "pos",
        },
        {
            "id": accrual.pk,
            "kind": "accrual",
            "kind_label": "Accrual on a purchase",
            "amount": "15.00",
            "created_at": iso(accrual.created_at),
            "purchase_id": purchase.pk,
            "purchase_number": purchase.external_id,
            "available_at": iso(accrual.available_at),
            "expires_at": iso(accrual.expires_at),
            "remaining": "0.00",  # 5.00 redeemed, 10.00 taken by the adjustment
            "reason": None,
            "channel": "",
        },
    ]
    assert body["results"][0]["created_at"].endswith("+03:00")


def test_the_ledger_pages_with_a_cursor_and_misses_nothing(reader):
    customer = CustomerFactory()
    ids = [grant(customer, f"{n}.00").pk for n in range(1, 8)]

    seen, url, pages = [], ledger_url(customer.pk, page_size=3), 0
    while url:
        body = reader.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1

    assert seen == sorted(ids, reverse=True)
    assert pages == 3
    back = reader.get(ledger_url(customer.pk, page_size=3)).json()
    second = reader.get(back["next"]).json()
    assert [r["id"] for r in reader.get(second["previous"]).json()["results"]] == [
        r["id"] for r in back["results"]
    ]


def test_the_ledger_filters_by_kind_and_posting_time(reader):
    customer = CustomerFactory()
    march = timezone.make_aware(dt.datetime(2026, 3, 10, 12))
    april = timezone.make_aware(dt.datetime(2026, 4, 10, 12))
    may = timezone.make_aware(dt.datetime(2026, 5, 10, 12))
    welcome = bonus_grant(customer.pk, MovementKind.WELCOME, "100.00", now=march)
    birthday = bonus_grant(customer.pk, MovementKind.BIRTHDAY, "200.00", now=april)
    spent = bonus_redeem(customer.pk, "50.00", key="till-3", now=may)

    def ids(**query):
        response = reader.get(ledger_url(customer.pk, **query))
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids(kind="birthday") == [birthday.movement_id]
    assert ids(kind=["welcome", "redemption"]) == [spent.movement_id, welcome.movement_id]
    assert ids(created_after="2026-04-01") == [spent.movement_id, birthday.movement_id]
    assert ids(created_before="2026-04-10T12:00:00+03:00") == [welcome.movement_id]
    assert ids(created_after="2026-04-10T09:00:00Z", created_before="2026-05-01") == [
        birthday.movement_id
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"kind": "jackpot"}, "kind"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-13-40"}, "created_before"),
        ({"created_after": "99999-01-01"}, "created_after"),
    ],
)
def test_bad_ledger_filters_answer_400_naming_the_parameter(reader, query, field):
    customer = CustomerFactory()
    response = reader.get(ledger_url(customer.pk, **query))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["errors"]) == [field], body


def _cursor(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        _cursor("p=abc"),
        _cursor("p=1e5&r=0"),
        _cursor("p=99999999999999999999999999"),
        _cursor("p=9999999999999999999"),  # 19 digits, beyond bigint
        _cursor("o=-1&p=5"),
        _cursor("r=maybe"),
    ],
)
def test_a_forged_cursor_is_refused_not_a_server_error(reader, cursor):
    customer = CustomerFactory()
    grant(customer, "1.00")
    response = reader.get(ledger_url(customer.pk, cursor=cursor))
    assert response.status_code in (200, 404), response.content
    if response.status_code == 404:
        assert response.json()["code"] == "not_found"


def test_odd_page_sizes_fall_back_to_the_default_or_the_maximum(reader):
    customer = CustomerFactory()
    grant(customer, "1.00")
    for size in ("abc", "-3", "0", "100000", "1" * 500):
        response = reader.get(ledger_url(customer.pk, page_size=size))
        assert response.status_code == 200, size


def test_the_ledger_costs_the_same_queries_whatever_the_page_size(
    reader, django_assert_num_queries
):
    customer = CustomerFactory()
    product = ProductFactory()
    for _ in range(15):
        bonus_purchase(customer, product, "100.00")  # accruals with their purchases
    for n in range(15):
        bonus_redeem(customer.pk, "0.10", key=f"till-q-{n}")

    # The customer, the page with its purchases.
    with django_assert_num_queries(2):
        one = reader.get(ledger_url(customer.pk, page_size=1)).json()
    with django_assert_num_queries(2):
        page = reader.get(ledger_url(customer.pk, page_size=50)).json()
    with django_assert_num_queries(2):
        reader.get(one["next"])
    assert len(one["results"]) == 1 and len(page["results"]) == 30
    assert sum(1 for row in page["results"] if row["purchase_number"]) == 15
