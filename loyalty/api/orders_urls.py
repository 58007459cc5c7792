from django.urls import path

from . import orders

urlpatterns: list = [
    path("orders/", orders.OrderCreateView.as_view(), name="api-order-create"),
    path("orders/<int:order_id>/", orders.OrderDetailView.as_view(), name="api-order"),
    path(
        "orders/<int:order_id>/complete/",
        orders.OrderCompleteView.as_view(),
        name="api-order-complete",
    ),
    path(
        "orders/<int:order_id>/cancel/", orders.OrderCancelView.as_view(), name="api-order-cancel"
    ),
    path(
        "orders/<int:order_id>/return/", orders.OrderReturnView.as_view(), name="api-order-return"
    ),
    path(
        "customers/<int:customer_id>/orders/",
        orders.CustomerOrdersView.as_view(),
        name="api-customer-orders",
    ),
]
