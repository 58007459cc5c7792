from django.urls import path

from . import consents, family, views

urlpatterns = [
    path("customers/", views.CustomersView.as_view(), name="api-customer-lookup"),
    path("customers/<int:pk>/", views.CustomerDetailView.as_view(), name="api-customer"),
    path("customers/<int:pk>/family/", family.FamilyView.as_view(), name="api-customer-family"),
    path(
        "customers/<int:pk>/family/<int:member_id>/",
        family.FamilyMemberView.as_view(),
        name="api-customer-family-member",
    ),
    path(
        "customers/<int:pk>/consents/",
        consents.ConsentsView.as_view(),
        name="api-customer-consents",
    ),
]
