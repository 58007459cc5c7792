"""Identity bookkeeping: old identifiers of merged customers, merges and duplicate suspicions."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .people import Customer


class IdentifierKind(models.TextChoices):
    CARD = "card", _("Loyalty card")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")


class IdentifierAlias(models.Model):
    """An identifier a customer no longer carries on the card but is still known by.

    Written when a merge leaves the merged customer's phone, email or card behind (the survivor
    kept its own), so that later lookups by the old identifier find the survivor.
    """

    kind = models.CharField(_("kind"), max_length=10, choices=IdentifierKind.choices)
    value = models.CharField(_("value"), max_length=254)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="aliases", verbose_name=_("customer")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("old identifier")
        verbose_name_plural = _("old identifiers")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="identifier_alias_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class MergeRecord(models.Model):
    """One merge of customer B (gone) into customer A (the survivor), with what B was."""

    class Reason(models.TextChoices):
        AUTOMATIC = "automatic", _("Automatic: same person through two channels")
        MANUAL = "manual", _("Merged by a CRM user")

    survivor = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="merges", verbose_name=_("survivor")
    )
    merged_customer_id = models.BigIntegerField(_("merged customer id"), unique=True)
    merged_phone = models.CharField(_("merged phone"), max_length=16, blank=True)
    merged_email = models.CharField(_("merged email"), max_length=254, blank=True)
    merged_card_number = models.CharField(_("merged card"), max_length=13, blank=True)
    merged_data = models.JSONField(
        _("merged customer's card"), default=dict, help_text=_("Every field of B before the merge.")
    )
    moved = models.JSONField(
        _("what was moved"), default=dict, help_text=_("Rows moved to the survivor, by kind.")
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("merged by"),
    )
    source = models.CharField(_("triggered by"), max_length=20, blank=True)
    created_at = models.DateTimeField(_("merged at"), auto_now_add=True)

    class Meta:
        verbose_name = _("merge")
        verbose_name_plural = _("merges")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return _("Customer #%(merged)s merged into #%(survivor)s") % {
            "merged": self.merged_customer_id,
            "survivor": self.survivor_id,
        }


class DuplicateSuspicion(models.Model):
    """Two customer records that may be one person, left for a marketer to review.

    Raised when one incoming record's identifiers name two customers whose personal data
    conflicts (a family sharing a phone is normal in pharmacies) or who are marked
    "do not merge".
    """

    class Status(models.TextChoices):
        OPEN = "open", _("To review")
        MERGED = "merged", _("Merged")
        DISMISSED = "dismissed", _("Different people")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="duplicate_suspicions",
        verbose_name=_("customer the record was attached to"),
    )
    other = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("possible duplicate"),
    )
    shared = models.CharField(
        _("shared identifiers"), max_length=100, help_text=_("e.g. phone, card")
    )
    reason = models.CharField(_("why not merged"), max_length=255)
    source = models.CharField(_("seen in"), max_length=20)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.OPEN
    )
    created_at = models.DateTimeField(_("raised"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )

    class Meta:
        verbose_name = _("duplicate suspicion")
        verbose_name_plural = _("duplicate suspicions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "other"],
                condition=models.Q(status="open"),
                name="duplicate_suspicion_one_open_per_pair",
            ),
        ]

    def __str__(self) -> str:
        return _("#%(a)s and #%(b)s share %(shared)s") % {
            "a": self.customer_id,
            "b": self.other_id,
            "shared": self.shared,
        }
