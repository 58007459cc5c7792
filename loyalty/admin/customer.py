"""Statuses and figures on the customer list and page; the discount and the bonus account on the
page.

The customers app imports none of ours, so its CustomerAdmin knows nothing of loyalty; this
module subclasses it and registers the subclass in its place (loyalty comes after customers in
INSTALLED_APPS, and importing customers.admin registers the original first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import display_for_value
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from customers.admin.customer import CustomerAdmin
from customers.models import Customer

from ..discounts import discount_outlook, money_text, percent_text
from ..models import CustomerFigures, CustomerStatus, PersonalDiscount, StatusChange
from ..selectors import figures_as_of, status_counts, with_bonus_overview
from .bonus_rules import PersonalDiscountInline
from .ledger import customer_bonus_panel

NONE = "none"
SCORES = ("r_score", "f_score", "m_score")


def figures_of(customer: Customer) -> CustomerFigures | None:
    """The customer's figures row, or None when they have no completed purchase."""
    try:
        return customer.figures
    except CustomerFigures.DoesNotExist:
        return None


# --- list filters -------------------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*CustomerStatus.choices, (NONE, _("No status"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value == NONE:
            # No figures row: no completed purchase as of the last recomputation.
            return queryset.filter(Q(figures__isnull=True) | Q(figures__status=""))
        if value not in CustomerStatus.values:
            raise IncorrectLookupParameters(value)
        return queryset.filter(figures__status=value)


