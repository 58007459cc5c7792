"""The bonus ledger's daily task: what it posts, that a second run posts nothing, that runs never
overlap, and that beat schedules it."""

import datetime as dt
import logging
import time
from decimal import Decimal

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from customers.tests.factories import CustomerFactory, ProductFactory
from loyalty.bonus_daily import BONUS_DAILY_LOCK_KEY, bonus_daily_run
from loyalty.ledger import bonus_grant
from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusMovement, BonusRules, MovementKind
from loyalty.tasks import bonuses_daily
from loyalty.tests.factories import bonus_purchase

pytestmark = pytest.mark.django_db
D = Decimal
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="advisory locks and a worker need PostgreSQL"
)


def account(customer) -> tuple[Decimal, Decimal, Decimal]:
    a = BonusAccount.objects.get(customer=customer)
    return a.balance, a.pending, a.debt


def five_past_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(0, 5)))


def the_ledger_of_a_night():
    """Three customers the run at 00:05 on `day` has work for: an accrual waiting 14 days to
    become available, a 50.00 grant past its validity, a birthday. Plus one with nothing due."""
    rules = BonusRules.objects.get()
    rules.activation_days = 14
    rules.save()
    day = timezone.localdate() + dt.timedelta(days=15)
    waiting = CustomerFactory()
    bonus_purchase(waiting, ProductFactory(), "100.00")  # 3 % of a newcomer's 100.00
    lapsed = CustomerFactory()
    bonus_grant(
        lapsed.pk,
        MovementKind.CAMPAIGN,
        "50.00",
        key="spring-campaign",
        now=five_past_midnight(day) - dt.timedelta(days=400),
    )
    # Born in a leap year, so the day exists even when `day` is 29 February.
    birthday = CustomerFactory(birth_date=dt.date(2000, day.month, day.day))
    idle = CustomerFactory(birth_date=dt.date(2000, 1, 1) if day.month != 1 else None)
    return day, waiting, lapsed, birthday, idle


def test_the_daily_task_activates_expires_and_grants_birthdays_and_a_second_run_posts_nothing(
    celery_eager,
):
    day, waiting, lapsed, birthday, idle = the_ledger_of_a_night()
    assert account(waiting) == (D("0.00"), D("3.00"), D("0.00"))
    assert account(lapsed) == (D("50.00"), D("0.00"), D("0.00"))
    at = five_past_midnight(day).isoformat()

    report = bonuses_daily.delay(at=at).get()

    assert report == {
        "day": day.isoformat(),
        "activated_lots": 1,
        "activated_amount": "3.00",
        "expired_accounts": 1,
        "expired_amount": "50.00",
        "birthday_grants": 1,
        "birthday_amount": "200.00",
    }
    assert account(waiting) == (D("3.00"), D("0.00"), D("0.00"))
    assert account(lapsed) == (D("0.00"), D("0.00"), D("0.00"))
    assert account(birthday) == (D("200.00"), D("0.00"), D("0.00"))
    assert not BonusAccount.objects.filter(customer=idle).exists()
    expiry = BonusMovement.objects.get(kind=MovementKind.EXPIRY)
    assert (expiry.customer_id, expiry.amount) == (lapsed.pk, D("-50.00"))
    grant = BonusMovement.objects.get(kind=MovementKind.BIRTHDAY)
    assert (grant.customer_id, grant.amount) == (birthday.pk, D("200.00"))
    posted = set(BonusMovement.objects.values_list("pk", flat=True))

    again = bonuses_daily.delay(at=at).get()

    assert again == {
        "day": day.isoformat(),
        "activated_lots": 0,
        "activated_amount": "0.00",
        "expired_accounts": 0,
        "expired_amount": "0.00",
        "birthday_grants": 0,
        "birthday_amount": "0.00",
    }
    assert set(BonusMovement.objects.values_list("pk", flat=True)) == posted
    assert account(birthday) == (D("200.00"), D("0.00"), D("0.00"))
    assert ledger_differences() == []


