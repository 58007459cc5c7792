from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty: statuses, bonuses, discounts")

    def ready(self) -> None:
        # Extension points of the customers app: merge steps, timeline providers, and the
        # signal that purchases changed (queues the touched customers' recomputation).
        from . import merge_steps, receivers, timeline_events  # noqa: F401