class ScoreFilter(admin.SimpleListFilter):
    """One of the R/F/M scores, 5 (best) to 1; "no score" for customers without a purchase in
    the last 24 months."""

    score: str

    def lookups(self, request, model_admin):
        return [*((str(n), str(n)) for n in range(5, 0, -1)), (NONE, _("No score"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        field = f"figures__{self.score}"
        if value == NONE:
            return queryset.filter(**{f"{field}__isnull": True})
        if value not in {"1", "2", "3", "4", "5"}:
            raise IncorrectLookupParameters(value)
        return queryset.filter(**{field: int(value)})


def score_filter(score: str, title) -> type[ScoreFilter]:
    return type(
        f"{score.title().replace('_', '')}Filter",
        (ScoreFilter,),
        {"score": score, "parameter_name": score, "title": title},
    )


SCORE_FILTERS = [
    score_filter("r_score", _("R: recency of the last purchase")),
    score_filter("f_score", _("F: purchases in 12 months")),
    score_filter("m_score", _("M: total in 12 months")),
]


# --- the distribution by status -------------------------------------------------------------


@dataclass(frozen=True)
class StatusCount:
    value: str
    label: str
    count: int
    url: str
    active: bool


def status_distribution(
    *, total: int, changelist_url: str, current: str | None
) -> list[StatusCount]:
    """Customers per status (one GROUP BY on the figures table), then those with none; each row
    links to the list filtered by that status."""
    counts = status_counts()
    rows = []
    for value, label in [*CustomerStatus.choices, (NONE, _("No status"))]:
        if value == NONE:
            count = total - sum(n for status, n in counts.items() if status)
        else:
            count = counts.get(value, 0)
        rows.append(
            StatusCount(
                value=value,
                label=label,
                count=count,
                url=f"{changelist_url}?{urlencode({StatusFilter.parameter_name: value})}",
                active=current == value,
            )
        )
    return rows


# --- the figures on the customer's page ------------------------------------------------------


def _money(value) -> str:
    return f"{number_format(value, 2)} ₽"


def _figure(name: str, description=None, value: Callable | None = None):
    """A read-only field of the customer page showing one figure (empty without figures)."""

    def show(self, customer: Customer):
        figures = figures_of(customer)
        if figures is None:
            return self.get_empty_value_display()
        shown = value(figures) if value else getattr(figures, name)
        return display_for_value(shown, self.get_empty_value_display())

    show.__name__ = f"figures_{name}"
    return admin.display(
        description=description or CustomerFigures._meta.get_field(name).verbose_name
    )(show)


def _days_since_last_purchase(figures: CustomerFigures) -> int | None:
    if figures.last_purchase is None:
        return None
    return ((figures_as_of() or timezone.localdate()) - figures.last_purchase).days


def _money_or_none(name: str) -> Callable:
    def value(figures: CustomerFigures) -> str | None:
        amount = getattr(figures, name)
        return None if amount is None else _money(amount)

    return value


FIGURE_FIELDS = {
    "figures_status": _figure("status", value=lambda f: f.get_status_display() or None),
    "figures_status_since": _figure("status_since"),
    "figures_as_of": _figure(
        "status", _("figures as of"), lambda f: figures_as_of() or timezone.localdate()
    ),
    "figures_purchase_count": _figure("purchase_count"),
    "figures_lifetime_total": _figure("lifetime_total", value=_money_or_none("lifetime_total")),
    "figures_average_check": _figure("average_check", value=_money_or_none("average_check")),
    "figures_frequency": _figure("frequency"),
    "figures_first_purchase": _figure("first_purchase"),
    "figures_last_purchase": _figure("last_purchase"),
    "figures_days_since_last_purchase": _figure(
        "last_purchase", _("days since the last purchase"), _days_since_last_purchase
    ),
    "figures_purchases_12m": _figure("purchases_12m"),
    "figures_total_12m": _figure("total_12m", value=_money_or_none("total_12m")),
    "figures_home_store": _figure("home_store", value=lambda f: f.home_store),
    "figures_r_score": _figure("r_score", _("R (recency)")),
    "figures_f_score": _figure("f_score", _("F (frequency)")),
    "figures_m_score": _figure("m_score", _("M (money)")),
}

FIGURES_FIELDSET = (
    _("Status and figures"),
    {
        "fields": (
            ("figures_status", "figures_status_since", "figures_as_of"),
            ("figures_r_score", "figures_f_score", "figures_m_score"),
            ("figures_purchase_count", "figures_lifetime_total", "figures_average_check"),
            ("figures_frequency", "figures_purchases_12m", "figures_total_12m"),
            ("figures_first_purchase", "figures_last_purchase"),
            ("figures_days_since_last_purchase", "figures_home_store"),
        ),
    },
)


# The read-only fields above as methods of the admin (readonly_fields names them).
FiguresFieldsMixin = type("FiguresFieldsMixin", (), FIGURE_FIELDS)


# What the checkout would apply today, read by current_discount below.
DISCOUNT_FIELDSET = (_("Discount"), {"fields": ("current_discount",)})


class CustomerWithStatusAdmin(FiguresFieldsMixin, CustomerAdmin):
    list_display = (
        *CustomerAdmin.list_display[:3],
        "figures_status",
        "figures_r_score",
        "figures_f_score",
        "figures_m_score",
        "figures_lifetime_total",
        "figures_last_purchase",
        *CustomerAdmin.list_display[3:],
    )
    # The figures row is one-to-one on the customer's id: one LEFT JOIN, no query per row.
    list_select_related = ("figures",)
    list_filter = (StatusFilter, *SCORE_FILTERS, *CustomerAdmin.list_filter)
    readonly_fields = (*CustomerAdmin.readonly_fields, *FIGURE_FIELDS, "current_discount")
    change_list_template = "admin/loyalty/customer/change_list.html"
    change_form_template = "admin/loyalty/customer/change_form.html"

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.pk is None:
            return fieldsets
        name, options = FIGURES_FIELDSET
        if figures_of(obj) is None:
            options = {
                **options,
                "description": _(
                    "No figures: the customer had no completed purchase when they were last "
                    "computed."
                ),
            }
        return [*fieldsets, (name, options), DISCOUNT_FIELDSET]

    def get_inlines(self, request, obj):
        inlines = super().get_inlines(request, obj)
        return inlines if obj is None else [*inlines, PersonalDiscountInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not PersonalDiscount:
            super().save_formset(request, form, formset, change)
            return
        for discount in formset.save(commit=False):
            if discount._state.adding:
                discount.created_by = request.user
            discount.save()
        for discount in formset.deleted_objects:
            discount.delete()

    @admin.display(description=_("current discount"))
    def current_discount(self, customer: Customer) -> str:
        """What the checkout would apply today (the purchases table, not the figures above, which
        are refreshed later), and how far the next cumulative tier is."""
        outlook = discount_outlook(customer.pk)
        parts = [outlook.applied.label if outlook.applied else str(_("No discount"))]
        parts.append(
            str(_("lifetime purchases %(total)s")) % {"total": money_text(outlook.lifetime_total)}
        )
        if outlook.next_tier:
            parts.append(
                str(_("%(left)s more for %(percent)s %%"))
                % {
                    "left": money_text(outlook.next_tier.amount_left),
                    "percent": percent_text(outlook.next_tier.percent),
                }
            )
        return "; ".join(parts)

    def get_object(self, request, object_id, from_field=None):
        # ModelAdmin.get_object with the figures and the bonus account joined, the status history
        # and the newest bonus movements prefetched: the read-only fields, the history and bonus
        # panels and the timeline read them without more queries.
        queryset = with_bonus_overview(
            self.get_queryset(request)
            .select_related("figures__home_store")
            .prefetch_related(
                Prefetch(
                    "status_changes",
                    queryset=StatusChange.objects.select_related("superseded_by").order_by(
                        "-effective_date", "-id"
                    ),
                )
            )
        )
        field = Customer._meta.pk if from_field is None else Customer._meta.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (Customer.DoesNotExist, ValidationError, ValueError):
            return None

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if change and obj is not None and obj.pk:
            changes = list(obj.status_changes.all())
            context["status_history"] = [c for c in changes if c.superseded_at is None]
            context["superseded_status_changes"] = [
                c for c in changes if c.superseded_at is not None
            ]
            context["bonus_panel"] = customer_bonus_panel(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if not context or "cl" not in context:
            return response  # a redirect, or the confirmation page of an action
        cl = context["cl"]
        # Unfiltered, the list has counted every customer already.
        total = (
            cl.result_count
            if not cl.has_active_filters and not cl.query
            else Customer.objects.count()
        )
        context["status_distribution"] = status_distribution(
            total=total,
            changelist_url=reverse("admin:customers_customer_changelist"),
            current=request.GET.get(StatusFilter.parameter_name),
        )
        context["figures_as_of"] = figures_as_of()
        return response


def _register() -> None:
    if admin.site.is_registered(Customer):
        admin.site.unregister(Customer)
    admin.site.register(Customer, CustomerWithStatusAdmin)


_register()
