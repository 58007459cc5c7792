from django.urls import include, path

urlpatterns: list = [
    path("", include("loyalty.api.orders_urls")),
]
