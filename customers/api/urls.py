from django.urls import path

from . import views

urlpatterns = [
    path("customers/", views.CustomerLookupView.as_view(), name="api-customer-lookup"),
]
