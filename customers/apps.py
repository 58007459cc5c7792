from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("Customer base")

    def ready(self) -> None:
        from . import timeline_events  # noqa: F401  (registers the base timeline providers)
