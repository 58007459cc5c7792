"""How recomputation is triggered: imports, merges, the command, Celery, overlapping runs."""

import datetime as dt
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections

from customers.merge import customer_merge
from customers.models import Purchase
from customers.pos_import import pos_file_import
from customers.tests.factories import CustomerFactory, StoreFactory
from customers.tests.pos_xml_builders import write_pos_file
from loyalty.models import CustomerFigures, StatusChange, StatusRun
from loyalty.recompute.common import RECOMPUTE_LOCK_KEY
from loyalty.services import statuses_recompute
from loyalty.tasks import statuses_recompute_nightly
from loyalty.tests.factories import buy

pytestmark = pytest.mark.django_db


def test_a_pos_import_recomputes_the_customers_it_touched(
    tmp_path, celery_eager, django_capture_on_commit_callbacks
):
    statuses_recompute(as_of=dt.date(2026, 11, 20))  # the stored date the import computes for
    path = tmp_path / "export.xml"
    card = "2900000012345"
    lines = [{"sku": "4601234567890", "name": "Нурофен", "qty": "1", "price": "289.00"}]
    write_pos_file(
        path,
        "A-017",
        [
            {"id": pid, "datetime": when, "customer": {"card": card}, "lines": lines}
            for pid, when in (
                ("1", "2026-10-02T10:00:00+03:00"),
                ("2", "2026-11-19T10:00:00+03:00"),
            )
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = pos_file_import(path=path)
    assert run.status == "done" and run.created == 2
    figures = CustomerFigures.objects.get(customer__card_number=card)
    assert (figures.status, figures.status_since, figures.purchase_count) == (
        "regular",
        dt.date(2026, 11, 19),
        2,
    )
    assert figures.lifetime_total == Decimal("578.00")
    assert list(
        StatusChange.objects.order_by("effective_date").values_list("new_status", flat=True)
    ) == ["newcomer", "regular"]
    assert StatusRun.objects.filter(kind=StatusRun.Kind.INCREMENTAL).count() == 1


def test_a_merge_moves_the_status_history_and_recomputes_the_survivor(
    celery_eager, django_capture_on_commit_callbacks
):
    store = StoreFactory()
    a, b = CustomerFactory(), CustomerFactory()
    buy(a, store, dt.date(2026, 1, 10))
    buy(b, store, dt.date(2026, 6, 10))
    statuses_recompute(as_of=dt.date(2026, 11, 1), full=True)
    assert StatusChange.objects.filter(customer=b, superseded_at__isnull=True).exists()

    with django_capture_on_commit_callbacks(execute=True):
        customer_merge(survivor=a, merged=b, reason="test")

    assert not StatusChange.objects.filter(customer_id=b.pk).exists()
    history = list(
        StatusChange.objects.filter(customer=a, superseded_at__isnull=True)
        .order_by("effective_date")
        .values_list("effective_date", "new_status")
    )
    # One person buying in January and June: newcomer; one-time from 10 April (January 3–6
    # months back, as A alone had it); regular on the second purchase.
    assert history == [
        (dt.date(2026, 1, 10), "newcomer"),
        (dt.date(2026, 4, 10), "one_time"),
        (dt.date(2026, 6, 10), "regular"),
    ]
    figures = CustomerFigures.objects.get(customer=a)
    assert (figures.purchase_count, figures.status) == (2, "regular")
    assert not CustomerFigures.objects.filter(customer_id=b.pk).exists()
    # What the joint history no longer has was superseded, not deleted: B's newcomer of
    # 10 June and one-time of 10 September.
    assert sorted(
        StatusChange.objects.filter(customer=a, superseded_at__isnull=False).values_list(
            "effective_date", "new_status"
        )
    ) == [
        (dt.date(2026, 6, 10), "newcomer"),
        (dt.date(2026, 9, 10), "one_time"),
    ]


def test_the_command_recomputes_for_a_date_and_prints_the_distribution():
    store = StoreFactory()
    buy(CustomerFactory(), store, dt.date(2026, 3, 1))
    out = StringIO()
    call_command("recompute_statuses", "--as-of", "2026-03-15", "--full", stdout=out)
    text = out.getvalue()
    assert "Full replay as of 2026-03-15: 1 customers" in text
    assert "  Newcomer: 1" in text
    assert StatusRun.objects.get().as_of == dt.date(2026, 3, 15)


def test_the_command_refuses_a_bad_date_naming_the_option():
    with pytest.raises(CommandError, match="--as-of: “2026-02-30” is not a date"):
        call_command("recompute_statuses", "--as-of", "2026-02-30")
    assert not StatusRun.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_second_whole_base_run_stops_while_one_is_running():
    """Another session holds the advisory lock, as a running nightly (or a copy of the task the
    broker redelivered mid-run) would: this run does nothing and says so."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [RECOMPUTE_LOCK_KEY])
        assert statuses_recompute(as_of=dt.date(2026, 5, 1)) is None
        with pytest.raises(CommandError, match="Another status recomputation is running"):
            call_command("recompute_statuses", stdout=StringIO())
        assert not StatusRun.objects.exists()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [RECOMPUTE_LOCK_KEY])
        assert statuses_recompute(as_of=dt.date(2026, 5, 1)) is not None
    finally:
        other.close()
    assert connection.vendor == "postgresql"


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_the_nightly_task_runs_on_a_real_worker_from_its_own_queue(celery_worker):
    store = StoreFactory()
    buy(CustomerFactory(), store, dt.date(2026, 4, 1))
    # The test worker consumes the default queue; production routes this task to `statuses`.
    statuses_recompute_nightly.apply_async(args=["2026-04-02"], queue="default")
    run = None
    for _ in range(120):
        run = StatusRun.objects.filter(finished_at__isnull=False).first()
        if run:
            break
        time.sleep(0.5)
    assert run is not None and (run.kind, run.as_of, run.customers) == (
        StatusRun.Kind.FULL,  # the first run ever replays
        dt.date(2026, 4, 2),
        1,
    )
    assert CustomerFigures.objects.get().status == "newcomer"


def test_a_cancelled_purchase_is_not_counted():
    store = StoreFactory()
    customer = CustomerFactory()
    buy(customer, store, dt.date(2026, 2, 1), "50.00")
    cancelled = buy(customer, store, dt.date(2026, 2, 5), "70.00")
    Purchase.objects.filter(pk=cancelled.pk).update(status=Purchase.Status.CANCELLED)
    statuses_recompute(as_of=dt.date(2026, 2, 10), full=True)
    figures = CustomerFigures.objects.get(customer=customer)
    assert (figures.purchase_count, figures.lifetime_total, figures.last_purchase) == (
        1,
        Decimal("50.00"),
        dt.date(2026, 2, 1),
    )
