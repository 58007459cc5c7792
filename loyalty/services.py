"""Loyalty services: recomputing figures, statuses and scores; the status settings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from pharmacrm.locks import try_advisory_lock

from . import status_rules
from .models import StatusRun, StatusSettings
from .recompute import generic
from .recompute.common import (
    RECOMPUTE_LOCK_KEY,
    is_postgresql,
    last_breakpoints,
    last_whole_base_run,
    thresholds,
    today,
)
from .status_rules import Thresholds

logger = logging.getLogger(__name__)

# A nightly run catches up missed nights day by day up to this many days; a longer gap (or a
# first run, a threshold change, a date before the stored one) is a full replay instead.
MAX_CATCH_UP_DAYS = 7
# Blocking lock held while results are written: a touched-customer run never interleaves its
# writes with a whole-base run's, so neither overwrites the other with older figures.
WRITE_LOCK_KEY = 0x57A7_0002


def _whole_base_lock():
    """True when this process may run a whole-base recomputation now."""
    return try_advisory_lock(RECOMPUTE_LOCK_KEY)


def _write_lock() -> None:
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK_KEY])


def _plan(as_of: dt.date, th: Thresholds, full: bool) -> list[dt.date] | None:
    """The days a nightly run steps through, or None when a full replay is needed."""
    if full:
        return None
    previous = last_whole_base_run()
    if previous is None or previous.thresholds != dataclasses.asdict(th):
        return None
    gap = (as_of - previous.as_of).days
    if gap < 0 or gap > MAX_CATCH_UP_DAYS:
        return None
    return [previous.as_of + dt.timedelta(days=n) for n in range(1, gap + 1)] or [as_of]


def statuses_recompute(*, as_of: dt.date | None = None, full: bool = False) -> StatusRun | None:
    """Recompute and store every customer's figures, status and R/F/M scores as of `as_of`
    (default: today in the chain's time zone). The same date gives the same answer every time.

    A nightly run applies the rules day by day from the stored date; `full`, a first run, a
    threshold change or a long gap replays every customer's history from the first purchase
    (history rows that change are superseded, never deleted). Returns the run, or None when
    another whole-base recomputation is running.
    """
    as_of = as_of or today()
    th = thresholds()
    with _whole_base_lock() as acquired:
        if not acquired:
            logger.info("Status recomputation skipped: another one is running")
            return None
        days = _plan(as_of, th, full)
        run = StatusRun.objects.create(
            kind=StatusRun.Kind.FULL if days is None else StatusRun.Kind.NIGHTLY,
            as_of=as_of,
            thresholds=dataclasses.asdict(th),
        )
        try:
            with transaction.atomic():
                _write_lock()
                outcome = _recompute_all(run=run, th=th, days=days)
        except Exception as exc:
            StatusRun.objects.filter(pk=run.pk).update(
                error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
            )
            raise
        _finish(run, outcome)
        return run


def _recompute_all(
    *, run: StatusRun, th: Thresholds, days: list[dt.date] | None
) -> generic.Outcome:
    now = timezone.now()
    if is_postgresql():
        from .recompute import postgres

        if days is None:
            return postgres.full_replay(as_of=run.as_of, th=th, run=run, now=now)
        previous = days[0] - dt.timedelta(days=1)
        return postgres.nightly(days=days, previous=previous, th=th, run=run, now=now)
    if days is None:
        return generic.recompute_customers(
            customer_ids=None, as_of=run.as_of, th=th, run=run, now=now, replay=True, rank=True
        )
    total = generic.Outcome()
    for day in days:
        outcome = generic.recompute_customers(
            customer_ids=None,
            as_of=day,
            th=th,
            run=run,
            now=now,
            replay=False,
            rank=day == days[-1],
        )
        total.add(outcome)
        total.breakpoints = outcome.breakpoints
    return total


def _finish(run: StatusRun, outcome: generic.Outcome) -> None:
    run.customers = outcome.customers
    run.figures_written = outcome.figures_written
    run.changes_written = outcome.changes_written
    run.changes_superseded = outcome.changes_superseded
    if outcome.breakpoints:
        run.rfm_breakpoints = generic.encode_breakpoints(outcome.breakpoints)
    run.timings = {phase: round(seconds, 3) for phase, seconds in outcome.timings.items()}
    run.finished_at = timezone.now()
    run.save(
        update_fields=[
            "timings",
            "customers",
            "figures_written",
            "changes_written",
            "changes_superseded",
            "rfm_breakpoints",
            "finished_at",
        ]
    )


def customer_statuses_refresh(*, customer_ids: Iterable[int]) -> StatusRun | None:
    """Recompute the given customers (after an import, an API purchase, a merge) as of the stored
    date — today's once the nightly run has run — replaying each one's history; R/F/M are scored
    against the breakpoints the last whole-base run saved. None when there is nothing to do."""
    ids = sorted(set(customer_ids))
    if not ids:
        return None
    from .recompute.common import stored_as_of

    as_of = stored_as_of() or today()
    th = thresholds()
    run = StatusRun.objects.create(
        kind=StatusRun.Kind.INCREMENTAL, as_of=as_of, thresholds=dataclasses.asdict(th)
    )
    with transaction.atomic():
        _write_lock()
        outcome = generic.recompute_customers(
            customer_ids=ids,
            as_of=as_of,
            th=th,
            run=run,
            now=timezone.now(),
            replay=True,
            rank=False,
            saved_breakpoints=last_breakpoints(),
        )
    outcome.breakpoints = {}
    _finish(run, outcome)
    return run


def threshold_problem_message(reason: str) -> str:
    """What marketers read for one of status_rules' reasons (plain English: that module has no
    Django in it); a reason missing here is shown as it is."""
    messages_by_reason = {
        "must be at least 1 month": gettext("Must be at least 1 month."),
        f"must be at most {status_rules.MAX_MONTHS} months": gettext(
            "Must be at most %(months)s months."
        )
        % {"months": status_rules.MAX_MONTHS},
        "must be below the one-time status's lower bound": gettext(
            "Must be below the one-time status's lower bound (last purchase at least … months ago)."
        ),
        "must be below the one-time upper bound": gettext(
            "Must be below the one-time status's upper bound (first purchase at most … months ago)."
        ),
        "must be below the lost threshold": gettext("Must be below the “lost after” threshold."),
        "must be below the VIP threshold": gettext("Must be below the VIP threshold."),
    }
    return messages_by_reason.get(reason, reason)


def status_settings_get() -> StatusSettings:
    settings, _ = StatusSettings.objects.get_or_create(pk=1)
    return settings


def status_settings_update(*, settings: StatusSettings, **changes) -> StatusSettings:
    """Change the status thresholds; inconsistent ones are refused naming the field. Saving
    queues a full recomputation once committed."""
    for name, value in changes.items():
        setattr(settings, name, value)
    problems = settings.thresholds().problems()
    if problems:
        raise ValidationError(
            {name: threshold_problem_message(reason) for name, reason in problems}
        )
    with transaction.atomic():
        settings.save()
        transaction.on_commit(queue_full_recompute)
    return settings


def queue_full_recompute() -> None:
    from .tasks import statuses_recompute_full

    statuses_recompute_full.delay()
