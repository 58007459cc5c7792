"""The ledger arithmetic of one customer's account, in memory.

A `Book` holds an account's cached figures, its open lots (credits with something left) and its
open debts (debits not fully covered), and turns operations into the rows to write: new
movements, consumptions (which credit each debit took from), and the new `remaining` /
`uncovered` of the lots and debts it touched. No database here: `loyalty.ledger` loads books
under the account lock and writes what they produced; the POS import runs many operations on
many books and writes them all at once.

Rules (issue 5):
- a redemption takes available lots soonest-expiring first and never overdraws;
- a reversal (of an accrual, or a negative adjustment) takes the lots of its own purchase first,
  then available lots soonest-expiring first; what nothing covers becomes debt;
- a credit that becomes available pays the debts off first, oldest first;
- a pending credit (not yet activated) sits in `pending` until activation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import MovementKind

ZERO = Decimal("0.00")
FAR = 1 << 62  # sorts new lots after stored ones with the same expiry


class InsufficientBonus(ValidationError):
    """A redemption the available balance cannot cover."""

    def __init__(self, field_name: str, amount: Decimal, available: Decimal) -> None:
        self.amount = amount
        self.available = available
        message = _("Not enough bonuses: %(amount)s requested, %(available)s available.") % {
            "amount": amount,
            "available": available,
        }
        # The code on the inner error: Django drops a code given with a dict of messages.
        super().__init__({field_name: ValidationError(message, code="insufficient_bonus")})


@dataclass(slots=True, eq=False)
class NewMovement:
    customer_id: int
    kind: str
    amount: Decimal
    key: str
    created_at: dt.datetime
    purchase_id: int | None = None
    purchase_ref: object = None  # the caller's handle while the purchase has no id yet
    available_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    is_pending: bool = False
    remaining: Decimal | None = None
    uncovered: Decimal | None = None
    accrual_percent: Decimal | None = None
    status: str = ""
    channel: str = ""
    reason: str = ""
    created_by_id: int | None = None
    campaign_ref: str = ""
    id: int | None = None


@dataclass(slots=True, eq=False)
class Lot:
    """A credit with something left."""

    id: int | None
    remaining: Decimal
    expires_at: dt.datetime
    pending: bool
    purchase: object  # purchase id, or the NewMovement's purchase_ref
    order: int
    movement: NewMovement | None = None
    changed: bool = False
    available_at: dt.datetime | None = None


@dataclass(slots=True, eq=False)
class Debt:
    """A debit with something uncovered."""

    id: int | None
    uncovered: Decimal
    order: int
    movement: NewMovement | None = None
    changed: bool = False


Ref = int | NewMovement  # a stored movement's id, or a movement about to be written


@dataclass(slots=True, eq=False)
class Book:
    customer_id: int
    balance: Decimal
    pending: Decimal
    debt: Decimal
    lots: list[Lot] | None = None  # None: not loaded yet
    debts: list[Debt] | None = None
    loader: Callable[[Book], None] | None = None
    new: list[NewMovement] = field(default_factory=list)
    consumptions: list[tuple[Ref, Ref, Decimal]] = field(default_factory=list)
    dirty: bool = False  # figures or lots changed without a new movement (activation, merge)
    _seq: int = 0
    _fresh_lots: list[Lot] = field(default_factory=list)  # credited before the lots were loaded

    # -- loading -----------------------------------------------------------------------------

    def _ensure_lots(self) -> list[Lot]:
        if self.lots is None or self.debts is None:
            if self.loader is None:
                raise RuntimeError("book without lots and no loader")
            self.loader(self)
            self.lots.extend(self._fresh_lots)
            self._fresh_lots.clear()
        return self.lots

    @property
    def changed(self) -> bool:
        return bool(self.new)

    # -- operations ----------------------------------------------------------------------------

    def credit(
        self,
        kind: str,
        amount: Decimal,
        key: str,
        now: dt.datetime,
        available_at: dt.datetime,
        expires_at: dt.datetime,
        **details,
    ) -> NewMovement:
        """A credit (accrual, refund, grant, positive adjustment): pays debts off first if it is
        available now, else waits in `pending`."""
        movement = NewMovement(
            customer_id=self.customer_id,
            kind=kind,
            amount=amount,
            key=key,
            created_at=now,
            available_at=available_at,
            expires_at=expires_at,
            remaining=amount,
            **details,
        )
        self.new.append(movement)
        lot = Lot(
            id=None,
            remaining=amount,
            expires_at=expires_at,
            pending=available_at > now,
            purchase=movement.purchase_id or movement.purchase_ref,
            order=FAR + self._next(),
            movement=movement,
            available_at=available_at,
        )
        movement.is_pending = lot.pending
        (self.lots if self.lots is not None else self._fresh_lots).append(lot)
        if lot.pending:
            self.pending += amount
        else:
            self._activate(lot)
        return movement

    def activate(self, lot: Lot) -> None:
        """A pending lot becomes available (the activation job)."""
        if not lot.pending:
            return
        lot.pending = False
        lot.changed = True
        self.dirty = True
        if lot.movement is not None:
            lot.movement.is_pending = False
        self.pending -= lot.remaining
        self._activate(lot)

    def _activate(self, lot: Lot) -> None:
        if self.debt > 0:
            self._ensure_lots()
            for debt in sorted(self.debts, key=lambda d: d.order):
                if lot.remaining <= 0:
                    break
                if debt.uncovered <= 0:
                    continue
                take = min(debt.uncovered, lot.remaining)
                self._consume(debt, lot, take)
                self.debt -= take
        self.balance += lot.remaining

    def redeem(
        self,
        amount: Decimal,
        key: str,
        now: dt.datetime,
        field_name: str = "amount",
        unexpired_only: bool = False,
        **details,
    ) -> NewMovement:
        """A redemption: refused (InsufficientBonus) unless the available balance covers it.

        `unexpired_only` (a checkout now): lots past their validity at `now` that the nightly
        expiry has not taken yet are not spent, nor counted as available."""
        if amount > self.balance:  # refused without reading the lots
            raise InsufficientBonus(field_name, amount, self.balance)
        lots = self._available_lots()
        available = self.balance
        if unexpired_only:
            available -= sum((lot.remaining for lot in lots if lot.expires_at <= now), ZERO)
            lots = [lot for lot in lots if lot.expires_at > now]
        if amount > available:
            raise InsufficientBonus(field_name, amount, available)
        movement, debt = self._debit(MovementKind.REDEMPTION, amount, key, now, details)
        left = self._take(debt, lots)
        if left:  # the cached balance promised more than the lots hold
            raise RuntimeError(f"account {self.customer_id}: lots short of the balance by {left}")
        self.balance -= amount
        return movement

    def reverse(
        self, kind: str, amount: Decimal, key: str, now: dt.datetime, purchase=None, **details
    ) -> NewMovement:
        """A debit that may leave debt: an accrual taken back, a negative adjustment. Takes the
        purchase's own lots first (pending or not), then available lots; the rest is debt."""
        movement, debt = self._debit(kind, amount, key, now, details)
        lots = self._ensure_lots()
        own = [] if purchase is None else [lot for lot in lots if lot.purchase == purchase]
        own.sort(key=lambda lot: (lot.expires_at, lot.order))
        for lot in own:
            if debt.uncovered <= 0:
                break
            take = min(debt.uncovered, lot.remaining)
            if take <= 0:
                continue
            if lot.pending:
                self.pending -= take
            else:
                self.balance -= take
            self._consume(debt, lot, take)
        if debt.uncovered > 0:
            before = debt.uncovered
            left = self._take(debt, self._available_lots())
            self.balance -= before - left
        if debt.uncovered > 0:
            self.debt += debt.uncovered
            self.debts.append(debt)
        return movement

    def settle(self) -> None:
        """Pays debts off from available lots (two accounts merged: one's debt, the other's
        bonuses)."""
        self.dirty = True
        if self.debt <= 0 or self.balance <= 0:
            return
        lots = self._available_lots()
        for debt in sorted(self.debts, key=lambda d: d.order):
            if debt.uncovered <= 0:
                continue
            before = debt.uncovered
            self._take(debt, lots)
            paid = before - debt.uncovered
            self.debt -= paid
            self.balance -= paid
            if self.balance <= 0:
                break

    # -- internals -----------------------------------------------------------------------------

    def _debit(self, kind, amount, key, now, details) -> tuple[NewMovement, Debt]:
        """A new debit of `amount`, all of it uncovered until lots are taken for it."""
        movement = NewMovement(
            customer_id=self.customer_id,
            kind=kind,
            amount=-amount,
            key=key,
            created_at=now,
            uncovered=amount,
            **details,
        )
        self.new.append(movement)
        return movement, Debt(
            id=None, uncovered=amount, order=FAR + self._next(), movement=movement
        )

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _available_lots(self) -> list[Lot]:
        lots = [lot for lot in self._ensure_lots() if not lot.pending and lot.remaining > 0]
        lots.sort(key=lambda lot: (lot.expires_at, lot.order))
        return lots

    def _take(self, debt: Debt, lots: list[Lot]) -> Decimal:
        """Covers `debt` from `lots` in order; returns what is left uncovered."""
        for lot in lots:
            if debt.uncovered <= 0:
                break
            take = min(debt.uncovered, lot.remaining)
            if take > 0:
                self._consume(debt, lot, take)
        return debt.uncovered

    def _consume(self, debt: Debt, lot: Lot, amount: Decimal) -> None:
        debt.uncovered -= amount
        lot.remaining -= amount
        if debt.movement is not None:
            debt.movement.uncovered = debt.uncovered
        else:
            debt.changed = True
        if lot.movement is not None:
            lot.movement.remaining = lot.remaining
        else:
            lot.changed = True
        self.consumptions.append(
            (
                debt.movement if debt.movement is not None else debt.id,
                lot.movement if lot.movement is not None else lot.id,
                amount,
            )
        )
