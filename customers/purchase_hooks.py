"""What other apps do when purchases are written in bulk (the POS import's batches).

The loyalty app posts the purchases' bonuses here; a hook may refuse purchases (bonuses spent
over the balance), and the import then rolls the batch back to before its writes and writes it
again without them, reporting each refusal with its reason. Hooks run inside the batch's
transaction, after the purchase rows are written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(slots=True)
class PurchaseRecord:
    """A purchase as written (or about to be)."""

    ref: object  # the caller's handle for the purchase (the importer's purchase id)
    natural_key: str  # "source:store:external id", see natural_key()
    customer_id: int | None
    status: str
    purchased_at: dt.datetime
    purchase_date: dt.date
    purchase_type_id: int | None
    lines: list[tuple[int, Decimal]]  # (product id, line amount)
    discount: Decimal
    spent: Decimal
    purchase_id: int | None = None
    is_new: bool = False  # written just now for the first time: nothing hangs off it yet


def natural_key(source: str, store_id: int | None, external_id: str) -> str:
    return f"{source}:{store_id or '-'}:{external_id}"


# hook(records, channel=...) -> {ref: (field, reason)} of the purchases it refuses; it writes
# nothing when it refuses any.
PurchaseHook = Callable[..., dict[object, tuple[str, str]]]
_HOOKS: list[PurchaseHook] = []


def register_purchase_hook(hook: PurchaseHook) -> PurchaseHook:
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def run_purchase_hooks(records: list[PurchaseRecord], *, channel: str) -> dict[object, tuple]:
    """Runs the hooks in turn; stops at the first that refuses purchases."""
    for hook in _HOOKS:
        refused = hook(records, channel=channel)
        if refused:
            return refused
    return {}
