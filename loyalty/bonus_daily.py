"""The bonus ledger's daily run: activation, then expiry, then birthday grants.

The three jobs (`loyalty.ledger_jobs`) are each safe to run again — activation finds nothing left
to activate, expiry is keyed by customer and day, birthday grants by customer and year — so a
second run on the same day posts nothing new. Runs never overlap: on PostgreSQL the whole run
holds an advisory lock, and a copy the broker redelivers mid-run (or a second beat) finds it taken
and stops.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.utils import timezone

from pharmacrm.locks import try_advisory_lock

from .ledger_jobs import JobResult, bonus_activate, bonus_birthdays, bonus_expire

logger = logging.getLogger(__name__)

# pg_try_advisory_lock key of the daily bonus run: never two at once.
BONUS_DAILY_LOCK_KEY = 0xB0B0_0001


@dataclass(frozen=True)
class DailyOutcome:
    day: dt.date
    activated: JobResult
    expired: JobResult
    birthdays: JobResult

    def report(self) -> dict:
        """Counts and totals only (what the task returns and logs): no customer in it."""
        return {
            "day": self.day.isoformat(),
            # bonus_activate counts lots (one account may have several activated at once).
            "activated_lots": self.activated.accounts,
            "activated_amount": str(self.activated.amount),
            "expired_accounts": self.expired.accounts,
            "expired_amount": str(self.expired.amount),
            "birthday_grants": self.birthdays.accounts,
            "birthday_amount": str(self.birthdays.amount),
        }


def _daily_lock():
    """True when this process may run the daily jobs now."""
    return try_advisory_lock(BONUS_DAILY_LOCK_KEY)


def bonus_daily_run(*, now: dt.datetime | None = None) -> DailyOutcome | None:
    """Activates the pending accruals whose day has come (paying debts off first), expires what
    is left of lots past their validity, and grants the birthday bonus of the day (`now`'s date
    in the chain's zone). Returns the counts, or None when another run holds the lock."""
    now = now or timezone.now()
    day = timezone.localdate(now)
    with _daily_lock() as acquired:
        if not acquired:
            logger.info("Bonus daily run skipped: another one is running")
            return None
        outcome = DailyOutcome(
            day=day,
            activated=bonus_activate(now),
            expired=bonus_expire(now),
            birthdays=bonus_birthdays(day),
        )
    logger.info(
        "Bonus daily run for %(day)s: %(activated_lots)s lots activated (%(activated_amount)s), "
        "%(expired_accounts)s accounts expired (%(expired_amount)s), %(birthday_grants)s "
        "birthday grants (%(birthday_amount)s)",
        outcome.report(),
    )
    return outcome
