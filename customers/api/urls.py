from django.urls import path

from . import consents, family, reservations, views

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
    path(
        "customers/<int:pk>/reservations/",
        reservations.CustomerReservationsView.as_view(),
        name="api-customer-reservations",
    ),
    path("reservations/", reservations.ReservationCreateView.as_view(), name="api-reservations"),
    path(
        "reservations/<int:pk>/cancel/",
        reservations.ReservationCancelView.as_view(),
        name="api-reservation-cancel",
    ),
]
