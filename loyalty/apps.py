from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty: statuses, bonuses, discounts")

    def ready(self) -> None:
        # Extension points of the customers app: merge steps, timeline providers, the signal
        # that purchases changed (queues the touched customers' recomputation) and the hook
        # that posts bulk-written purchases' bonuses; the configuration cache's invalidation.
        from . import (  # noqa: F401
            config_cache,
            ledger_purchases,
            merge_steps,
            receivers,
            timeline_events,
        )
