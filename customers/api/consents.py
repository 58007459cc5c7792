"""Consents per channel: the current state of each and the history of grants and withdrawals."""

import datetime as dt

from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from customers.models import Channel, Consent, Customer, Source
from customers.services import consent_record
from pharmacrm.api.idempotency import idempotent
from pharmacrm.api.permissions import scoped
from pharmacrm.api.schema import ERRORS

from .common import (
    IDEMPOTENCY_KEY,
    NOT_FOUND,
    REPLAYED,
    AwareDateTimeField,
    StrictJSONParser,
    StrictSerializer,
    client_source,
    customer_or_404,
)

# A consent dated ahead of the CRM's clock by more than this is refused (clocks drift a little).
FUTURE_SLACK = dt.timedelta(minutes=5)


class ConsentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Consent
        fields = ("id", "channel", "granted", "occurred_at", "source", "recorded_at")


class ConsentStateSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    granted = serializers.BooleanField(help_text="false also when never asked")
    occurred_at = serializers.DateTimeField(allow_null=True, help_text="null: never asked")
    source = serializers.ChoiceField(choices=Source.choices, allow_null=True)


class ConsentsSerializer(serializers.Serializer):
    current = ConsentStateSerializer(many=True, help_text="every channel, in a fixed order")
    next = serializers.URLField(allow_null=True, help_text="the history's next page")
    previous = serializers.URLField(allow_null=True)
    results = ConsentSerializer(many=True, help_text="the history, latest first")


class ConsentInputSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    granted = serializers.BooleanField(help_text="true: given; false: withdrawn")
    occurred_at = AwareDateTimeField(
        required=False, help_text="when the customer decided; default: now"
    )

    def validate_occurred_at(self, value):
        if value > timezone.now() + FUTURE_SLACK:
            raise serializers.ValidationError(
                _("A consent cannot be dated in the future."), code="future"
            )
        return value


class HistoryCursor(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # The order the current state is read in: the latest decision, not the latest recorded.
    ordering = ("-occurred_at", "-id")


class ConsentsView(generics.GenericAPIView):
    scopes = scoped(GET="customers:read", POST="customers:write")
    serializer_class = ConsentSerializer
    queryset = Customer.objects.none()  # the schema's path ids
    parser_classes = [StrictJSONParser]
    pagination_class = HistoryCursor

    @extend_schema(
        summary="A customer's consents: the current state per channel and the history",
        description=(
            "`current` lists every channel (no decision recorded: not granted). The history "
            "(`results`) is every grant and withdrawal, latest decision first, cursor-paged "
            "(`cursor`, `page_size` up to 200)."
        ),
        parameters=[
            OpenApiParameter("cursor", str, description="from `next` or `previous`"),
            OpenApiParameter("page_size", int),
        ],
        responses={200: ConsentsSerializer, **ERRORS, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        customer_id = customer_or_404(pk, load=False)
        rows = Consent.objects.filter(customer_id=customer_id)
        page = self.paginate_queryset(rows)
        return Response(
            {
                "current": _current(customer_id),
                "next": self.paginator.get_next_link(),
                "previous": self.paginator.get_previous_link(),
                "results": ConsentSerializer(page, many=True).data,
            }
        )

    @extend_schema(
        summary="Record a grant or a withdrawal",
        description=(
            "Appended to the history under the client's channel; it is the current state "
            "unless a later-dated decision exists. `occurred_at` needs its offset and may not "
            "lie in the future."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=ConsentInputSerializer,
        responses={201: ConsentSerializer, **ERRORS, 404: NOT_FOUND, 422: REPLAYED},
    )
    def post(self, request, pk: int):
        source = client_source(request)
        customer = customer_or_404(pk)

        def handle() -> Response:
            form = ConsentInputSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            consent = consent_record(customer=customer, source=source, **form.validated_data)
            return Response(ConsentSerializer(consent).data, status=status.HTTP_201_CREATED)

        return idempotent(request, f"customers/{customer.pk}/consents:record", handle)


def _current(customer_id: int) -> list[dict]:
    """The latest decision per channel, one query (consent_latest_idx), every channel listed."""
    latest: dict[str, dict] = {}
    rows = (
        Consent.objects.filter(customer_id=customer_id)
        .order_by("channel", "-occurred_at", "-id")
        .values("channel", "granted", "occurred_at", "source")
    )
    if connections[rows.db].features.can_distinct_on_fields:
        rows = rows.distinct("channel")  # PostgreSQL: one row per channel, not the whole history
    for row in rows:
        latest.setdefault(row["channel"], row)
    never = {"granted": False, "occurred_at": None, "source": None}
    state = [{"channel": c, **latest.get(c, never)} for c in Channel.values]
    return ConsentStateSerializer(state, many=True).data
