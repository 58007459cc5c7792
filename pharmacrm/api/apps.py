from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    """The REST API's shared parts: API clients and their tokens, scopes, throttling, error
    bodies, pagination, idempotency keys, and the /api/v1/ root the apps' endpoints hang off."""

    name = "pharmacrm.api"
    label = "api"
    verbose_name = _("REST API")
    default_auto_field = "django.db.models.BigAutoField"
