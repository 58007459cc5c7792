"""Stores, products, purchases and reservations. Purchases arrive from the POS and the API."""

from decimal import Decimal

from django.contrib import admin
from django.db.models import Q
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from customers.models import Product, Purchase, PurchaseLine, Reservation, Store


def _quantity(qty: Decimal) -> str:
    # 1.000 -> "1", 0.500 -> "0,5": a pack count the way people write it.
    value = qty.quantize(Decimal(1)) if qty == qty.to_integral_value() else qty.normalize()
    return number_format(value)


def purchase_lines_summary(purchase: Purchase) -> str:
    """ "Нурофен ×1, Маска ×2" from lines prefetched with their products."""
    return ", ".join(f"{line.product.name} ×{_quantity(line.qty)}" for line in purchase.lines.all())


class ReadOnlyAdminMixin:
    """Records other systems own: shown, never written through the admin, by anyone."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "city", "address", "time_zone", "is_active")
    list_filter = ("is_active", "city")
    search_fields = ("code", "name", "city", "address")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = (
        "sku",
        "name",
        "inn",
        "category",
        "pack_size",
        "prescription_only",
        "needs_review",
    )
    list_filter = ("prescription_only", "category", "needs_review")
    search_fields = ("=sku", "name", "inn")
    search_help_text = _("Exact SKU, or part of the name or the international name.")
    readonly_fields = ("created_at", "updated_at")
    show_full_result_count = False


class PurchaseLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PurchaseLine
    fields = ("product", "qty", "price", "amount")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product").order_by("id")


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only for everyone: a purchase changed here would bypass the figures and bonuses."""

    list_display = (
        "purchase_date",
        "external_id",
        "store",
        "customer",
        "purchase_type",
        "status",
        "total",
    )
    list_select_related = ("store", "customer", "purchase_type")
    list_filter = ("status", "purchase_type", "source", "store")
    date_hierarchy = "purchase_date"
    search_fields = ("external_id", "order_ref")
    search_help_text = _("Exact purchase id from the till, or app or website order number.")
    # Walks the purchase_date index backwards; sorting by other columns would sort the table.
    ordering = ("-purchase_date", "-id")
    sortable_by = ("purchase_date",)
    raw_id_fields = ("customer",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "customer",
                    ("source", "store"),
                    ("external_id", "order_ref"),
                    ("purchase_type", "status"),
                )
            },
        ),
        (_("Amounts"), {"fields": ("total", "discount", "bonus_spent")}),
        (_("Dates"), {"fields": (("purchased_at", "purchase_date"), ("created_at", "updated_at"))}),
    )
    inlines = [PurchaseLineInline]
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Ids are codes: exact and case-sensitive, never a LIKE over every purchase.
        return queryset.filter(Q(external_id=term) | Q(order_ref=term)), False


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "customer",
        "product",
        "store",
        "quantity",
        "status",
        "source",
        "pickup_deadline",
    )
    list_select_related = ("customer", "product", "store")
    list_filter = ("status", "source", "store")
    search_fields = ("=external_id",)
    search_help_text = _("Exact reservation id in the source system.")
    autocomplete_fields = ("customer", "product", "store")
    readonly_fields = ("created_at", "updated_at")
    ordering = ("-id",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
