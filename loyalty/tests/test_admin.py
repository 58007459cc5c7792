"""Statuses in the admin: the customer list and page, the settings, the runs, the timeline."""

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape

from customers.models import Customer
from customers.tests.factories import CustomerFactory, StoreFactory
from customers.timeline import TimelineEvent, customer_timeline
from loyalty.models import CustomerFigures, StatusChange, StatusRun, StatusSettings
from loyalty.services import (
    queue_full_recompute,
    status_settings_get,
    status_settings_update,
    statuses_recompute,
)
from loyalty.tests.factories import buy
from loyalty.timeline_events import status_change_events

pytestmark = pytest.mark.django_db

MSK = ZoneInfo("Europe/Moscow")
AS_OF = dt.date(2026, 4, 30)
THRESHOLD_DEFAULTS = {
    "lost_months": 12,
    "vip_months": 12,
    "growing_months": 3,
    "newcomer_months": 1,
    "one_time_min_months": 3,
    "one_time_max_months": 6,
    "regular_enabled": True,
}


def customer_list() -> str:
    return reverse("admin:customers_customer_changelist")


def customer_page(customer: Customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def give_figures(status: str, r=None, f=None, m=None, total="100.00") -> Customer:
    customer = CustomerFactory()
    CustomerFigures.objects.create(
        customer=customer,
        status=status,
        status_since=dt.date(2026, 4, 1),
        purchase_count=1,
        lifetime_total=Decimal(total),
        average_check=Decimal(total),
        total_12m=Decimal(total),
        purchases_12m=1,
        first_purchase=dt.date(2026, 4, 1),
        last_purchase=dt.date(2026, 4, 1),
        r_score=r,
        f_score=f,
        m_score=m,
    )
    return customer


def finished_run(as_of: dt.date, kind=StatusRun.Kind.FULL, **fields) -> StatusRun:
    return StatusRun.objects.create(kind=kind, as_of=as_of, finished_at=timezone.now(), **fields)


@pytest.fixture
def base():
    """Five customers with figures set directly, two without (no completed purchase)."""
    return {
        "vip": give_figures("vip", 5, 5, 5),
        "vip_low_m": give_figures("vip", 4, 5, 3),
        "regular": give_figures("regular", 3, 2, 5, total="1234.50"),
        "newcomer": give_figures("newcomer", 5, 1, 1),
        # No purchase in the last 24 months: no scores.
        "lost": give_figures("lost"),
        "nothing": CustomerFactory(),
        "nothing_either": CustomerFactory(),
    }


def listed(client, **params) -> set[int]:
    response = client.get(customer_list(), params)
    assert response.status_code == 200
    return {customer.pk for customer in response.context["cl"].result_list}


def ids(base, *names) -> set[int]:
    return {base[name].pk for name in names}


def readonly(html: str, field: str) -> str:
    """The text of a read-only field on a change page."""
    match = re.search(
        rf'fieldBox field-{field}">.*?<div class="readonly">(.*?)</div>', html, re.DOTALL
    )
    assert match, field
    return match.group(1)


def customer_with_history() -> Customer:
    """Newcomer on 10 January 2026, regular on 20 March (a purchase after the newcomer month);
    figures as of 30 April 2026."""
    home, other = StoreFactory(code="HOME", name="Аптека на Ленина"), StoreFactory()
    customer = CustomerFactory()
    buy(customer, other, dt.date(2026, 1, 10), "100.00")
    buy(customer, home, dt.date(2026, 3, 20), "250.50")
    statuses_recompute(as_of=AS_OF, full=True)
    return customer


def replay_without_regular() -> StatusRun:
    """Switch "regular" off and replay: the 20 March change is superseded."""
    status_settings_update(settings=status_settings_get(), regular_enabled=False)
    return statuses_recompute(as_of=AS_OF, full=True)


# --- the customer list -------------------------------------------------------------------------


def test_the_status_and_score_filters_give_exactly_the_matching_customers(admin_client, base):
    assert listed(admin_client, status="vip") == ids(base, "vip", "vip_low_m")
    assert listed(admin_client, status="regular") == ids(base, "regular")
    assert listed(admin_client, status="one_time") == set()
    assert listed(admin_client, status="none") == ids(base, "nothing", "nothing_either")
    assert listed(admin_client, r_score="5") == ids(base, "vip", "newcomer")
    assert listed(admin_client, r_score="5", f_score="1") == ids(base, "newcomer")
    assert listed(admin_client, status="vip", m_score="3") == ids(base, "vip_low_m")
    assert listed(admin_client, m_score="none") == ids(base, "lost", "nothing", "nothing_either")


def test_an_unknown_status_or_score_in_the_address_is_refused(admin_client, base):
    for params in ({"status": "gold"}, {"r_score": "6"}, {"f_score": "x"}):
        response = admin_client.get(customer_list(), params)
        assert (response.status_code, response.url) == (302, customer_list() + "?e=1")


def test_the_list_shows_the_figures_in_columns(admin_client, base):
    response = admin_client.get(customer_list(), {"status": "regular"})

    row = re.search(r"<tr>.*?</tr>", response.content.decode().split("<tbody>")[1], re.DOTALL)
    cells = dict(re.findall(r'<td class="field-(figures_\w+)[^"]*">(.*?)</td>', row.group(0)))
    assert cells == {
        "figures_status": "Regular",
        "figures_r_score": "3",
        "figures_f_score": "2",
        "figures_m_score": "5",
        "figures_lifetime_total": "1234.50 ₽",
        "figures_last_purchase": "April 1, 2026",
    }


def test_the_list_takes_as_many_queries_for_forty_customers_as_for_two(
    admin_client, django_assert_max_num_queries
):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(customer_list())
        assert response.status_code == 200
        return len(queries)

    give_figures("vip", 5, 5, 5)
    CustomerFactory()
    few = count()
    for n in range(38):
        give_figures("regular", 1 + n % 5, 2, 3)

    with django_assert_max_num_queries(10):
        response = admin_client.get(customer_list())

    assert len(response.context["cl"].result_list) == 40
    assert count() == few


def test_the_distribution_counts_every_status_in_one_grouped_query(admin_client, base):
    finished_run(dt.date(2026, 4, 29), kind=StatusRun.Kind.NIGHTLY)
    # Neither moves the date the figures hold for: touched customers only, and unfinished.
    finished_run(dt.date(2026, 4, 30), kind=StatusRun.Kind.INCREMENTAL)
    StatusRun.objects.create(kind=StatusRun.Kind.FULL, as_of=dt.date(2026, 5, 1))

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(customer_list())

    distribution = response.context["status_distribution"]
    assert [(row.value, row.count) for row in distribution] == [
        ("newcomer", 1),
        ("one_time", 0),
        ("growing", 0),
        ("regular", 1),
        ("lost", 1),
        ("vip", 2),
        ("none", 2),
    ]
    assert [str(row.label) for row in distribution] == [
        "Newcomer",
        "One-time",
        "Growing",
        "Regular",
        "Lost",
        "VIP",
        "No status",
    ]
    grouped = [
        q["sql"]
        for q in queries
        if "loyalty_customerfigures" in q["sql"] and "GROUP BY" in q["sql"]
    ]
    assert len(grouped) == 1
    assert response.context["figures_as_of"] == dt.date(2026, 4, 29)
    content = response.content.decode()
    assert "Statuses and figures as of April 29, 2026." in content
    assert (
        f'<a href="{customer_list()}?status=vip">VIP</a>: <span class="count">2</span>' in content
    )


def test_each_count_of_the_distribution_links_to_that_many_customers(admin_client, base):
    distribution = admin_client.get(customer_list()).context["status_distribution"]

    for row in distribution:
        response = admin_client.get(row.url)
        assert (row.value, response.context["cl"].result_count) == (row.value, row.count)


def test_a_filtered_list_still_shows_the_distribution_of_the_whole_base(admin_client, base):
    response = admin_client.get(customer_list(), {"status": "vip", "q": "Иванова"})

    distribution = response.context["status_distribution"]
    assert response.context["cl"].result_count == 2
    assert [(row.value, row.count, row.active) for row in distribution][-2:] == [
        ("vip", 2, True),
        ("none", 2, False),
    ]
    assert response.context["figures_as_of"] is None
    assert "Statuses and figures have not been computed yet." in response.content.decode()


# --- the customer's page -----------------------------------------------------------------------


def test_the_customer_page_shows_the_figures(admin_client):
    customer = customer_with_history()

    html = admin_client.get(customer_page(customer)).content.decode()

    assert {
        field: readonly(html, f"figures_{field}")
        for field in (
            "status",
            "status_since",
            "as_of",
            "r_score",
            "f_score",
            "m_score",
            "purchase_count",
            "lifetime_total",
            "average_check",
            "frequency",
            "purchases_12m",
            "total_12m",
            "first_purchase",
            "last_purchase",
            "days_since_last_purchase",
            "home_store",
        )
    } == {
        "status": "Regular",
        "status_since": "March 20, 2026",
        "as_of": "April 30, 2026",
        "r_score": "5",
        "f_score": "5",
        "m_score": "5",
        "purchase_count": "2",
        "lifetime_total": "350.50 ₽",
        "average_check": "175.25 ₽",
        "frequency": "0.55",
        "purchases_12m": "2",
        "total_12m": "350.50 ₽",
        "first_purchase": "Jan. 10, 2026",
        "last_purchase": "March 20, 2026",
        # 30 April − 20 March.
        "days_since_last_purchase": "41",
        "home_store": "HOME Аптека на Ленина",
    }


def test_the_customer_page_shows_the_history_in_effect_and_the_superseded_apart(admin_client):
    customer = customer_with_history()
    first_run = StatusRun.objects.get()
    replay = replay_without_regular()

    response = admin_client.get(customer_page(customer))

    history = [
        (c.effective_date, c.old_status, c.new_status) for c in response.context["status_history"]
    ]
    assert history == [(dt.date(2026, 1, 10), "", "newcomer")]
    superseded = response.context["superseded_status_changes"]
    assert [
        (c.effective_date, c.old_status, c.new_status, c.run, c.superseded_by) for c in superseded
    ] == [(dt.date(2026, 3, 20), "newcomer", "regular", first_run, replay)]
    html = response.content.decode()
    assert readonly(html, "figures_status") == "Newcomer"
    panel = html.split('id="status-history"')[1].split("</fieldset>")[0]
    in_effect, collapsed = panel.split('<details id="superseded-status-changes">')
    in_effect_row = StatusChange.objects.get(customer=customer, superseded_at__isnull=True)
    computed = date_format(timezone.localtime(in_effect_row.computed_at), "SHORT_DATETIME_FORMAT")
    assert re.findall(r"<td>([^<]*)</td>", in_effect) == ["01/10/2026", "—", "Newcomer", computed]
    assert "1 superseded change (replaced by a later full recomputation)" in collapsed
    assert "<td><del>03/20/2026</del></td>" in collapsed
    assert "<td><del>Regular</del></td>" in collapsed
    assert f"<td>Full replay as of {AS_OF}</td>" in collapsed


def test_a_customer_without_purchases_has_no_figures_and_no_history(admin_client):
    customer = CustomerFactory()

    response = admin_client.get(customer_page(customer))

    html = response.content.decode()
    assert response.context["status_history"] == []
    assert response.context["superseded_status_changes"] == []
    assert readonly(html, "figures_status") == "-"
    assert readonly(html, "figures_lifetime_total") == "-"
    assert "No figures: the customer had no completed purchase when they were last" in html
    assert "No status yet: the customer has no completed purchase." in html
    assert "superseded-status-changes" not in html


def test_the_history_costs_no_query_per_change(admin_client):
    customer = customer_with_history()
    # Bought too, but never computed: no figures, no history.
    plain = CustomerFactory()
    buy(plain, StoreFactory(), dt.date(2026, 4, 1), "10.00")
    replay_without_regular()

    def count(who: Customer) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(customer_page(who)).status_code == 200
        return len(queries)

    count(plain)  # the loyalty configuration is read once per process, then kept (config_cache)
    assert count(customer) == count(plain)


def test_the_add_page_has_no_figures(admin_client):
    response = admin_client.get(reverse("admin:customers_customer_add"))

    assert response.status_code == 200
    assert "figures_status" not in response.content.decode()
    assert "status_history" not in response.context


# --- the status settings -----------------------------------------------------------------------


def settings_page() -> str:
    return reverse("admin:loyalty_statussettings_change", args=[status_settings_get().pk])


def settings_form(**changes) -> dict:
    data = {**THRESHOLD_DEFAULTS, **changes}
    if not data["regular_enabled"]:
        del data["regular_enabled"]  # an unticked checkbox is not sent
    return data


def test_the_settings_list_opens_the_one_row(admin_client):
    response = admin_client.get(reverse("admin:loyalty_statussettings_changelist"))

    settings = StatusSettings.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:loyalty_statussettings_change", args=[settings.pk])
    assert admin_client.get(response.url).status_code == 200
    assert admin_client.get(reverse("admin:loyalty_statussettings_add")).status_code == 403
    delete = reverse("admin:loyalty_statussettings_delete", args=[settings.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert StatusSettings.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"lost_months": 0}, "lost_months", "Must be at least 1 month."),
        ({"growing_months": 12}, "growing_months", "Must be below the VIP threshold."),
        (
            {"one_time_max_months": 12},
            "one_time_max_months",
            "Must be below the “lost after” threshold.",
        ),
        (
            {"newcomer_months": 3},
            "newcomer_months",
            "Must be below the one-time status's lower bound (last purchase at least … months "
            "ago).",
        ),
        (
            {"one_time_min_months": 6},
            "one_time_min_months",
            "Must be below the one-time status's upper bound (first purchase at most … months "
            "ago).",
        ),
    ],
)
def test_inconsistent_thresholds_are_refused_on_the_field_and_nothing_is_saved(
    admin_client, django_capture_on_commit_callbacks, changes, field, reason
):
    page = settings_page()
    before = StatusSettings.objects.values().get()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(page, settings_form(**changes))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [reason]}
    assert escape(reason) in response.content.decode()
    assert StatusSettings.objects.values().get() == before
    assert callbacks == []
    assert not StatusRun.objects.exists()


