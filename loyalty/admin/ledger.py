"""The bonus ledger in the admin: accounts and movements (read-only: the ledger is append-only
and every change goes through `loyalty.ledger`), the manager's adjustment form, and the bonus
panel of the customer page.

Marketers and managers see accounts and movements; only holders of `loyalty.adjust_bonusaccount`
(managers) post adjustments. A double-submitted adjustment form posts once: the form carries a
random token that becomes the movement's idempotency key.
"""

from __future__ import annotations

import re
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from customers.admin.purchases import ReadOnlyAdminMixin
from customers.admin.search import customer_search
from customers.models import Customer

from ..bonus_rules import parse_amount
from ..ledger import bonus_adjust
from ..models import BonusAccount, BonusConsumption, BonusMovement
from ..selectors import EXPIRING_DAYS, bonus_overview
from ..timeline_events import signed_bonus

ADJUST_PERMISSION = "loyalty.adjust_bonusaccount"
CUSTOMER_PARAM = "customer"
PANEL_MOVEMENTS = 20


def ledger_url(customer_id: int) -> str:
    """The movements list filtered by one customer."""
    return (
        reverse("admin:loyalty_bonusmovement_changelist")
        + "?"
        + urlencode({CUSTOMER_PARAM: customer_id})
    )


def adjust_url(customer_id: int) -> str:
    return reverse("admin:loyalty_bonusaccount_adjust", args=[customer_id])


def _customer_ids(term: str):
    """Customers the search box means (phone in any notation, card, email, names)."""
    return customer_search(Customer.objects.all(), term).values("pk")


# --- accounts --------------------------------------------------------------------------------


