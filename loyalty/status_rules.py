"""The customer-status rules of ../shared/PRODUCT.md as a pure function of purchase dates.

No database here: the full replay, the incremental recomputation and the tests all feed this
module sorted purchase dates and get back the days on which the status changed.

The status on day T is the one given on the latest day t <= T on which a rule holds. Between two
purchases the last purchase date L is fixed, so each rule holds on a few intervals that follow
from F, L and the calendar months with a purchase; the status can only change where one of those
intervals starts or ends. The replay evaluates the rules at those days only (a handful per
purchase), never day by day.

Dates are handled as proleptic ordinals (``date.toordinal()``); month arithmetic clamps to the end
of the month, as ``dateutil.relativedelta`` and PostgreSQL's ``interval '1 month'`` do.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

# Statuses as stored (loyalty.models.CustomerStatus uses the same codes).
LOST = "lost"
VIP = "vip"
GROWING = "growing"
NEWCOMER = "newcomer"
ONE_TIME = "one_time"
REGULAR = "regular"

# Thresholds may not exceed this many months: the month-activity bitmap of the nightly SQL is
# a 63-bit integer, and no sensible rule looks further back than five years.
MAX_MONTHS = 60


@dataclass(frozen=True)
class Thresholds:
    """The rule thresholds in months (PRODUCT.md defaults) and the "regular" switch."""

    lost_months: int = 12
    vip_months: int = 12
    growing_months: int = 3
    newcomer_months: int = 1
    one_time_min_months: int = 3  # last purchase at least this long ago ...
    one_time_max_months: int = 6  # ... and the first one at most this long ago
    regular_enabled: bool = True

    def problems(self) -> list[tuple[str, str]]:
        """(field, reason) for every inconsistency; empty when the rules are consistent."""
        errors: list[tuple[str, str]] = []
        for name in (
            "lost_months",
            "vip_months",
            "growing_months",
            "newcomer_months",
            "one_time_min_months",
            "one_time_max_months",
        ):
            value = getattr(self, name)
            if value < 1:
                errors.append((name, "must be at least 1 month"))
            elif value > MAX_MONTHS:
                errors.append((name, f"must be at most {MAX_MONTHS} months"))
        if errors:
            return errors
        if self.newcomer_months >= self.one_time_min_months:
            errors.append(("newcomer_months", "must be below the one-time status's lower bound"))
        if self.one_time_min_months >= self.one_time_max_months:
            errors.append(("one_time_min_months", "must be below the one-time upper bound"))
        if self.one_time_max_months >= self.lost_months:
            errors.append(("one_time_max_months", "must be below the lost threshold"))
        if self.growing_months >= self.vip_months:
            errors.append(("growing_months", "must be below the VIP threshold"))
        return errors


# --- calendar arithmetic on ordinals --------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus `months` calendar months, clamped to the end of the month."""
    index = day.year * 12 + day.month - 1 + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last))


@cache
def _month_of(ordinal: int) -> int:
    day = dt.date.fromordinal(ordinal)
    return day.year * 12 + day.month - 1


@cache
def _month_start(month: int) -> int:
    year, month0 = divmod(month, 12)
    return dt.date(year, month0 + 1, 1).toordinal()


@cache
def first_day_at_least(ordinal: int, months: int) -> int:
    """The first day t with t − `months` months >= the given day.

    Not always day + months: 30 November + 3 months = 28 February, yet 28 February − 3 months
    = 28 November, so the first such day is 1 March. When adding clamps, the answer is the
    first day of the following month.
    """
    day = dt.date.fromordinal(ordinal)
    candidate = add_months(day, months)
    if add_months(candidate, -months) < day:
        return candidate.toordinal() + 1
    return candidate.toordinal()


def month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


# --- the rules ------------------------------------------------------------------------------


