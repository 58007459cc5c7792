"""The project's URLs plus /bench/lookup/: the customer lookup by phone as a bare view, the
baseline of bench/bench_api.py. Mounted only by bench/api_settings.py (the benchmark's gunicorn).

The bare view does what `GET /api/v1/customers/?phone=` does at its core, without DRF: the same
token check (`TokenAuthentication().authenticate`) and scope, the phone normalised the same way,
one `.values()` query on the phone's unique index, a `JsonResponse`. Same middleware, same
gunicorn, same database: what the DRF endpoint costs beyond it is DRF, its serializers and the
endpoint's own queries.

/bench/ping/ is a DRF view with no authentication and no database (PERFORMANCE.md's "DRF ping"):
the floor of gunicorn + Django + DRF on the machine, to compare machines by.
"""

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.urls import path
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.api.serializers import CUSTOMER_FIELDS
from customers.models import Customer
from customers.normalize import normalize_phone
from pharmacrm.api.auth import TokenAuthentication
from pharmacrm.api.models import Scope
from pharmacrm.urls import handler404, handler500  # noqa: F401 - the root URLconf's handlers
from pharmacrm.urls import urlpatterns as project_urlpatterns


def bare_lookup(request):
    """GET /bench/lookup/?phone=...: a list holding the customer with this phone, or empty."""
    try:
        auth = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as error:
        return JsonResponse({"code": "invalid_token", "message": str(error.detail)}, status=401)
    if auth is None:
        return JsonResponse({"code": "not_authenticated"}, status=401)
    if not auth[1].has_scope(Scope.CUSTOMERS_READ):
        return JsonResponse({"code": "missing_scope"}, status=403)
    try:
        phone = normalize_phone(request.GET.get("phone", ""))
    except ValidationError as error:
        return JsonResponse({"code": "invalid", "message": error.messages[0]}, status=400)
    rows = list(Customer.objects.filter(phone=phone).values(*CUSTOMER_FIELDS)[:1]) if phone else []
    return JsonResponse(rows, safe=False)


class Ping(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("bench/lookup/", bare_lookup),
    path("bench/ping/", Ping.as_view()),
    *project_urlpatterns,
]
