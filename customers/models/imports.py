"""Import runs: one row per imported file, with every rejected record."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportRun(models.Model):
    # The counters an import keeps up to date, in report order.
    COUNT_FIELDS = (
        "records",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "warnings",
        "customers_created",
        "customers_matched",
        "customers_merged",
        "suspicions",
    )

    class Kind(models.TextChoices):
        POS_XML = "pos_xml", _("POS purchases (XML)")
        CUSTOMERS = "customers", _("Customer base (CSV/XLSX)")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Refused")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    file_name = models.CharField(_("file"), max_length=255)
    checksum = models.CharField(_("SHA-256"), max_length=64, blank=True, db_index=True)
    source = models.CharField(_("source"), max_length=20, blank=True)
    store_code = models.CharField(_("store"), max_length=50, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.RUNNING
    )
    error = models.TextField(_("why refused"), blank=True)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    records = models.PositiveIntegerField(_("records read"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    warnings = models.PositiveIntegerField(_("warnings"), default=0)
    customers_created = models.PositiveIntegerField(_("customers created"), default=0)
    customers_matched = models.PositiveIntegerField(_("customers matched"), default=0)
    customers_merged = models.PositiveIntegerField(_("customers merged"), default=0)
    suspicions = models.PositiveIntegerField(_("duplicate suspicions"), default=0)

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"


class ImportIssue(models.Model):
    """A rejected record (error) or something worth knowing (warning) in one import run."""

    class Level(models.TextChoices):
        ERROR = "error", _("Rejected")
        WARNING = "warning", _("Warning")

    run = models.ForeignKey(
        ImportRun, on_delete=models.CASCADE, related_name="issues", verbose_name=_("import run")
    )
    level = models.CharField(_("level"), max_length=10, choices=Level.choices)
    record_id = models.CharField(_("record"), max_length=100, blank=True)
    position = models.PositiveIntegerField(_("position in the file"), null=True, blank=True)
    field = models.CharField(_("field"), max_length=100, blank=True)
    message = models.TextField(_("message"))

    class Meta:
        verbose_name = _("import issue")
        verbose_name_plural = _("import issues")
        ordering = ["run", "position", "id"]

    def __str__(self) -> str:
        return f"{self.record_id or self.position}: {self.message}"
