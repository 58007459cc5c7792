"""The loyalty configuration every web worker keeps in memory: the bonus rules, the accrual rates
by purchase type, the product bonus rules, the active cumulative discount tiers, the status
thresholds and the purchase types (reference data an order names).

A checkout quote or an order used to read them all (six queries) on every request. Each process
now holds one copy, reloaded when the version token in the shared cache changes; saving or
deleting any of these rows (the admin, a service, a test) replaces the token, so the very next
request of every worker sees the change. Writes that bypass the models' signals
(`QuerySet.update()`, raw SQL, a data migration) must call `loyalty_config_changed()`.

Products' prescription-only flags are catalogue data, not configuration: they are read with the
basket's products.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models.signals import post_delete, post_save

from customers.models import PurchaseType
from pharmacrm.shared_cache import config_cached, config_changed

from .models import (
    AccrualRate,
    BonusProductRule,
    BonusRules,
    CumulativeDiscountTier,
    StatusSettings,
)
from .status_rules import Thresholds

NAME = "loyalty"
MODELS = (
    AccrualRate,
    BonusProductRule,
    BonusRules,
    CumulativeDiscountTier,
    PurchaseType,
    StatusSettings,
)


@dataclass(frozen=True)
class LoyaltyConfig:
    rules: BonusRules  # the row, or the defaults when there is none
    type_percent: dict[tuple[int, str], Decimal]  # (purchase type id, status or "") -> percent
    product_rules: dict[int, bool]  # product id -> excluded (False: allowed although Rx)
    tiers: tuple[CumulativeDiscountTier, ...]  # the active ones, by threshold
    thresholds: Thresholds
    purchase_types: dict[str, PurchaseType]  # by code


def loyalty_config() -> LoyaltyConfig:
    """The configuration as it is now (one shared-cache read; the rows only after a change)."""
    return config_cached(NAME, _load)


def loyalty_config_changed() -> None:
    """Every process reloads the configuration on its next use."""
    config_changed(NAME)


def _load() -> LoyaltyConfig:
    settings = StatusSettings.objects.order_by("pk").first()
    return LoyaltyConfig(
        rules=BonusRules.objects.order_by("pk").first() or BonusRules(),
        type_percent={
            (type_id, status): percent
            for type_id, status, percent in AccrualRate.objects.values_list(
                "purchase_type_id", "status", "percent"
            )
        },
        product_rules=dict(BonusProductRule.objects.values_list("product_id", "excluded")),
        tiers=tuple(
            CumulativeDiscountTier.objects.filter(is_active=True).order_by("threshold", "pk")
        ),
        thresholds=settings.thresholds() if settings else Thresholds(),
        purchase_types={row.code: row for row in PurchaseType.objects.all()},
    )


def _row_changed(sender, **kwargs) -> None:
    loyalty_config_changed()


# Per model: a receiver for every sender would also end Django's fast deletes everywhere.
for _model in MODELS:
    post_save.connect(_row_changed, sender=_model, dispatch_uid=f"loyalty.config.{_model.__name__}")
    post_delete.connect(
        _row_changed, sender=_model, dispatch_uid=f"loyalty.config.{_model.__name__}"
    )
