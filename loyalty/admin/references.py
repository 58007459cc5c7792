"""Loyalty's reference lists (shown in the admin's common "Reference lists" section)."""

from django.contrib import admin

from customers.admin import ReferenceListAdmin

from ..models import BonusDiscountType


@admin.register(BonusDiscountType)
class BonusDiscountTypeAdmin(ReferenceListAdmin):
    list_display = ("code", "name", "kind", "is_active")
    list_filter = ("kind", "is_active")
