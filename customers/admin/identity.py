"""Merges and old identifiers in the admin: who was merged into whom, and what moved."""

import json

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy

from customers.models import Customer, IdentifierAlias, IdentifierKind, MergeRecord
from customers.normalize import looks_like_phone, normalize_card, normalize_phone

from .purchases import ReadOnlyAdminMixin


def change_url(obj) -> str:
    return reverse(f"admin:customers_{obj._meta.model_name}_change", args=[obj.pk])


def customer_link(customer: Customer | None, pk: int):
    """#id and the customer, linked to the card (the id alone once the customer is gone)."""
    if customer is None:
        return f"#{pk}"
    return format_html('<a href="{}">#{} {}</a>', change_url(customer), pk, customer)


def _value_rows(data: dict, label) -> str:
    def shown(value):
        if value in (None, ""):
            return "—"
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        return value

    rows = format_html_join(
        "\n", "<tr><th>{}</th><td>{}</td></tr>", ((label(k), shown(v)) for k, v in data.items())
    )
    return format_html('<table class="key-value">{}</table>', rows) if data else "—"


def _customer_field_label(name: str) -> str:
    try:
        return str(Customer._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


# The merge steps' names (customers.merge and other apps' steps), for people.
MOVED_LABELS = {
    "purchases": gettext_lazy("purchases"),
    "reservations": gettext_lazy("reservations"),
    "family_members": gettext_lazy("family members"),
    "consents": gettext_lazy("consents"),
    "external_ids": gettext_lazy("external ids"),
    "aliases": gettext_lazy("old identifiers"),
    "earlier_merges": gettext_lazy("earlier merges"),
    "duplicate_suspicions": gettext_lazy("duplicate suspicions"),
}


def _identifier_candidates(term: str) -> set[str]:
    """A searched identifier as typed and in its stored forms (E.164 phone, card, lower email)."""
    found = {term, term.lower()}
    for normalize in (normalize_card, normalize_phone):
        if normalize is normalize_phone and not looks_like_phone(term):
            continue
        try:
            value = normalize(term)
        except ValidationError:
            continue
        if value:
            found.add(value)
    return found


@admin.register(MergeRecord)
class MergeRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "survivor_link",
        "merged_customer_id",
        "merged_phone",
        "merged_email",
        "merged_card_number",
        "reason",
        "merged_by",
    )
    list_select_related = ("survivor", "merged_by")
    list_filter = ("reason",)
    search_fields = ("merged_phone",)  # shows the box; the matching is get_search_results
    search_help_text = gettext_lazy(
        "The merged customer's phone (any notation), email, card number or id."
    )
    fields = (
        "survivor_link",
        "merged_customer_id",
        ("merged_phone", "merged_email", "merged_card_number"),
        ("reason", "source"),
        ("merged_by", "created_at"),
        "merged_card",
        "moved_rows",
    )
    readonly_fields = (
        "survivor_link",
        "merged_customer_id",
        "merged_phone",
        "merged_email",
        "merged_card_number",
        "reason",
        "source",
        "merged_by",
        "created_at",
        "merged_card",
        "moved_rows",
    )
    sortable_by = ("created_at",)
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description=gettext_lazy("survivor"))
    def survivor_link(self, record: MergeRecord):
        return customer_link(record.survivor, record.survivor_id)

    @admin.display(description=gettext_lazy("merged customer's card"))
    def merged_card(self, record: MergeRecord):
        return _value_rows(record.merged_data, _customer_field_label)

    @admin.display(description=gettext_lazy("what was moved"))
    def moved_rows(self, record: MergeRecord):
        return _value_rows(record.moved, lambda key: MOVED_LABELS.get(key, key.replace("_", " ")))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        values = _identifier_candidates(term)
        condition = (
            Q(merged_phone__in=values)
            | Q(merged_card_number__in=values)
            | Q(merged_email__in=values)
        )
        if term.isdigit() and len(term) <= 18:  # fits a bigint
            condition |= Q(merged_customer_id=int(term))
        return queryset.filter(condition), False


@admin.register(IdentifierAlias)
class IdentifierAliasAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Phones, emails and cards customers no longer carry but are still found by."""

    list_display = ("kind", "value", "customer_link", "created_at")
    list_select_related = ("customer",)
    list_filter = ("kind",)
    search_fields = ("value",)  # shows the box; the matching is get_search_results
    search_help_text = gettext_lazy("A phone in any notation, an email or a card number.")
    fields = ("kind", "value", "customer_link", "created_at")
    readonly_fields = fields
    ordering = ("-id",)
    sortable_by = ()
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description=gettext_lazy("customer"))
    def customer_link(self, alias: IdentifierAlias):
        return customer_link(alias.customer, alias.customer_id)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Naming every kind lets the unique (kind, value) index serve the lookup.
        values = _identifier_candidates(term)
        return queryset.filter(kind__in=IdentifierKind.values, value__in=values), False
