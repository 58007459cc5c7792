"""Bonuses, the customer's loyalty and the checkout quote (/api/v1/...).

Each view reads through `loyalty.selectors` or asks `loyalty.checkout`: the figures and the
quote the app, the website and the POS get are the admin's and the till's.
"""

from __future__ import annotations

import codecs
import json
from decimal import Decimal

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.api.common import MAX_ID, NOT_FOUND, StrictJSONParser, customer_or_404
from customers.selectors import customer_find_id
from loyalty.checkout import checkout_quote
from loyalty.models import BonusMovement, CustomerStatus, MovementKind
from loyalty.selectors import (
    CustomerLoyalty,
    bonus_balance,
    bonus_ledger_rows,
    customer_loyalty,
)
from pharmacrm.api.models import Scope
from pharmacrm.api.pagination import NewestFirstCursor
from pharmacrm.api.permissions import scoped
from pharmacrm.api.schema import ERRORS

from .serializers import (
    BonusBalanceSerializer,
    CustomerLoyaltySerializer,
    LedgerEntrySerializer,
    QuoteRequestSerializer,
    QuoteSerializer,
)

ZERO = Decimal("0.00")
# Documented as the integer it is; routed as any text, so that a URL naming no customer gets
# the API's JSON 404 rather than Django's HTML page.
CUSTOMER_ID = OpenApiParameter("customer_id", int, OpenApiParameter.PATH)
CUSTOMER_ERRORS = {**ERRORS, 404: NOT_FOUND}


def _customer_pk(raw: str) -> int:
    """The customer id a URL names (0, which names nobody, for anything not an id)."""
    pk = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0
    return pk if pk <= MAX_ID else 0


def _customer_not_found(pk: int) -> Exception:
    """Why nobody has this id: unknown, or merged into another customer (named, as every
    /customers/{id}/ endpoint says it)."""
    try:
        customer_or_404(pk, load=False)
    except exceptions.NotFound as error:
        return error
    # Created between the two reads: as good as not found a moment ago.
    return exceptions.NotFound()


# --- bonuses -----------------------------------------------------------------------------------


class CustomerBonusesView(APIView):
    scopes = scoped(GET=Scope.BONUSES_READ)

    @extend_schema(
        summary="A customer's bonus balance",
        description=(
            "Available, pending (accrued, not yet spendable) and debt (taken back by returns "
            "after it was spent), and what expires in the next 30 days: its amount and when "
            "the first of it expires. 1 bonus = 1 rouble. A customer the ledger never saw has "
            "zeros."
        ),
        responses={200: BonusBalanceSerializer, **CUSTOMER_ERRORS},
        parameters=[CUSTOMER_ID],
    )
    def get(self, request, customer_id: str):
        pk = _customer_pk(customer_id)
        balance = bonus_balance(customer_id=pk) if pk else None
        if balance is None:
            raise _customer_not_found(pk)
        return Response(BonusBalanceSerializer(balance).data)


class LedgerFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(
        choices=MovementKind.choices, help_text="Repeat for several: ?kind=accrual&kind=expiry."
    )
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        help_text="Posted at or after (ISO 8601; without an offset: the chain's time zone).",
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Posted before."
    )


class LedgerCursor(NewestFirstCursor):
    """NewestFirstCursor refusing a forged cursor whose position is not an id (the database
    would be asked to compare ids with text)."""

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            position = cursor.position
            if not (position.isascii() and position.isdigit() and len(position) <= 19):
                raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor


class CustomerBonusLedgerView(generics.ListAPIView):
    scopes = scoped(GET=Scope.BONUSES_READ)
    serializer_class = LedgerEntrySerializer
    pagination_class = LedgerCursor
    filterset_class = LedgerFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema: no customer in the URL
            return BonusMovement.objects.none()
        return bonus_ledger_rows(customer_id=self.customer_pk)

    @extend_schema(
        summary="A customer's bonus ledger",
        description=(
            "Every movement, newest first, a page at a time (follow `next`): accruals, "
            "redemptions, reversals, expiry, grants and managers' adjustments, each with its "
            "signed amount. Credits say when they became or become available, when they expire "
            "and what is left of them."
        ),
        responses={200: LedgerEntrySerializer(many=True), **CUSTOMER_ERRORS},
        parameters=[CUSTOMER_ID],
    )
    def get(self, request, customer_id: str):
        self.customer_pk = customer_or_404(_customer_pk(customer_id), load=False)
        return self.list(request)


# --- the customer's loyalty ---------------------------------------------------------------------


class CustomerLoyaltyView(APIView):
    scopes = scoped(GET=Scope.CUSTOMERS_READ)

    @extend_schema(
        summary="A customer's status, figures and discount",
        description=(
            "The status (with the day it took effect), the purchase figures and RFM scores as "
            "of the last nightly computation (`figures.as_of`), and as of today the discount "
            "that applies and the next cumulative tier with what is left to buy for it."
        ),
        responses={200: CustomerLoyaltySerializer, **CUSTOMER_ERRORS},
        parameters=[CUSTOMER_ID],
    )
    def get(self, request, customer_id: str):
        pk = _customer_pk(customer_id)
        loyalty = customer_loyalty(customer_id=pk) if pk else None
        if loyalty is None:
            raise _customer_not_found(pk)
        return Response(CustomerLoyaltySerializer(_loyalty_payload(loyalty)).data)