def status_changes(
    days: Iterable[int], th: Thresholds, until: int
) -> list[tuple[int, str | None, str]]:
    """Every status change up to day `until`: (day ordinal, old status, new status).

    `days` are the customer's distinct purchase days as ordinals, ascending (completed
    purchases only). The first change is always (first purchase day, None, newcomer).

    Between two purchases (a segment [start, end] with L = start) each rule holds on an interval:
    lost from `lost_from` on; VIP and growing for whole months (only the purchase's month and the
    next can qualify: the month after that has no purchase); newcomer up to `newcomer_until`;
    one-time on [one_time_from, one_time_until]; regular on the purchase day itself. The rules are
    evaluated, in precedence order, at the start of each piece where that set changes.
    """
    ordered = [d for d in days if d <= until]
    if not ordered:
        return []
    first = ordered[0]
    newcomer_until = first_day_at_least(first + 1, th.newcomer_months) - 1
    one_time_until = first_day_at_least(first + 1, th.one_time_max_months) - 1
    lost_m, ot_min_m = th.lost_months, th.one_time_min_months
    vip_m, growing_m, regular = th.vip_months, th.growing_months, th.regular_enabled
    month_of, month_start, first_at = _month_of, _month_start, first_day_at_least

    changes: list[tuple[int, str | None, str]] = []
    current: str | None = None
    # Consecutive calendar months with a purchase ending at the current segment's month
    # (`streak`) and at the month before it (`streak_prev`).
    seg_month = -10
    streak = streak_prev = 0
    count = len(ordered)
    for i, start in enumerate(ordered):
        end = ordered[i + 1] - 1 if i + 1 < count else until
        month = month_of(start)
        if month != seg_month:
            if month == seg_month + 1:
                streak_prev, streak = streak, streak + 1
            else:
                streak_prev, streak = 0, 1
            seg_month = month
        lost_from = first_at(start + 1, lost_m)
        one_time_from = first_at(start, ot_min_m)
        next_month = month_start(month + 1)
        after_next = month_start(month + 2)
        points = [start]
        for c in (
            lost_from,
            newcomer_until + 1,
            one_time_from,
            one_time_until + 1,
            next_month,
            after_next,
        ):
            if start < c <= end:
                points.append(c)
        if len(points) > 1:
            points.sort()
        for t in points:
            if t < next_month:
                streak_before = streak_prev
            elif t < after_next:
                streak_before = streak
            else:
                streak_before = 0
            if t >= lost_from:
                status = LOST
            elif streak_before >= vip_m:
                status = VIP
            elif streak_before >= growing_m:
                status = GROWING
            elif t <= newcomer_until:
                status = NEWCOMER
            elif one_time_from <= t <= one_time_until:
                status = ONE_TIME
            elif regular and t == start:
                status = REGULAR  # a purchase day after the newcomer period
            else:
                continue  # no rule holds: the status stays
            if status != current:
                changes.append((t, current, status))
                current = status
    return changes


def status_on(days: Sequence[int], th: Thresholds, day: int) -> str | None:
    """The status on `day`: the last change up to it (None before the first purchase)."""
    changes = status_changes(days, th, day)
    return changes[-1][2] if changes else None


def ordinals(dates: Iterable[dt.date]) -> list[int]:
    """Sorted distinct ordinals of the given dates."""
    return sorted({d.toordinal() for d in dates})


@dataclass(frozen=True)
class DayCutoffs:
    """The dates the rules compare against on one day T: what the nightly SQL is given.

    Rules on T: lost iff L < lost_before; VIP / growing iff every one of the N calendar months
    before T's month has a purchase; newcomer iff F >= newcomer_from; one-time iff
    F >= one_time_first_from and L <= one_time_last_until; regular iff L = T and F < newcomer_from.
    """

    day: dt.date
    lost_before: dt.date
    newcomer_from: dt.date
    one_time_first_from: dt.date
    one_time_last_until: dt.date
    month: int  # month_index(T)

    @classmethod
    def for_day(cls, day: dt.date, th: Thresholds) -> DayCutoffs:
        return cls(
            day=day,
            lost_before=add_months(day, -th.lost_months),
            newcomer_from=add_months(day, -th.newcomer_months),
            one_time_first_from=add_months(day, -th.one_time_max_months),
            one_time_last_until=add_months(day, -th.one_time_min_months),
            month=month_index(day),
        )


def status_rules_on_day(
    *, first: dt.date, last: dt.date, month_bits: int, cut: DayCutoffs, th: Thresholds
) -> str | None:
    """The status the rules give on day `cut.day` (None: no rule holds, the status stays).

    `month_bits` has bit i set when the customer bought in the (i+1)-th calendar month before
    the day's month. The nightly SQL computes exactly this expression for every customer.
    """
    if last < cut.lost_before:
        return LOST
    vip_mask = (1 << th.vip_months) - 1
    growing_mask = (1 << th.growing_months) - 1
    if month_bits & vip_mask == vip_mask:
        return VIP
    if month_bits & growing_mask == growing_mask:
        return GROWING
    if first >= cut.newcomer_from:
        return NEWCOMER
    if first >= cut.one_time_first_from and last <= cut.one_time_last_until:
        return ONE_TIME
    if th.regular_enabled and last == cut.day:
        return REGULAR
    return None
