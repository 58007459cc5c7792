"""Celery tasks of the loyalty app: status recomputation and the bonus ledger's daily run.

Whole-base runs go to their own queue, `statuses` (see CELERY_TASK_ROUTES), so a replay lasting
minutes never holds up imports or messages; they hold a PostgreSQL advisory lock for their whole
run, so a copy redelivered by the broker mid-run (or a second beat) finds it taken and stops.
"""

import datetime as dt
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .bonus_daily import bonus_daily_run
from .services import customer_statuses_refresh, statuses_recompute

logger = logging.getLogger(__name__)


def _report(run) -> dict | None:
    if run is None:
        return None
    return {
        "run": run.pk,
        "kind": run.kind,
        "as_of": run.as_of.isoformat(),
        "customers": run.customers,
        "figures_written": run.figures_written,
        "changes_written": run.changes_written,
    }


@shared_task(ignore_result=True)
def statuses_recompute_nightly(as_of: str | None = None) -> dict | None:
    """Figures, scores and statuses of every customer for today (or `as_of`, ISO date)."""
    day = dt.date.fromisoformat(as_of) if as_of else None
    return _report(statuses_recompute(as_of=day))


@shared_task(ignore_result=True)
def statuses_recompute_full(as_of: str | None = None) -> dict | None:
    """Replay every customer's history (first install, backfill, threshold change)."""
    day = dt.date.fromisoformat(as_of) if as_of else None
    return _report(statuses_recompute(as_of=day, full=True))


@shared_task(
    ignore_result=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
)
def customer_statuses_refresh_task(customer_ids: list[int]) -> dict | None:
    """Recompute the customers an import, an API purchase or a merge touched."""
    return _report(customer_statuses_refresh(customer_ids=customer_ids))


@shared_task(
    ignore_result=True,
    # A lost database connection: run again (each job is keyed, so what was done is not redone).
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=60,
    retry_backoff_max=900,
    max_retries=5,
)
def bonuses_daily(at: str | None = None) -> dict | None:
    """Activation, expiry and birthday grants for now (or `at`, an ISO date-time); None when
    another run is in progress. Returns and logs counts only."""
    now = dt.datetime.fromisoformat(at) if at else None
    outcome = bonus_daily_run(now=now)
    return None if outcome is None else outcome.report()
