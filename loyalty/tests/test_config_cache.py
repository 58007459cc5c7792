"""The loyalty configuration kept in each process (config_cache): read once, and a change saved
anywhere is seen by the next quote of every process."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.tests.factories import CustomerFactory, ProductFactory, StoreFactory
from loyalty.bonus_rules import BonusPolicy
from loyalty.checkout import checkout_quote
from loyalty.config_cache import NAME, loyalty_config, loyalty_config_changed
from loyalty.models import (
    AccrualRate,
    BonusProductRule,
    BonusRules,
    CumulativeDiscountTier,
    StatusSettings,
)
from loyalty.tests.factories import buy
from pharmacrm import shared_cache

pytestmark = pytest.mark.django_db
D = Decimal
DAY = dt.date(2026, 6, 15)


def other_process_saves() -> None:
    """What another worker's save leaves in the shared cache: a new version token (this
    process's copy is not touched directly)."""
    key = f"{shared_cache.PREFIX}version:{NAME}"
    client = shared_cache.redis_client()
    if client is not None:
        client.set(key, "another-worker")
    else:
        cache.set(key, "another-worker", None)


def queries(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


@pytest.fixture
def customer():
    customer = CustomerFactory()
    buy(customer, StoreFactory(), dt.date(2026, 5, 10), "6000.00")
    return customer


@pytest.fixture
def nurofen():
    return ProductFactory(sku="4600000000011")


def quote(customer, product):
    return checkout_quote(customer.pk, [(product.pk, "1", "1000.00")], on=DAY)


def test_the_configuration_is_read_once_then_kept():
    assert queries(loyalty_config) > 0
    assert queries(loyalty_config) == 0
    assert loyalty_config() is loyalty_config()


def test_a_change_without_the_models_signals_is_not_seen_until_announced():
    loyalty_config()
    BonusRules.objects.filter(pk=1).update(max_redeem_share=D("50"))  # no signal
    assert loyalty_config().rules.max_redeem_share == D("30.00")
    loyalty_config_changed()
    assert loyalty_config().rules.max_redeem_share == D("50.00")


def test_a_save_in_another_process_is_seen_by_the_next_read_here():
    loyalty_config()
    BonusRules.objects.filter(pk=1).update(max_redeem_share=D("50"))  # the other's row
    other_process_saves()
    assert loyalty_config().rules.max_redeem_share == D("50.00")


def test_saving_replaces_the_shared_version_now_and_again_on_commit(
    django_capture_on_commit_callbacks,
):
    before = shared_cache.config_version(NAME)
    rules = BonusRules.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        rules.save()
        during = shared_cache.config_version(NAME)
    after = shared_cache.config_version(NAME)
    # Now: this transaction's next reads see the change; on commit: a worker that reloaded in
    # between (before the commit) reloads again.
    assert len({before, during, after}) == 3


def test_a_flushed_shared_cache_makes_every_process_reload():
    loyalty_config()
    BonusRules.objects.filter(pk=1).update(max_redeem_share=D("50"))
    cache.clear()  # Redis restarted or flushed: no version token
    assert loyalty_config().rules.max_redeem_share == D("50.00")


def test_a_new_cumulative_tier_applies_to_the_next_quote(customer, nurofen):
    assert quote(customer, nurofen).discount_percent == D("3.00")  # the 5,000 tier
    CumulativeDiscountTier.objects.create(threshold=D("6000"), percent=D("8"))
    assert quote(customer, nurofen).discount_percent == D("8.00")


def test_a_deactivated_or_deleted_tier_stops_applying_at_once(customer, nurofen):
    assert quote(customer, nurofen).discount_percent == D("3.00")
    tier = CumulativeDiscountTier.objects.get(threshold=D("5000"))
    tier.is_active = False
    tier.save()
    assert quote(customer, nurofen).discount_percent == D("0")
    tier.is_active = True
    tier.save()
    assert quote(customer, nurofen).discount_percent == D("3.00")
    tier.delete()
    assert quote(customer, nurofen).discount_percent == D("0")


def test_changed_bonus_rules_apply_to_the_next_quote(customer, nurofen):
    assert quote(customer, nurofen).max_spend_by_share == D("291.00")  # 30 % of 970.00
    rules = BonusRules.objects.get()
    rules.max_redeem_share = D("50")
    rules.accrual_regular = D("9")
    rules.save()
    changed = quote(customer, nurofen)
    assert changed.max_spend_by_share == D("485.00")
    assert (changed.status, changed.accrual_percent) == ("regular", D("9"))


def test_product_rules_and_accrual_rates_apply_to_the_next_quote(customer, nurofen):
    assert quote(customer, nurofen).lines[0].bonus_eligible is True
    rule = BonusProductRule.objects.create(product=nurofen, excluded=True)
    assert quote(customer, nurofen).lines[0].bonus_eligible is False
    rule.delete()
    assert quote(customer, nurofen).lines[0].bonus_eligible is True

    from customers.models import PurchaseType

    retail = PurchaseType.objects.get(code="retail")
    assert BonusPolicy.load().percent("regular", retail.pk) == D("4.00")
    AccrualRate.objects.create(purchase_type=retail, status="", percent=D("1.5"))
    assert BonusPolicy.load().percent("regular", retail.pk) == D("1.5")


def test_changed_status_thresholds_apply_to_the_next_quote(customer, nurofen):
    assert quote(customer, nurofen).status == "regular"
    settings = StatusSettings.objects.get()
    settings.regular_enabled = False
    settings.save()
    assert loyalty_config().thresholds.regular_enabled is False
    # Without "regular" the customer who bought once a month ago is one-time... or still a
    # newcomer: whatever the replayed history says, not the "regular" of the old thresholds.
    assert quote(customer, nurofen).status != "regular"