def test_saving_the_thresholds_queues_a_full_recomputation(
    admin_client, celery_eager, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    buy(customer, StoreFactory(), timezone.localdate() - dt.timedelta(days=3), "100.00")
    page = settings_page()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(page, settings_form(vip_months=10, regular_enabled=False))

    assert (response.status_code, response.url) == (302, page)
    settings = StatusSettings.objects.get()
    assert (settings.vip_months, settings.regular_enabled) == (10, False)
    # One full recomputation (the other callback tells every worker the thresholds changed).
    assert [c for c in callbacks if c is queue_full_recompute] == [queue_full_recompute]
    run = StatusRun.objects.get()
    assert (run.kind, run.as_of, run.customers, run.error) == (
        StatusRun.Kind.FULL,
        timezone.localdate(),
        1,
        "",
    )
    assert run.thresholds == {**THRESHOLD_DEFAULTS, "vip_months": 10, "regular_enabled": False}
    assert CustomerFigures.objects.get(customer=customer).status == "newcomer"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "A full recomputation of every customer's statuses with the new thresholds was queued; "
        "the figures change when it finishes (see Status recomputations).",
        f'The status settings “<a href="{page}">Status settings</a>” was changed successfully.',
    ]


def test_saving_unchanged_thresholds_recomputes_nothing(
    admin_client, django_capture_on_commit_callbacks
):
    page = settings_page()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(page, settings_form())

    assert response.status_code == 302
    assert callbacks == []
    assert not StatusRun.objects.exists()


