"""Reservations from the website (and the app): reserve a product in a store, cancel, list."""

from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from customers.models import Customer, Reservation
from customers.reservations import RESERVATION_HOLD_DAYS, reservation_cancel, reservation_create
from pharmacrm.api.idempotency import idempotent
from pharmacrm.api.pagination import PagePagination
from pharmacrm.api.permissions import scoped
from pharmacrm.api.schema import ERROR, ERRORS

from .common import (
    CONFLICT,
    IDEMPOTENCY_KEY,
    MAX_ID,
    NOT_FOUND,
    REPLAYED,
    AwareDateTimeField,
    StrictJSONParser,
    StrictSerializer,
    check_id,
    client_source,
    customer_or_404,
)


class ReservationSerializer(serializers.ModelSerializer):
    customer = serializers.IntegerField(source="customer_id")
    store = serializers.CharField(source="store.code", help_text="store code")
    store_name = serializers.CharField(source="store.name")
    product = serializers.CharField(source="product.sku", help_text="SKU")
    product_name = serializers.CharField(source="product.name")

    class Meta:
        model = Reservation
        fields = (
            "id",
            "customer",
            "store",
            "store_name",
            "product",
            "product_name",
            "quantity",
            "status",
            "source",
            "external_id",
            "pickup_deadline",
            "created_at",
            "updated_at",
        )


class ReservationInputSerializer(StrictSerializer):
    customer = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="customer id")
    store = serializers.CharField(max_length=50, help_text="store code")
    product = serializers.CharField(max_length=64, help_text="SKU")
    quantity = serializers.DecimalField(
        max_digits=10,
        decimal_places=3,
        min_value=Decimal("0.001"),
        help_text="packs (up to 3 decimals for part of a pack)",
    )
    pickup_deadline = AwareDateTimeField(
        required=False,
        help_text=(
            f"default: the end (23:59:59) of the store's local day {RESERVATION_HOLD_DAYS} days "
            "after today's; at most 30 days ahead"
        ),
    )
    external_id = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="the reservation's id in the caller's system, unique per channel",
    )


class ReservationListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Reservation.Status.choices, required=False)


class ReservationCreateView(generics.GenericAPIView):
    scopes = scoped(POST="reservations:write")
    serializer_class = ReservationSerializer
    queryset = Reservation.objects.none()  # the schema's path ids
    parser_classes = [StrictJSONParser]

    @extend_schema(
        summary="Reserve a product in a store",
        description=(
            "The reservation is active until `pickup_deadline` (default: the end of the "
            f"store's local day {RESERVATION_HOLD_DAYS} days after today's, so reserved on "
            "Monday at any hour, it waits until Wednesday 23:59:59 store time). Recorded under "
            "the client's channel. Unknown customer, store or SKU, and a closed store, are "
            "refused naming the field (400); an `external_id` the channel already used, 409."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=ReservationInputSerializer,
        responses={201: ReservationSerializer, **ERRORS, 409: CONFLICT, 422: REPLAYED},
    )
    def post(self, request):
        source = client_source(request)

        def handle() -> Response:
            form = ReservationInputSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            data = form.validated_data
            reservation = reservation_create(
                customer_id=data["customer"],
                store_code=data["store"],
                sku=data["product"],
                quantity=data["quantity"],
                source=source,
                pickup_deadline=data.get("pickup_deadline"),
                external_id=data.get("external_id", ""),
            )
            return Response(ReservationSerializer(reservation).data, status=status.HTTP_201_CREATED)

        return idempotent(request, "reservations:create", handle)


class ReservationCancelView(generics.GenericAPIView):
    scopes = scoped(POST="reservations:write")
    serializer_class = ReservationSerializer
    queryset = Reservation.objects.none()  # the schema's path ids
    parser_classes = [StrictJSONParser]

    @extend_schema(
        summary="Cancel a reservation",
        description=(
            "Safe to repeat: a cancelled reservation stays cancelled (200). A picked-up or "
            "expired one cannot be cancelled (409). No body."
        ),
        request=None,
        responses={
            200: ReservationSerializer,
            **ERRORS,
            404: OpenApiResponse(ERROR, description="No such reservation."),
            409: CONFLICT,
        },
    )
    def post(self, request, pk: int):
        client_source(request)
        try:
            reservation = reservation_cancel(reservation_id=check_id(pk))
        except Reservation.DoesNotExist:
            raise exceptions.NotFound() from None
        reservation = Reservation.objects.select_related("store", "product").get(pk=reservation.pk)
        return Response(ReservationSerializer(reservation).data)


class CustomerReservationsView(generics.GenericAPIView):
    scopes = scoped(GET="reservations:read")
    serializer_class = ReservationSerializer
    queryset = Customer.objects.none()  # the schema's path ids
    pagination_class = PagePagination

    @extend_schema(
        summary="A customer's reservations",
        description="Newest first, paged (`page`, `page_size` up to 200).",
        parameters=[
            OpenApiParameter("status", str, enum=Reservation.Status.values),
        ],
        responses={200: ReservationSerializer(many=True), **ERRORS, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        customer_id = customer_or_404(pk, load=False)
        query = ReservationListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        reservations = (
            Reservation.objects.filter(customer_id=customer_id, **query.validated_data)
            .select_related("store", "product")
            .order_by("-created_at", "-id")
        )
        page = self.paginate_queryset(reservations)
        return self.get_paginated_response(ReservationSerializer(page, many=True).data)
