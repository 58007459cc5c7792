"""Bonus rules and discounts in the admin: the rules (one row), accrual rates by purchase type,
product exceptions, cumulative discount tiers and personal discounts.

Marketers edit all of them; managers see them and add or change personal discounts (the
permissions are granted by migration 0006). Nothing here is cached: the checkout quote and the
ledger load the rules on every call, so a saved change applies to the next purchase.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ..models import (
    AccrualRate,
    BonusDiscountType,
    BonusProductRule,
    BonusRules,
    CumulativeDiscountTier,
    PersonalDiscount,
)

STATUS_FIELDS = (
    "accrual_newcomer",
    "accrual_one_time",
    "accrual_growing",
    "accrual_regular",
    "accrual_lost",
    "accrual_vip",
)


class BonusRulesForm(forms.ModelForm):
    class Meta:
        model = BonusRules
        fields = (
            *STATUS_FIELDS,
            "max_redeem_share",
            "exclude_prescription_only",
            "activation_days",
            "expiry_days",
            "welcome_amount",
            "birthday_amount",
        )

    def clean(self):
        cleaned_data = super().clean()
        activation, expiry = cleaned_data.get("activation_days"), cleaned_data.get("expiry_days")
        # The table's CHECK says the same; here it is reported on the field, in words.
        if activation is not None and expiry is not None and expiry <= activation:
            self.add_error(
                "expiry_days",
                _("Bonuses must stay valid longer than they wait to become available."),
            )
        return cleaned_data


@admin.register(BonusRules)
class BonusRulesAdmin(admin.ModelAdmin):
    """One row: the list opens it; saving records who changed the rules."""

    form = BonusRulesForm
    readonly_fields = (
        "bonus_value",
        "accrual_overrides",
        "product_exceptions",
        "updated_at",
        "updated_by",
    )
    fieldsets = (
        (
            _("Accrual by customer status"),
            {
                "fields": (
                    ("accrual_newcomer", "accrual_one_time", "accrual_growing"),
                    ("accrual_regular", "accrual_lost", "accrual_vip"),
                    "accrual_overrides",
                ),
                "description": _(
                    "Percent of the purchase (eligible lines, after discount, minus bonuses "
                    "spent) credited at the customer's status on the purchase's date."
                ),
            },
        ),
        (_("Redemption"), {"fields": ("bonus_value", "max_redeem_share")}),
        (_("Exclusions"), {"fields": ("exclude_prescription_only", "product_exceptions")}),
        (_("Activation and expiry"), {"fields": ("activation_days", "expiry_days")}),
        (_("Grants"), {"fields": ("welcome_amount", "birthday_amount")}),
        (_("Changes"), {"fields": (("updated_at", "updated_by"),)}),
    )

    @admin.display(description=_("bonus value"))
    def bonus_value(self, obj: BonusRules) -> str:
        return _("1 bonus = 1 rouble")

    @admin.display(description=_("overrides by purchase type"))
    def accrual_overrides(self, obj: BonusRules):
        rates = AccrualRate.objects.select_related("purchase_type").order_by(
            "purchase_type__name", "status"
        )
        link = format_html(
            '<a href="{}">{}</a>',
            reverse("admin:loyalty_accrualrate_changelist"),
            _("Accrual rates by purchase type"),
        )
        if not rates:
            return format_html("{} ({})", link, _("none: the status percents apply"))
        rows = format_html_join(
            "",
            "<li>{} · {}: {} %</li>",
            (
                (rate.purchase_type, rate.get_status_display() or _("every status"), rate.percent)
                for rate in rates
            ),
        )
        return format_html("<ul>{}</ul>{}", rows, link)

    @admin.display(description=_("product exceptions"))
    def product_exceptions(self, obj: BonusRules):
        excluded = BonusProductRule.objects.filter(excluded=True).count()
        allowed = BonusProductRule.objects.filter(excluded=False).count()
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:loyalty_bonusproductrule_changelist"),
            _("%(excluded)s excluded, %(allowed)s allowed despite the prescription rule")
            % {"excluded": excluded, "allowed": allowed},
        )

    def has_add_permission(self, request):
        # The row is created by migration; there is never a second one.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)
        rules = BonusRules.objects.order_by("pk").first() or BonusRules.objects.create(pk=1)
        return HttpResponseRedirect(reverse("admin:loyalty_bonusrules_change", args=[rules.pk]))

    def save_model(self, request, obj, form, change):
        if change and not form.has_changed():
            return  # keep who changed the rules last
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    def response_post_save_change(self, request, obj):
        # The list is this very page: stay on it.
        return HttpResponseRedirect(request.path)


@admin.register(AccrualRate)
class AccrualRateAdmin(admin.ModelAdmin):
    list_display = ("purchase_type", "status", "percent")
    list_editable = ("percent",)
    list_filter = ("purchase_type", "status")
    list_select_related = ("purchase_type",)
    ordering = ("purchase_type__name", "status")
    autocomplete_fields = ("purchase_type",)


@admin.register(BonusProductRule)
class BonusProductRuleAdmin(admin.ModelAdmin):
    list_display = ("product", "prescription_only", "excluded", "note")
    list_filter = ("excluded", "product__prescription_only")
    list_select_related = ("product",)
    search_fields = ("=product__sku", "product__name", "note")
    search_help_text = _("Exact SKU, or part of the product's name or the note.")
    autocomplete_fields = ("product",)
    ordering = ("product__name",)

    @admin.display(
        description=_("prescription only"), boolean=True, ordering="product__prescription_only"
    )
    def prescription_only(self, rule: BonusProductRule) -> bool:
        return rule.product.prescription_only


@admin.register(CumulativeDiscountTier)
class CumulativeDiscountTierAdmin(admin.ModelAdmin):
    list_display = ("threshold", "percent", "is_active")
    list_display_links = ("threshold",)
    list_editable = ("percent", "is_active")
    ordering = ("threshold",)


class ValidityFilter(admin.SimpleListFilter):
    title = _("validity")
    parameter_name = "validity"

    def lookups(self, request, model_admin):
        return [
            ("current", _("Valid today")),
            ("upcoming", _("Starts later")),
            ("ended", _("Ended")),
        ]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "current":
            return queryset.filter(valid_from__lte=today).exclude(valid_until__lt=today)
        if self.value() == "upcoming":
            return queryset.filter(valid_from__gt=today)
        if self.value() == "ended":
            return queryset.filter(valid_until__lt=today)
        return queryset


def discount_types():
    return BonusDiscountType.objects.filter(kind=BonusDiscountType.Kind.DISCOUNT)


class PersonalDiscountInline(admin.TabularInline):
    """A customer's personal discounts on their page; who added each one is recorded."""

    model = PersonalDiscount
    fields = (
        "discount_type",
        "percent",
        "valid_from",
        "valid_until",
        "reason",
        "created_by",
        "created_at",
    )
    readonly_fields = ("created_by", "created_at")
    extra = 0

    def get_queryset(self, request):
        # The customer too: each row's title is the discount's str, which names the customer.
        return (
            super().get_queryset(request).select_related("customer", "discount_type", "created_by")
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name != "discount_type":
            return super().formfield_for_foreignkey(db_field, request, **kwargs)
        kwargs["queryset"] = discount_types()
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        # Read the choices once for the formset: every row (and the empty row) copies this
        # field, and would otherwise run the query again to render its select. (Through iter():
        # list() would ask the iterator's len() first, a COUNT query.)
        field.choices = list(iter(field.choices))
        return field


@admin.register(PersonalDiscount)
class PersonalDiscountAdmin(admin.ModelAdmin):
    list_display = (
        "customer",
        "discount_type",
        "percent",
        "valid_from",
        "valid_until",
        "valid_today",
        "created_by",
        "created_at",
    )
    list_filter = (ValidityFilter, "discount_type")
    list_select_related = ("customer", "discount_type", "created_by")
    search_fields = ("=customer__phone", "=customer__card_number", "customer__last_name")
    search_help_text = _("Exact phone (+7…) or card number, or part of the last name.")
    autocomplete_fields = ("customer",)
    fields = (
        "customer",
        "discount_type",
        "percent",
        ("valid_from", "valid_until"),
        "reason",
        ("created_by", "created_at"),
    )
    readonly_fields = ("created_by", "created_at")
    show_full_result_count = False

    @admin.display(description=_("valid today"), boolean=True)
    def valid_today(self, discount: PersonalDiscount) -> bool:
        today = timezone.localdate()
        return discount.valid_from <= today and (
            discount.valid_until is None or discount.valid_until >= today
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "discount_type":
            kwargs["queryset"] = discount_types()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
