"""Customers' ids in other systems and the consent history, as lists of their own."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from customers.models import Consent, ExternalId

from .purchases import ReadOnlyAdminMixin


@admin.register(ExternalId)
class ExternalIdAdmin(admin.ModelAdmin):
    list_display = ("system", "external_id", "customer", "created_at")
    list_select_related = ("customer",)
    list_filter = ("system",)
    search_fields = ("external_id",)
    search_help_text = _("Exact id in the app, the website or the till.")
    autocomplete_fields = ("customer",)
    readonly_fields = ("created_at",)
    ordering = ("-id",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # The unique index is (system, external_id): naming every system lets it serve the lookup.
        return queryset.filter(system__in=ExternalId.System.values, external_id=term), False


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The history of grants and withdrawals. New rows are added on the customer's page."""

    list_display = (
        "customer",
        "channel",
        "granted",
        "source",
        "occurred_at",
        "recorded_by",
        "recorded_at",
    )
    list_select_related = ("customer", "recorded_by")
    list_filter = ("channel", "granted", "source")
    # Recording order, on the primary key: sorting the history by occurred_at has no index.
    ordering = ("-id",)
    sortable_by = ()
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
