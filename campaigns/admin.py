from django.contrib import admin

from customers.admin import ReferenceListAdmin

from .models import MarketingEventType


@admin.register(MarketingEventType)
class MarketingEventTypeAdmin(ReferenceListAdmin):
    pass
