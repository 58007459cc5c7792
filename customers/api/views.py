"""Customers: lookup by any identifier (and, from the API issue's next steps, registration,
family members and consents)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response

from customers.models import Customer
from customers.selectors import customer_find_id
from pharmacrm.api.permissions import scoped
from pharmacrm.api.schema import ERRORS

from .serializers import CUSTOMER_FIELDS, CustomerLookupSerializer, CustomerSerializer


class CustomerLookupView(generics.GenericAPIView):
    """Find the customer one identifier names."""

    scopes = scoped(GET="customers:read")
    queryset = Customer.objects.none()  # for the schema: the lookup reads through a selector
    serializer_class = CustomerSerializer
    pagination_class = None

    @extend_schema(
        summary="Look a customer up by phone, card, email or external id",
        description=(
            "Exactly one of the parameters. The phone may be in any notation "
            "(`8 912 345-67-89`, `+7 (912) 345 67 89`); identifiers a merged customer had "
            "find the customer it was merged into. The answer is a list: empty when nobody "
            "holds the identifier, else the one customer."
        ),
        parameters=[
            OpenApiParameter("phone", str, description="any common notation"),
            OpenApiParameter("card", str, description="13 digits"),
            OpenApiParameter("email", str),
            OpenApiParameter("external_id", str, description="SYSTEM:ID, e.g. app:12345"),
        ],
        responses={200: CustomerSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        query = CustomerLookupSerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        ((kind, value),) = query.validated_data.items()
        found = customer_find_id(kind=kind, value=value)
        # .values(): the lookup is the hottest read of the API (PERFORMANCE.md: a plain
        # ModelSerializer costs ~1.85x); the serializer documents the same fields.
        row = Customer.objects.filter(pk=found).values(*CUSTOMER_FIELDS).first() if found else None
        if row is None:
            return Response([])
        return Response([CustomerSerializer().to_representation(_Row(row))])


class _Row:
    """A .values() row seen as attributes, for the serializer's field conversions."""

    def __init__(self, row: dict) -> None:
        self.__dict__.update(row)