def test_the_day_of_a_run_is_the_chains_date_of_its_time():
    # 23:30 UTC on 14 March is 02:30 on 15 March in Moscow: 15 March's birthdays.
    customer = CustomerFactory(birth_date=dt.date(1990, 3, 15))
    CustomerFactory(birth_date=dt.date(1990, 3, 14))
    outcome = bonus_daily_run(now=dt.datetime(2027, 3, 14, 23, 30, tzinfo=dt.UTC))
    assert outcome.day == dt.date(2027, 3, 15)
    assert list(
        BonusMovement.objects.filter(kind=MovementKind.BIRTHDAY).values_list(
            "customer_id", "idempotency_key"
        )
    ) == [(customer.pk, f"birthday:{customer.pk}:2027")]


def test_the_daily_run_logs_counts_and_nothing_about_the_customers(caplog):
    day, *_customers = the_ledger_of_a_night()
    with caplog.at_level(logging.INFO, logger="loyalty.bonus_daily"):
        bonus_daily_run(now=five_past_midnight(day))
    [record] = [r for r in caplog.records if r.name == "loyalty.bonus_daily"]
    # The whole message: counts and totals, no id, phone, card or name.
    assert record.getMessage() == (
        f"Bonus daily run for {day.isoformat()}: 1 lots activated (3.00), 1 accounts expired "
        "(50.00), 1 birthday grants (200.00)"
    )


def test_the_daily_task_is_scheduled_at_five_past_midnight_in_the_chains_zone():
    from pharmacrm.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["bonuses-daily"]
    assert entry["task"] == "loyalty.tasks.bonuses_daily"
    assert entry["schedule"] == crontab(hour=0, minute=5)
    assert app.conf.timezone == settings.TIME_ZONE == "Europe/Moscow"
    assert entry["task"] in app.tasks
    assert settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": "statuses"}


@pytest.mark.django_db(transaction=True)
@postgresql_only
def test_a_second_daily_run_stops_while_one_is_running(celery_eager):
    """Another session holds the advisory lock, as a running copy of the task would: this run
    posts nothing and says so; once the lock is free the run does its work."""
    customer = CustomerFactory(birth_date=dt.date(1990, 6, 15))
    at = five_past_midnight(dt.date(2027, 6, 15))
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [BONUS_DAILY_LOCK_KEY])
        assert bonus_daily_run(now=at) is None
        assert bonuses_daily.delay(at=at.isoformat()).get() is None
        assert not BonusMovement.objects.exists()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [BONUS_DAILY_LOCK_KEY])
        assert bonus_daily_run(now=at).birthdays.accounts == 1
    finally:
        other.close()
    assert account(customer) == (D("200.00"), D("0.00"), D("0.00"))


@postgresql_only
def test_the_daily_task_runs_on_a_real_worker(celery_worker):
    customer = CustomerFactory(birth_date=dt.date(1990, 6, 15))
    probe = CustomerFactory(birth_date=dt.date(1990, 6, 16))
    at = five_past_midnight(dt.date(2027, 6, 15)).isoformat()
    # The test worker consumes the default queue; production routes this task to `statuses`.
    # The same run delivered twice (a redelivery, a second beat), then the next night's: the
    # solo worker takes them in order, so the probe's grant means the duplicate has run.
    bonuses_daily.apply_async(kwargs={"at": at}, queue="default")
    bonuses_daily.apply_async(kwargs={"at": at}, queue="default")
    next_night = five_past_midnight(dt.date(2027, 6, 16)).isoformat()
    bonuses_daily.apply_async(kwargs={"at": next_night}, queue="default")
    for _ in range(120):
        if BonusMovement.objects.filter(customer=probe).exists():
            break
        time.sleep(0.5)
    assert sorted(
        BonusMovement.objects.values_list("customer_id", "kind", "amount", "idempotency_key")
    ) == [
        (customer.pk, MovementKind.BIRTHDAY, D("200.00"), f"birthday:{customer.pk}:2027"),
        (probe.pk, MovementKind.BIRTHDAY, D("200.00"), f"birthday:{probe.pk}:2027"),
    ]
    assert account(customer) == (D("200.00"), D("0.00"), D("0.00"))
