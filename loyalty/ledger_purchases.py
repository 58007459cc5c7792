"""Bonuses of purchases: accrual, redemption and their reversal, for one purchase or a batch.

A purchase's bonuses follow from its current state. Completed: it has spent `bonus_spent` and
earned the accrual of its eligible amount at the percent of the customer's status on its date
(counting it and the earlier purchases; kept from the first accrual, so a later recomputation
of past statuses does not change it). Placed (an app or website order awaiting pick-up or
delivery): it holds `bonus_spent`, redeemed at placement, and earns nothing until it is
completed. Cancelled or returned: nothing (what a placed order held is refunded).
`PurchaseBonuses` compares that with what the ledger already holds for each purchase and posts
the difference:

1. more spent than before: a redemption, checked against the available balance (a re-exported
   purchase only for its difference); refused: the purchase is rejected and nothing of it posted;
2. less spent: the difference refunded (a new credit);
3. less earned: the accrual reversed (its own lot first, then available bonuses, then debt);
4. more earned: an accrual (paying debt off first).

Purchases are applied in datetime order, so a file's later purchase can spend what an earlier
one earned. The same state delivered again posts nothing (the keys are numbered per purchase
and kind, under the account lock).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Purchase
from customers.purchase_hooks import PurchaseRecord, natural_key, register_purchase_hook
from pharmacrm.validation import field_error

from .bonus_rules import BonusPolicy
from .ledger import load_lots, open_books, write_books
from .ledger_book import Book, InsufficientBonus, NewMovement
from .models import BonusMovement, MovementKind
from .purchase_status import StatusOnPurchase

ZERO = Decimal("0.00")


# A purchase as it is now (written or about to be): the customers app's record.
PurchaseState = PurchaseRecord


@dataclass(slots=True)
class Outcome:
    accrued: Decimal = ZERO  # posted now (signed)
    spent: Decimal = ZERO
    movements: list[NewMovement] = field(default_factory=list)
    status: str = ""
    percent: Decimal | None = None


class PurchaseBonuses:
    """Posts the bonuses of a batch of purchases in one go (inside the caller's transaction)."""

    def __init__(
        self,
        *,
        policy: BonusPolicy | None = None,
        now: dt.datetime | None = None,
        channel: str = "",
        user_id: int | None = None,
        field_name: str = "bonus_spent",
    ) -> None:
        self.policy = policy or BonusPolicy.load()
        self.now = now or timezone.now()
        self.channel = channel
        self.user_id = user_id
        self.field_name = field_name
        # Every credit of the batch is posted now: the same activation and expiry dates.
        self.accrual_dates = self.policy.lot_dates(self.now)
        self.refund_dates = self.policy.lot_dates(self.now, wait=False)
        self.books: dict[int, Book] = {}
        self.outcomes: dict[object, Outcome] = {}
        self.rejected: dict[object, ValidationError] = {}

    def apply(
        self, states: list[PurchaseState], statuses: Mapping[object, str] | None = None
    ) -> None:
        """Works out every purchase's movements; those refused go to `rejected` (by ref), the
        rest to `outcomes`. Nothing is written until `write`. `statuses` (by ref): the status a
        purchase accrues at where the caller has worked it out already (an order's quote)."""
        # Purchases written just now have nothing posted yet.
        stored_ids = [s.purchase_id for s in states if s.purchase_id is not None and not s.is_new]
        customers = {s.customer_id for s in states if s.customer_id is not None}
        ledger = self._stored_ledger(stored_ids)
        while True:
            # What is posted is read again once the accounts are locked: a concurrent delivery
            # of the same purchase has committed by then, and its rows are seen.
            customers.update(c for per in ledger.values() for c in per)
            self.books.update(open_books(customers - self.books.keys()))
            ledger = self._stored_ledger(stored_ids)
            if {c for per in ledger.values() for c in per} <= self.books.keys():
                break
        needs_lots = {s.customer_id for s in states if s.spent or s.purchase_id in ledger}
        needs_lots.update(c for per in ledger.values() for c in per)
        load_lots([self.books[c] for c in needs_lots if c in self.books])
        percents = self._percents(states, ledger, statuses or {})
        # Compared in UTC: aware datetimes with distinct tzinfo objects (one per parsed
        # offset) compare through utcoffset() calls, a tenth of a batch's Python time.
        utc = dt.UTC
        for state in sorted(states, key=lambda s: (s.purchased_at.astimezone(utc), str(s.ref))):
            if state.customer_id is None:
                if state.spent:
                    self.rejected[state.ref] = field_error(
                        self.field_name,
                        _("Bonuses spent on a purchase without a customer."),
                        "no_customer",
                    )
                continue
            stored = ledger.get(state.purchase_id)
            try:
                if stored:
                    self.outcomes[state.ref] = self._apply(state, stored, percents)
                else:
                    self.outcomes[state.ref] = self._apply_first(state, percents)
            except InsufficientBonus as error:
                self.rejected[state.ref] = error

    def write(self) -> None:
        """Writes the movements; call after the purchases are written and `purchase_id` set on
        their states (`set_purchase_id`)."""
        write_books(self.books.values())

    def set_purchase_ids(self, ids: dict[object, int]) -> None:
        for book in self.books.values():
            for movement in book.new:
                if movement.purchase_id is None and movement.purchase_ref is not None:
                    movement.purchase_id = ids[movement.purchase_ref]

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _stored_ledger(purchase_ids: list[int]) -> dict[int, dict[int, dict[str, tuple]]]:
        """purchase id -> customer id -> kind -> (sum, count, percent) of what is posted."""
        ledger: dict[int, dict[int, dict[str, tuple]]] = defaultdict(dict)
        if not purchase_ids:
            return ledger
        rows = (
            BonusMovement.objects.filter(purchase_id__in=purchase_ids)
            .values("purchase_id", "customer_id", "kind")
            .annotate(total=Sum("amount"), count=Count("id"), percent=Max("accrual_percent"))
            .order_by()
        )
        for row in rows:
            ledger[row["purchase_id"]].setdefault(row["customer_id"], {})[row["kind"]] = (
                row["total"],
                row["count"],
                row["percent"],
            )
        return ledger

    def _percents(self, states, ledger, known: Mapping[object, str]) -> dict[object, tuple]:
        """(status, percent) for each completed purchase that needs its first accrual percent:
        the status on its date counting it and the earlier purchases (all written by now),
        unless `known` gives it."""
        todo = [
            s
            for s in states
            if s.customer_id is not None
            and s.status == Purchase.Status.COMPLETED
            and not _stored_percent(ledger.get(s.purchase_id, {}).get(s.customer_id, {}))
        ]
        if not todo:
            return {}
        unknown = [s for s in todo if s.ref not in known]
        statuses = (
            StatusOnPurchase((s.customer_id for s in unknown), {s.purchase_date for s in unknown})
            if unknown
            else None
        )
        percent = self.policy.percent
        result = {}
        for s in todo:
            status = known.get(s.ref) or statuses.status(s.customer_id, s.purchase_date)
            result[s.ref] = (status, percent(status, s.purchase_type_id))
        return result

    def _apply_first(self, state: PurchaseState, percents) -> Outcome:
        """`_apply` for a purchase with nothing posted yet (a new one: the import's common
        case), without the differences: at most a redemption and an accrual, each the first of
        its kind."""
        outcome = Outcome()
        completed = state.status == Purchase.Status.COMPLETED
        if not completed and state.status != Purchase.Status.PLACED:
            return outcome  # cancelled or returned before anything was posted: nothing to post
        book = self.books[state.customer_id]
        details = {
            "purchase_id": state.purchase_id,
            "purchase_ref": state.ref,
            "channel": self.channel,
            "created_by_id": self.user_id,
        }
        prefix = (
            f"purchase:{state.purchase_id}"
            if state.purchase_id is not None
            else f"purchase:{state.natural_key}"
        )
        if state.spent > 0:
            outcome.movements.append(
                book.redeem(
                    state.spent,
                    f"{prefix}:{MovementKind.REDEMPTION}:1",
                    self.now,
                    field_name=self.field_name,
                    **details,
                )
            )
            outcome.spent = state.spent
        if completed:
            outcome.status, percent = percents[state.ref]
            outcome.percent = percent
            eligible = self.policy.eligible_amount(state.lines, state.discount)
            earned = self.policy.accrual(eligible, state.spent, percent)
            if earned > 0:
                available_at, expires_at = self.accrual_dates
                outcome.movements.append(
                    book.credit(
                        MovementKind.ACCRUAL,
                        earned,
                        f"{prefix}:{MovementKind.ACCRUAL}:1",
                        self.now,
                        available_at,
                        expires_at,
                        accrual_percent=percent,
                        status=outcome.status,
                        **details,
                    )
                )
            outcome.accrued = earned
        return outcome

    def _apply(self, state: PurchaseState, stored: dict[int, dict[str, tuple]], percents):
        outcome = Outcome()
        book = self.books[state.customer_id]
        purchase = state.purchase_id or state.ref
        details = {
            "purchase_id": state.purchase_id,
            "purchase_ref": state.ref,
            "channel": self.channel,
            "created_by_id": self.user_id,
        }
        counts: dict[tuple[int, str], int] = {}

        prefix = (
            f"purchase:{state.purchase_id}"
            if state.purchase_id is not None
            else f"purchase:{state.natural_key}"
        )

        def key(customer_id: int, kind: str) -> str:
            n = counts.get((customer_id, kind))
            if n is None:
                n = sum(per.get(kind, (0, 0, None))[1] for per in stored.values())
            counts[(customer_id, kind)] = n + 1
            return f"{prefix}:{kind}:{n + 1}"

        mine = stored.get(state.customer_id, {})
        earned = _net(mine, MovementKind.ACCRUAL, MovementKind.ACCRUAL_REVERSAL)
        spent = -_net(mine, MovementKind.REDEMPTION, MovementKind.REDEMPTION_REVERSAL)
        completed = state.status == Purchase.Status.COMPLETED
        # A placed order's spend is held (redeemed when placed); its accrual waits for completion.
        holds_spend = completed or state.status == Purchase.Status.PLACED
        want_spent = state.spent if holds_spend else ZERO
        if want_spent > spent:
            # First, so a refusal leaves the book untouched.
            movement = book.redeem(
                want_spent - spent,
                key(state.customer_id, MovementKind.REDEMPTION),
                self.now,
                field_name=self.field_name,
                **details,
            )
            outcome.movements.append(movement)
        elif want_spent < spent:
            outcome.movements.append(
                self._refund(
                    book,
                    spent - want_spent,
                    key(state.customer_id, MovementKind.REDEMPTION_REVERSAL),
                    details,
                )
            )
        outcome.spent = want_spent - spent
        # A purchase moved to another customer: everything posted to the old one is undone.
        for customer_id, per in stored.items():
            if customer_id == state.customer_id:
                continue
            old = self.books[customer_id]
            earned = _net(per, MovementKind.ACCRUAL, MovementKind.ACCRUAL_REVERSAL)
            spent = -_net(per, MovementKind.REDEMPTION, MovementKind.REDEMPTION_REVERSAL)
            if spent > 0:
                self._refund(
                    old, spent, key(customer_id, MovementKind.REDEMPTION_REVERSAL), details
                )
            if earned > 0:
                old.reverse(
                    MovementKind.ACCRUAL_REVERSAL,
                    earned,
                    key(customer_id, MovementKind.ACCRUAL_REVERSAL),
                    self.now,
                    purchase=purchase,
                    **details,
                )

        want_earned = ZERO
        if completed:
            percent = _stored_percent(mine)
            if percent is None:
                outcome.status, percent = percents[state.ref]
            outcome.percent = percent
            eligible = self.policy.eligible_amount(state.lines, state.discount)
            want_earned = self.policy.accrual(eligible, want_spent, percent)
        if want_earned < earned:
            outcome.movements.append(
                book.reverse(
                    MovementKind.ACCRUAL_REVERSAL,
                    earned - want_earned,
                    key(state.customer_id, MovementKind.ACCRUAL_REVERSAL),
                    self.now,
                    purchase=purchase,
                    **details,
                )
            )
        elif want_earned > earned:
            available_at, expires_at = self.accrual_dates
            outcome.movements.append(
                book.credit(
                    MovementKind.ACCRUAL,
                    want_earned - earned,
                    key(state.customer_id, MovementKind.ACCRUAL),
                    self.now,
                    available_at,
                    expires_at,
                    accrual_percent=outcome.percent,
                    status=outcome.status,
                    **details,
                )
            )
        outcome.accrued = want_earned - earned
        return outcome

    def _refund(self, book: Book, amount: Decimal, key: str, details) -> NewMovement:
        available_at, expires_at = self.refund_dates
        return book.credit(
            MovementKind.REDEMPTION_REVERSAL,
            amount,
            key,
            self.now,
            available_at,
            expires_at,
            **details,
        )


def _net(per: dict[str, tuple], credit_kind: str, debit_kind: str) -> Decimal:
    return per.get(credit_kind, (ZERO,))[0] + per.get(debit_kind, (ZERO,))[0]


def _stored_percent(per: dict[str, tuple]) -> Decimal | None:
    accrual = per.get(MovementKind.ACCRUAL)
    return accrual[2] if accrual else None


def purchase_state(
    purchase: Purchase,
    *,
    lines: list[tuple[int, Decimal]] | None = None,
    is_new: bool = False,
) -> PurchaseState:
    """The state of a stored purchase; its (product id, amount) lines read unless given.
    `is_new`: written just now in this transaction, nothing posted for it yet."""
    if lines is None:
        lines = list(purchase.lines.values_list("product_id", "amount"))
    return PurchaseState(
        ref=purchase.pk,
        natural_key=natural_key(purchase.source, purchase.store_id, purchase.external_id),
        customer_id=purchase.customer_id,
        status=purchase.status,
        purchased_at=purchase.purchased_at,
        purchase_date=purchase.purchase_date,
        purchase_type_id=purchase.purchase_type_id,
        lines=lines,
        discount=purchase.discount,
        spent=purchase.bonus_spent,
        purchase_id=purchase.pk,
        is_new=is_new,
    )


def purchase_bonuses_sync(
    purchase: Purchase, *, channel: str = "", user=None, field_name: str = "bonus_spent"
) -> Outcome:
    """Posts what one stored purchase's state calls for (an API order placed, completed,
    cancelled or returned). Raises InsufficientBonus when its spend is not covered; call inside
    the transaction that wrote the purchase, so a refusal rolls the purchase back too."""
    with transaction.atomic():
        return _sync(purchase, channel, user, field_name)


def _sync(purchase: Purchase, channel: str, user, field_name: str) -> Outcome:
    state = purchase_state(purchase)
    batch = PurchaseBonuses(
        # Only this purchase's products' exclusions: not the whole catalogue's per order.
        policy=BonusPolicy.load(products={product_id for product_id, _amount in state.lines}),
        channel=channel,
        user_id=getattr(user, "pk", None),
        field_name=field_name,
    )
    batch.apply([state])
    if state.ref in batch.rejected:
        raise batch.rejected[state.ref]
    batch.write()
    return batch.outcomes.get(state.ref, Outcome())


@register_purchase_hook
def post_batch_bonuses(records: list[PurchaseRecord], *, channel: str) -> dict[object, tuple]:
    """The POS import's hook: posts a written batch's bonuses, or refuses the purchases whose
    spend the balance does not cover (then writes nothing)."""
    batch = PurchaseBonuses(channel=channel, field_name="bonus.spent")
    batch.apply(records)
    if batch.rejected:
        refused = {}
        for ref, error in batch.rejected.items():
            field_name, messages = next(iter(error.message_dict.items()))
            refused[ref] = (field_name, messages[0])
        return refused
    batch.write()
    return {}
