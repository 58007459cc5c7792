from django.utils.translation import gettext_lazy as _

from customers.models import ReferenceList


class MarketingEventType(ReferenceList):
    """Kinds of marketing activity (promotion, seasonal campaign, health day, ...)."""

    class Meta(ReferenceList.Meta):
        verbose_name = _("marketing event type")
        verbose_name_plural = _("marketing event types")