# --- the recomputations ------------------------------------------------------------------------


def test_the_recomputations_are_listed_read_only(admin_client):
    done = finished_run(AS_OF, customers=120, figures_written=118, changes_written=40)
    failed = finished_run(AS_OF, kind=StatusRun.Kind.NIGHTLY, error="OperationalError: gone\nmore")
    running = StatusRun.objects.create(kind=StatusRun.Kind.INCREMENTAL, as_of=AS_OF)

    response = admin_client.get(reverse("admin:loyalty_statusrun_changelist"))

    assert list(response.context["cl"].result_list) == [running, failed, done]
    html = response.content.decode()
    outcomes = re.findall(r'<td class="field-outcome">(\w+)</td>', html)
    assert outcomes == ["Running", "Failed", "Finished"]
    assert re.findall(r'<td class="field-short_error">([^<]*)</td>', html) == [
        "-",
        "OperationalError: gone",
        "-",
    ]
    assert re.findall(r'<td class="field-customers">(\d+)</td>', html) == ["0", "0", "120"]
    assert admin_client.get(reverse("admin:loyalty_statusrun_add")).status_code == 403
    page = reverse("admin:loyalty_statusrun_change", args=[done.pk])
    view = admin_client.get(page)
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert admin_client.post(page, {"customers": 1}).status_code == 403
    assert StatusRun.objects.get(pk=done.pk).customers == 120


