"""Customers: lookup by any identifier, registration through identity resolution, the card and
changes to it. Family members, consents and reservations have their own modules."""

import functools

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response

from customers.identity import IdentityRecord, Outcome, customer_resolve
from customers.models import PERSONAL_FIELDS, Customer
from customers.selectors import customer_find_values
from customers.services import customer_update_from_channel
from pharmacrm.api.permissions import scoped
from pharmacrm.api.schema import ERRORS

from .common import CONFLICT, NOT_FOUND, StrictJSONParser, client_source, customer_or_404
from .serializers import (
    CUSTOMER_FIELDS,
    CustomerLookupSerializer,
    CustomerRegistrationSerializer,
    CustomerSerializer,
    CustomerUpdateResultSerializer,
    CustomerUpdateSerializer,
    RegistrationSerializer,
)


class CustomersView(generics.GenericAPIView):
    """Find the customer one identifier names; register or update one from a channel."""

    scopes = scoped(GET="customers:read", POST="customers:write")
    serializer_class = CustomerSerializer
    queryset = Customer.objects.none()  # the schema's path ids
    parser_classes = [StrictJSONParser]
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
        kind, value = _lookup_query(request.query_params)
        # .values(): the lookup is the hottest read of the API (PERFORMANCE.md: a plain
        # ModelSerializer costs ~1.85x); the serializer documents the same fields and converts
        # them (_card).
        row = customer_find_values(kind=kind, value=value, fields=CUSTOMER_FIELDS)
        return Response([] if row is None else [_card(row)])

    @extend_schema(
        summary="Register a customer, or update one, through identity resolution",
        description=(
            "What the app, the site, the POS or the contact centre knows about a person: "
            "identifiers in any notation (at least one of phone, card, email, external_ids) "
            "and personal data. The CRM finds the customer they name, or creates one (201); "
            "several customers named by one person's identifiers are merged (200, "
            "`outcome: merged`, the survivor returned); when their personal data disagree "
            "(a family sharing a phone) the record goes to the customer of the strongest "
            "identifier (card, then phone, then email) and a duplicate suspicion is left for "
            "marketers (200, `outcome: suspected`). Personal data are written by source "
            "precedence: the client's channel (its kind) never overwrites what a more "
            "trusted source gave (admin > app/site/contact centre > POS) and only fills "
            "empty fields when it is the POS. Clients of kind `other` get 403."
        ),
        request=CustomerRegistrationSerializer,
        responses={
            201: OpenApiResponse(RegistrationSerializer, description="A new customer."),
            200: OpenApiResponse(
                RegistrationSerializer, description="An existing customer (matched or merged)."
            ),
            **ERRORS,
        },
    )
    def post(self, request):
        source = client_source(request)
        form = CustomerRegistrationSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        record = IdentityRecord(
            source=source,
            card=data.get("card"),
            phone=data.get("phone"),
            email=data.get("email"),
            external_ids=[(e["system"], e["id"]) for e in data.get("external_ids", ())],
            data={name: data[name] for name in PERSONAL_FIELDS if name in data},
        )
        resolution = customer_resolve(record=record)
        body = RegistrationSerializer(
            {
                "outcome": resolution.outcome,
                "customer": resolution.customer,
                "merged_ids": resolution.merged_ids,
            }
        ).data
        created = resolution.outcome == Outcome.CREATED
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CustomerDetailView(generics.GenericAPIView):
    """One customer's card."""

    scopes = scoped(GET="customers:read", PATCH="customers:write")
    serializer_class = CustomerSerializer
    queryset = Customer.objects.none()  # the schema's path ids
    parser_classes = [StrictJSONParser]

    @extend_schema(
        summary="A customer's card",
        responses={200: CustomerSerializer, **ERRORS, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        return Response(CustomerSerializer(customer_or_404(pk)).data)

    @extend_schema(
        summary="Change a customer's card",
        description=(
            'Only the fields sent change. Identifiers in any notation; `null` or `""` clears '
            "one. A field whose current value came from a more trusted source than the "
            "client's channel (admin > app/site/contact centre > POS) is kept and listed in "
            "`kept_fields`. A phone, email or card another customer holds is refused with 409, "
            "code `identifier_taken`, naming the field (not the customer); a replaced one "
            "still finds this customer in lookups. Unknown fields are refused (400)."
        ),
        request=CustomerUpdateSerializer,
        responses={
            200: CustomerUpdateResultSerializer,
            **ERRORS,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def patch(self, request, pk: int):
        source = client_source(request)
        customer_or_404(pk, load=False)
        form = CustomerUpdateSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        try:
            result = customer_update_from_channel(
                customer_id=pk, data=form.validated_data, source=source
            )
        except Customer.DoesNotExist:
            raise exceptions.NotFound() from None  # merged or deleted since the check
        return Response(
            CustomerUpdateResultSerializer(
                {
                    "customer": result.customer,
                    "changed_fields": result.changed,
                    "kept_fields": result.kept,
                }
            ).data
        )


def _lookup_query(params) -> tuple[str, str]:
    """(kind, value) of the one identifier asked for, as CustomerLookupSerializer validates it.
    The usual query (one identifier that passes its field's checks) skips building the
    serializer; anything else goes through it, for the same answer and the same errors."""
    if len(params) == 1:
        ((kind, values),) = params.lists()
        fields = _lookup_fields()
        field = fields.get(kind)
        if field is not None and len(values) == 1:
            value = values[0].strip()  # CharField's trim_whitespace
            if value and not any(check(value) for check in field):
                return kind, value
    query = CustomerLookupSerializer(data=params.dict())
    query.is_valid(raise_exception=True)
    ((kind, value),) = query.validated_data.items()
    return kind, value


@functools.cache
def _lookup_fields() -> dict:
    """Per CustomerLookupSerializer field: what makes its validators refuse a stripped value."""
    fields = CustomerLookupSerializer().fields

    def refuses(validator):
        def check(value: str) -> bool:
            try:
                validator(value)
            except (exceptions.ValidationError, DjangoValidationError):
                return True
            return False

        return check

    return {name: [refuses(v) for v in field.validators] for name, field in fields.items()}


@functools.cache
def _card_fields() -> tuple:
    """(name, conversion) of CustomerSerializer's fields, built once per process: building a
    ModelSerializer's fields costs more than the lookup's query."""
    fields = CustomerSerializer().fields
    return tuple((name, fields[name].to_representation) for name in CUSTOMER_FIELDS)


def _card(row: dict) -> dict:
    """A `.values(*CUSTOMER_FIELDS)` row as CustomerSerializer renders the customer."""
    return {
        name: None if row[name] is None else convert(row[name]) for name, convert in _card_fields()
    }