class HasDebtFilter(admin.SimpleListFilter):
    title = _("debt")
    parameter_name = "has_debt"

    def lookups(self, request, model_admin):
        return [("yes", _("Has debt")), ("no", _("No debt"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(debt__gt=0)
        if self.value() == "no":
            return queryset.filter(debt=0)
        return queryset


class BonusAdjustmentForm(forms.Form):
    amount = forms.CharField(
        label=_("amount"),
        max_length=24,
        help_text=_(
            "Signed: 150.00 adds bonuses, -150.00 takes them back (what the available bonuses do "
            "not cover becomes debt). At most two decimal places."
        ),
    )
    reason = forms.CharField(
        label=_("reason"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Kept in the ledger and shown on the customer's timeline."),
    )
    # Becomes the movement's idempotency key: the same form sent twice posts once.
    token = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean_amount(self) -> str:
        # The ledger checks it again; checked here too so that every field's error shows at once.
        text = self.cleaned_data["amount"].strip()
        try:
            parse_amount(text[1:] if text.startswith("-") else text, "amount")
        except ValidationError as error:
            raise ValidationError(error.message_dict["amount"]) from None
        return text

    def clean_token(self):
        token = self.cleaned_data["token"]
        if not re.fullmatch(r"[0-9a-f]{32}", token or ""):
            raise ValidationError(
                _("The form is incomplete; open the adjustment form again."), code="token"
            )
        return token

    def add_service_errors(self, error: ValidationError) -> None:
        """The ledger's refusal, on the field it names (anything else above the form)."""
        for field, errors in error.message_dict.items():
            if field == "idempotency_key":
                errors = [
                    gettext(
                        "This form already posted a different adjustment; open the adjustment "
                        "form again to post another one."
                    )
                ]
            self.add_error(field if field in self.fields else None, errors)


@admin.register(BonusAccount)
class BonusAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """One row per customer with a ledger; its figures change only through the ledger."""

    list_display = ("customer", "balance", "pending", "debt", "updated_at")
    list_select_related = ("customer",)
    list_filter = (HasDebtFilter,)
    # Shows the search box; the matching is get_search_results.
    search_fields = ("customer__phone",)
    search_help_text = _("A phone in any notation, a card number, an email or names.")
    ordering = ("-customer_id",)
    sortable_by = ()  # a million rows: only the primary key's order is cheap
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ("customer", ("balance", "pending", "debt"), "updated_at")
    change_form_template = "admin/loyalty/bonusaccount/change_form.html"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(customer__in=_customer_ids(term)), False

    def get_urls(self):
        return [
            path(
                "<int:customer_id>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="loyalty_bonusaccount_adjust",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        if object_id and object_id.isdigit():
            customer_id = int(object_id)
            extra_context["ledger_url"] = ledger_url(customer_id)
            if request.user.has_perm(ADJUST_PERMISSION):
                extra_context["adjust_url"] = adjust_url(customer_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def adjust_view(self, request: HttpRequest, customer_id: int):
        """A manager's adjustment: signed amount and mandatory reason, posted through
        `bonus_adjust` keyed by the form's token."""
        if not request.user.has_perm(ADJUST_PERMISSION):
            raise PermissionDenied
        customer = get_object_or_404(Customer, pk=customer_id)
        if request.method == "POST":
            form = BonusAdjustmentForm(request.POST)
            if form.is_valid():
                try:
                    posted = bonus_adjust(
                        customer.pk,
                        form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                        user=request.user,
                        key=f"admin-adjust:{form.cleaned_data['token']}",
                        channel="admin",
                    )
                except ValidationError as error:
                    form.add_service_errors(error)
                else:
                    self._report_adjustment(request, posted)
                    return HttpResponseRedirect(
                        reverse("admin:customers_customer_change", args=[customer.pk])
                    )
        else:
            form = BonusAdjustmentForm(initial={"token": uuid.uuid4().hex})
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Adjust the bonuses of %(customer)s") % {"customer": customer},
            "opts": self.opts,
            "customer": customer,
            "form": form,
            "overview": bonus_overview(customer=customer, movements=0),
            "ledger_url": ledger_url(customer.pk),
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/loyalty/bonusaccount/adjust.html", context)

    def _report_adjustment(self, request, posted) -> None:
        figures = {
            "amount": signed_bonus(posted.amount),
            "available": signed_bonus(posted.balance).lstrip("+"),
            "debt": signed_bonus(posted.debt).lstrip("+"),
        }
        if posted.replayed:
            messages.warning(
                request,
                gettext(
                    "This adjustment (%(amount)s) was already posted: the form was sent twice. "
                    "Nothing more was posted."
                )
                % figures,
            )
        else:
            messages.success(
                request,
                gettext("Adjustment %(amount)s posted. Available %(available)s, debt %(debt)s.")
                % figures,
            )


# --- movements -------------------------------------------------------------------------------


class CustomerFilter(admin.SimpleListFilter):
    """One customer's ledger (`?customer=<id>`): the customer page links here; the picker above
    the list sets it."""

    title = _("customer")
    parameter_name = CUSTOMER_PARAM

    def lookups(self, request, model_admin):
        value = self.value()
        if not value or not value.isdigit():
            return []
        customer = Customer.objects.filter(pk=int(value)).first()
        return [(value, str(customer) if customer else f"#{value}")]

    def queryset(self, request, queryset):
        # Only called when lookups() offered the value, i.e. for a customer id.
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(customer_id=int(value))
        return queryset


class CustomerPickerForm(forms.Form):
    """The customer autocomplete above the movements list (the customer admin's search)."""

    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(),
        label=_("customer"),
        widget=AutocompleteSelect(BonusMovement._meta.get_field("customer"), admin.site),
    )


class ConsumptionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = BonusConsumption
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        # Part of the movement: whoever sees movements sees what they consumed.
        return request.user.has_perm("loyalty.view_bonusmovement")


class TookFromInline(ConsumptionInline):
    """A debit's lots: what a redemption, expiry or reversal took, lot by lot."""

    fk_name = "debit"
    fields = readonly_fields = ("credit", "amount", "created_at")
    verbose_name = _("lot taken")
    verbose_name_plural = _("lots taken")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("credit").order_by("id")


class TakenByInline(ConsumptionInline):
    """A credit's debits: who spent, expired or reversed this lot."""

    fk_name = "credit"
    fields = readonly_fields = ("debit", "amount", "created_at")
    verbose_name = _("taken by")
    verbose_name_plural = _("taken by")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("debit").order_by("id")


@admin.register(BonusMovement)
class BonusMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger, append-only: shown, never added, changed or deleted here (adjustments go
    through the adjustment form)."""

    list_display = (
        "created_at",
        "customer",
        "kind",
        "signed_amount",
        "purchase_link",
        "channel",
        "created_by",
        "short_reason",
    )
    list_select_related = ("customer", "purchase", "created_by")
    # By date through a filter, not a date hierarchy: the hierarchy's min/max and the sort by
    # posting time would read the whole ledger (tens of millions of rows); the newest first
    # by id walks the primary key.
    list_filter = ("kind", ("created_at", admin.DateFieldListFilter), CustomerFilter)
    search_fields = ("customer__phone",)  # shows the box; matching in get_search_results
    search_help_text = _(
        "The customer's phone in any notation, card number, email or names; or pick the "
        "customer above."
    )
    ordering = ("-id",)
    sortable_by = ()
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    change_list_template = "admin/loyalty/bonusmovement/change_list.html"
    raw_id_fields = ("customer", "purchase")
    fieldsets = (
        (None, {"fields": ("customer", ("kind", "amount"), "purchase", "campaign_ref")}),
        (_("Posted"), {"fields": (("created_at", "created_by", "channel"), "reason")}),
        (
            _("Lot"),
            {
                "fields": (
                    ("available_at", "expires_at", "is_pending"),
                    ("remaining", "uncovered"),
                    ("accrual_percent", "status"),
                )
            },
        ),
        (_("Delivery"), {"fields": ("idempotency_key",)}),
    )
    inlines = [TookFromInline, TakenByInline]

    @admin.display(description=_("amount"), ordering="amount")
    def signed_amount(self, movement: BonusMovement) -> str:
        return signed_bonus(movement.amount)

    @admin.display(description=_("purchase"))
    def purchase_link(self, movement: BonusMovement):
        if movement.purchase is None:
            return self.get_empty_value_display()
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:customers_purchase_change", args=[movement.purchase_id]),
            movement.purchase.external_id,
        )

    @admin.display(description=_("reason"))
    def short_reason(self, movement: BonusMovement) -> str:
        return Truncator(movement.reason).chars(60)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "purchase", "created_by")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(customer__in=_customer_ids(term)), False

    def get_inline_instances(self, request, obj=None):
        # A credit has no "lots taken", a debit is taken by nobody.
        inlines = super().get_inline_instances(request, obj)
        if obj is None:
            return inlines
        unwanted = TakenByInline if obj.amount < 0 else TookFromInline
        return [inline for inline in inlines if not isinstance(inline, unwanted)]

    def changelist_view(self, request, extra_context=None):
        value = request.GET.get(CUSTOMER_PARAM, "")
        picker = CustomerPickerForm(
            initial={"customer": int(value)} if value.isdigit() else None,
        )
        extra_context = {
            **(extra_context or {}),
            "customer_picker": picker,
            "media": self.media + picker.media,
            "customer_param": CUSTOMER_PARAM,
        }
        return super().changelist_view(request, extra_context)


# --- the customer page -----------------------------------------------------------------------


def customer_bonus_panel(request: HttpRequest, customer: Customer) -> dict | None:
    """What the customer page's bonus panel shows: the account (available, pending, debt, what
    expires within 30 days) and the newest 20 movements, with links to the adjustment form
    and the full ledger. None for users who may not see bonus accounts. No query for a customer
    loaded through `with_bonus_overview` (the customer page's is)."""
    user = request.user
    if not user.has_perm("loyalty.view_bonusaccount"):
        return None
    return {
        "overview": bonus_overview(customer=customer, movements=PANEL_MOVEMENTS),
        "expiring_days": EXPIRING_DAYS,
        "movement_count": PANEL_MOVEMENTS,
        "adjust_url": adjust_url(customer.pk) if user.has_perm(ADJUST_PERMISSION) else "",
        "ledger_url": (
            ledger_url(customer.pk) if user.has_perm("loyalty.view_bonusmovement") else ""
        ),
    }
