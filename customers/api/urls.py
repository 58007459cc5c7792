from django.urls import path

from . import views

urlpatterns = [
    path("customers/", views.CustomersView.as_view(), name="api-customer-lookup"),
    path("customers/<int:pk>/", views.CustomerDetailView.as_view(), name="api-customer"),
]
