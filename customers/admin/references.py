"""Reference lists marketers edit (purchase types here; bonus and event types in their apps)."""

from django.contrib import admin

from customers.models import PurchaseType


class ReferenceListAdmin(admin.ModelAdmin):
    """For models built on customers.models.ReferenceList."""

    list_display = ("code", "name", "is_active")
    list_filter = ("is_active",)
    search_fields = ("code", "name")
    prepopulated_fields = {"code": ("name",)}

    def get_readonly_fields(self, request, obj=None):
        # The POS files and the API refer to rows by code: it is fixed once the row exists.
        return ("code",) if obj is not None else ()

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else self.prepopulated_fields


@admin.register(PurchaseType)
class PurchaseTypeAdmin(ReferenceListAdmin):
    pass
