"""The status settings (one row, saved through the service) and the recomputations (read-only)."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from customers.admin.purchases import ReadOnlyAdminMixin

from .. import services, status_rules
from ..models import StatusRun, StatusSettings
from ..selectors import figures_as_of

THRESHOLD_FIELDS = (
    "lost_months",
    "vip_months",
    "growing_months",
    "newcomer_months",
    "one_time_min_months",
    "one_time_max_months",
    "regular_enabled",
)


class StatusSettingsForm(forms.ModelForm):
    class Meta:
        model = StatusSettings
        fields = THRESHOLD_FIELDS

    def clean(self):
        cleaned_data = super().clean()
        if self.errors:
            return cleaned_data  # a threshold out of range is reported on its own
        # The consistency rules the service enforces, reported on the fields here, before
        # anything is saved.
        thresholds = status_rules.Thresholds(
            **{name: cleaned_data[name] for name in THRESHOLD_FIELDS}
        )
        for name, reason in thresholds.problems():
            self.add_error(name, services.threshold_problem_message(reason))
        return cleaned_data


@admin.register(StatusSettings)
class StatusSettingsAdmin(admin.ModelAdmin):
    """One row: the list opens it; saving goes through services.status_settings_update."""

    form = StatusSettingsForm
    readonly_fields = ("updated_at", "figures_as_of")
    fieldsets = (
        (_("Lost"), {"fields": ("lost_months",)}),
        (_("VIP and growing"), {"fields": ("vip_months", "growing_months")}),
        (_("Newcomer"), {"fields": ("newcomer_months",)}),
        (_("One-time"), {"fields": ("one_time_min_months", "one_time_max_months")}),
        (_("Regular"), {"fields": ("regular_enabled",)}),
        (_("Recomputation"), {"fields": ("updated_at", "figures_as_of")}),
    )

    @admin.display(description=_("statuses computed as of"))
    def figures_as_of(self, obj: StatusSettings):
        return figures_as_of() or self.get_empty_value_display()

    def has_add_permission(self, request):
        # Never added by hand: opening the list creates the row with the defaults. (Asking the
        # database instead would cost a query on every admin page, for the sidebar's "add".)
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)
        settings = services.status_settings_get()
        return HttpResponseRedirect(
            reverse("admin:loyalty_statussettings_change", args=[settings.pk])
        )

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if change and not changes:
            return  # nothing changed: nothing to recompute
        services.status_settings_update(settings=obj, **changes)
        messages.info(
            request,
            _(
                "A full recomputation of every customer's statuses with the new thresholds was "
                "queued; the figures change when it finishes (see Status recomputations)."
            ),
        )

    def response_post_save_change(self, request, obj):
        # The list is this very page: stay on it.
        return HttpResponseRedirect(request.path)


@admin.register(StatusRun)
class StatusRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """When the figures were last computed, and how each recomputation went."""

    list_display = (
        "kind",
        "as_of",
        "started_at",
        "finished_at",
        "outcome",
        "customers",
        "figures_written",
        "changes_written",
        "changes_superseded",
        "short_error",
    )
    list_filter = ("kind",)
    date_hierarchy = "started_at"
    fields = (
        ("kind", "as_of"),
        ("started_at", "finished_at"),
        "customers",
        ("figures_written", "changes_written", "changes_superseded"),
        "thresholds",
        "error",
    )
    list_per_page = 50

    @admin.display(description=_("outcome"))
    def outcome(self, run: StatusRun) -> str:
        if run.error:
            return _("Failed")
        if run.finished_at is None:
            return _("Running")
        return _("Finished")

    @admin.display(description=_("error"))
    def short_error(self, run: StatusRun) -> str:
        first_line = run.error.splitlines()[0] if run.error else ""
        return first_line[:120]