def _loyalty_payload(loyalty: CustomerLoyalty) -> dict:
    figures = loyalty.figures or {}
    status = figures.get("status")
    outlook = loyalty.discount
    applied = outlook.applied
    return {
        "customer_id": loyalty.customer_id,
        "status": {"code": status, "label": CustomerStatus(status).label} if status else None,
        "status_since": figures.get("status_since"),
        "figures": {
            "as_of": loyalty.figures_as_of,
            "purchase_count": figures.get("purchase_count") or 0,
            "lifetime_total": figures.get("lifetime_total") or ZERO,
            "average_check": figures.get("average_check") or ZERO,
            "frequency": figures.get("frequency") or ZERO,
            "first_purchase": figures.get("first_purchase"),
            "last_purchase": figures.get("last_purchase"),
        },
        "rfm": {
            "r": figures.get("r_score"),
            "f": figures.get("f_score"),
            "m": figures.get("m_score"),
        },
        "discount": applied,
        "cumulative_total": outlook.lifetime_total,
        "next_tier": outlook.next_tier,
    }


# --- the checkout quote ---------------------------------------------------------------------------


class DecimalJSONParser(JSONParser):
    """JSON with its numbers read as Decimal, never float (150.10 stays 150.10)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            decoded = codecs.getreader(encoding)(stream)
            return json.load(decoded, parse_float=Decimal, parse_constant=_no_constant)
        except ValueError as exc:
            raise exceptions.ParseError(_("The body is not valid JSON.")) from exc


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON knows")


class QuoteJSONParser(StrictJSONParser, DecimalJSONParser):
    """Decimal numbers, and text that can be echoed back in error messages (the customers
    endpoints' strict parser); a body nested too deep to read is as malformed as any other."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("The body is nested too deep.")) from None


# One instance checks every request's body: validating only reads its bound fields, while a
# serializer per request deep-copies them first (a sixth of a quote's CPU).
_QUOTE_REQUEST = QuoteRequestSerializer()


class CheckoutQuoteView(APIView):
    scopes = scoped(POST=Scope.CHECKOUT)
    parser_classes = [QuoteJSONParser]

    @extend_schema(
        summary="Quote a basket: the discount and the most bonuses it may spend",
        description=(
            "For a customer (by id, or by one identifier as the customer lookup takes it) and "
            "the basket's lines: the discount that applies, the amount bonuses may pay (the "
            "rules' share of the bonus-eligible lines, at most the balance) and what the "
            "purchase would earn. The answer is the same whichever client asks: the app, the "
            "website and the POS get the same bytes for the same request. Nothing is written: "
            "redeem through an order. Money and quantities are decimal strings (JSON numbers "
            "are read as written, never as floating point). A bad line is named in `errors` as "
            "`lines.<index from 0>.<field>`."
        ),
        request=QuoteRequestSerializer,
        responses={200: QuoteSerializer, **ERRORS},
    )
    def post(self, request):
        data = _QUOTE_REQUEST.run_validation(request.data)  # 400 naming each bad field
        customer_field = "customer" if "customer" in data else "customer_lookup"
        customer_id = data.get("customer") or _find_customer(data["customer_lookup"])
        given = data["lines"]
        lines = [
            (line.get("product_id", line.get("sku")), line["qty"], line["price"]) for line in given
        ]
        purchase_type = data.get("purchase_type")
        try:
            quote = checkout_quote(
                customer_id, lines, purchase_type_id=purchase_type.pk if purchase_type else None
            )
        except DjangoValidationError as error:
            raise _renamed(error, given, customer_field) from None
        return Response(quote.as_dict())


def _find_customer(lookup: dict) -> int:
    ((kind, value),) = lookup.items()
    try:
        found = customer_find_id(kind=kind, value=value)
    except DjangoValidationError as error:
        raise serializers.ValidationError(
            {f"customer_lookup.{kind}": _details(errors) for errors in error.error_dict.values()}
        ) from None
    if found is None:
        raise serializers.ValidationError(
            {
                "customer_lookup": [
                    exceptions.ErrorDetail(
                        _("No customer holds this identifier."), code="not_found"
                    )
                ]
            }
        )
    return found


def _details(errors: list[DjangoValidationError]) -> list[exceptions.ErrorDetail]:
    return [
        exceptions.ErrorDetail(message, code=error.code or "invalid")
        for error in errors
        for message in error.messages
    ]


def _renamed(
    error: DjangoValidationError, lines: list[dict], customer_field: str
) -> serializers.ValidationError:
    """The checkout service's fields in the API's names: "lines[2].qty" -> "lines.2.qty",
    "lines[2].product" -> "lines.2.sku" or "lines.2.product_id" (whichever the line gave),
    "customer" -> the field the customer was given by."""
    if not hasattr(error, "error_dict"):
        return serializers.ValidationError(_details(error.error_list))
    renamed: dict[str, list] = {}
    for field, errors in error.error_dict.items():
        name = field
        if field.startswith("lines["):
            index, _sep, rest = field[len("lines[") :].partition("]")
            rest = rest.lstrip(".")
            if rest == "product":
                rest = "product_id" if "product_id" in lines[int(index)] else "sku"
            name = f"lines.{index}.{rest}" if rest else f"lines.{index}"
        elif field == "customer":
            name = customer_field
        renamed.setdefault(name, []).extend(_details(errors))
    return serializers.ValidationError(renamed)