# --- the timeline -----------------------------------------------------------------------------


def test_the_timeline_has_each_status_change_in_effect_at_local_midnight():
    customer = customer_with_history()

    events = [e for e in customer_timeline(customer=customer) if e.kind == "status"]

    assert events == [
        TimelineEvent(
            at=dt.datetime(2026, 3, 20, tzinfo=MSK),
            kind="status",
            title="Status: Newcomer → Regular",
        ),
        TimelineEvent(
            at=dt.datetime(2026, 1, 10, tzinfo=MSK), kind="status", title="Status: Newcomer"
        ),
    ]
    assert events[0].at.isoformat() == "2026-03-20T00:00:00+03:00"
    assert list(status_change_events(customer, 1)) == events[:1]


def test_the_timeline_leaves_superseded_changes_out(admin_client):
    customer = customer_with_history()
    replay_without_regular()
    expected = [
        TimelineEvent(
            at=dt.datetime(2026, 1, 10, tzinfo=MSK), kind="status", title="Status: Newcomer"
        )
    ]

    response = admin_client.get(customer_page(customer))

    assert [e for e in customer_timeline(customer=customer) if e.kind == "status"] == expected
    # The page reads the history it prefetched: the same events.
    assert [e for e in response.context["timeline"] if e.kind == "status"] == expected
    assert StatusChange.objects.filter(customer=customer).count() == 2
