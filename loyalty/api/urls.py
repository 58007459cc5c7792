from django.urls import include, path

from . import views

urlpatterns: list = [
    path("", include("loyalty.api.orders_urls")),
    path(
        "customers/<str:customer_id>/bonuses/",
        views.CustomerBonusesView.as_view(),
        name="api-customer-bonuses",
    ),
    path(
        "customers/<str:customer_id>/bonuses/ledger/",
        views.CustomerBonusLedgerView.as_view(),
        name="api-customer-bonus-ledger",
    ),
    path(
        "customers/<str:customer_id>/loyalty/",
        views.CustomerLoyaltyView.as_view(),
        name="api-customer-loyalty",
    ),
    path("checkout/quote/", views.CheckoutQuoteView.as_view(), name="api-checkout-quote"),
]
