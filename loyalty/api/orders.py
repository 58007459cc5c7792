"""Orders: place (with an Idempotency-Key), complete, cancel, return wholly or by lines, read one,
and list a customer's orders and till purchases. The work is `loyalty.orders`' services; these
views parse, call one service and answer with the order, its bonuses and the new balance."""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.api.common import NOT_FOUND as CUSTOMER_NOT_FOUND
from customers.api.common import check_id, client_source, customer_or_404
from customers.models import Purchase, Source
from loyalty import order_selectors, orders
from loyalty.orders import OrderConflict, OrderLine, ReturnLine
from pharmacrm.api.idempotency import HEADER, idempotent
from pharmacrm.api.pagination import PagePagination
from pharmacrm.api.permissions import scoped
from pharmacrm.api.schema import ERROR, ERRORS

from .orders_serializers import (
    OrderCompleteSerializer,
    OrderCreateSerializer,
    OrderListQuerySerializer,
    OrderResultSerializer,
    OrderReturnSerializer,
    OrderSerializer,
    order_data,
    order_result_data,
)

ORDER_NOT_FOUND = OpenApiResponse(ERROR, description="No such order.")
CONFLICT = OpenApiResponse(
    ERROR,
    description="The order's state refuses the call (`order_not_placed`, `order_not_completed`), "
    "the channel already has the order number (`order_exists`), or the balance does not cover "
    "the bonuses (`insufficient_bonus`); the field is named.",
)
KEY_REUSED = OpenApiResponse(
    ERROR, description="The Idempotency-Key was used for a different request."
)


def _key_header(required: bool) -> OpenApiParameter:
    return OpenApiParameter(
        HEADER,
        str,
        OpenApiParameter.HEADER,
        required=required,
        description=(
            "1 to 200 characters, unique per request: a retry with the same key and body gets "
            "the first response and changes nothing; the same key with another body: 422."
            + ("" if required else " Optional here, advised for returns by lines.")
        ),
    )


def _channel(request) -> str:
    return f"api:{request.user.client.name}"[:40]


def _conflict(error: OrderConflict) -> Response:
    errors = {error.field: [{"message": error.message, "code": error.code}]} if error.field else {}
    return Response(
        {"code": error.code, "message": error.message, "errors": errors},
        status=status.HTTP_409_CONFLICT,
    )


# Built once per process: formatting an answer only reads the bound fields, while a serializer
# per answer deep-copies its ~40 fields first (about 1 ms of an order's CPU).
_RESULT = OrderResultSerializer()
# The same for the request: validating only reads the bound fields (no state kept on the
# serializer), so one instance checks every request's body.
_CREATE = OrderCreateSerializer()


def _answer(order_id: int) -> Response:
    """The order as it is now, its bonuses and the customer's balance."""
    order = order_selectors.order_get(order_id=order_id)
    bonuses = order_selectors.order_bonuses([order.pk])[order.pk]
    balance = order_selectors.account_balance(customer_id=order.customer_id)
    return Response(_RESULT.to_representation(order_result_data(order, bonuses, balance)))


def _placed_answer(placed: orders.PlacedOrder) -> Response:
    """`_answer` for an order placed by this request, from what placing it computed (the same
    body as reading it back, without reading it back)."""
    lines = [
        {
            "sku": line.sku,
            "name": line.name,
            "qty": line.qty,
            "price": line.price,
            "amount": line.amount,
        }
        for line in placed.quote.lines
    ]
    data = order_result_data(
        placed.order, placed.bonuses, placed.balance, placed.quote.discount, lines
    )
    return Response(_RESULT.to_representation(data), status=status.HTTP_201_CREATED)


class OrderCreateView(APIView):
    """Place an order (or record a till's online sale)."""

    scopes = scoped(POST="orders:write")

    @extend_schema(
        summary="Place an order",
        description=(
            "An app, website or contact-centre order, placed for pick-up in a store (`store`) "
            "or delivery (`delivery: true`), awaiting completion; or, from a POS client, a "
            "till's online sale (`status: completed`, `store` its store, `number` its purchase "
            "id: its POS export later updates the same purchase). The channel is the client's "
            "kind. The order is priced with the customer's current discount (the checkout "
            "quote's), and `bonus_to_spend` is redeemed at once, within the quote's cap (the "
            "rules' share: 400) and the balance (409). A placed order accrues nothing until "
            "completed and counts for no figures, status or discount. Needs an "
            "`Idempotency-Key` header."
        ),
        parameters=[_key_header(required=True)],
        request=OrderCreateSerializer,
        responses={
            201: OrderResultSerializer,
            409: CONFLICT,
            422: KEY_REUSED,
            **ERRORS,
        },
    )
    def post(self, request):
        if HEADER not in request.headers:
            message = _("Placing an order needs an Idempotency-Key header.")
            return Response(
                {
                    "code": "invalid",
                    "message": message,
                    "errors": {HEADER: [{"message": message, "code": "required"}]},
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return idempotent(request, "orders.create", lambda: self._place(request))

    @staticmethod
    def _place(request) -> Response:
        source = client_source(request)  # 403 for a client of no channel
        data = _CREATE.run_validation(request.data)  # 400 naming each bad field
        try:
            placed = orders.order_place(
                customer_id=data["customer"],
                number=data["number"],
                source=source,
                lines=[
                    OrderLine(line["sku"], line["qty"], line["price"]) for line in data["lines"]
                ],
                store_code=data.get("store") or None,
                delivery=data["delivery"],
                bonus_to_spend=data["bonus_to_spend"],
                status=data["status"],
                channel=_channel(request),
            )
        except OrderConflict as error:
            return _conflict(error)
        return _placed_answer(placed)


class OrderDetailView(APIView):
    scopes = scoped(GET="orders:read")

    @extend_schema(
        summary="Read an order",
        description="Any purchase by id: an order from any channel, or a till sale.",
        responses={200: OrderResultSerializer, 404: ORDER_NOT_FOUND, **ERRORS},
    )
    def get(self, request, order_id: int):
        if order_selectors.order_get(order_id=check_id(order_id)) is None:
            raise Http404
        return _answer(order_id)


class _OrderAction(APIView):
    """POST /orders/{id}/<action>/: one service call, atomic, optionally idempotent."""

    scopes = scoped(POST="orders:write")
    action = ""
    body_class = None

    def post(self, request, order_id: int):
        order_id = check_id(order_id)

        def handle() -> Response:
            body = None
            if self.body_class is not None:
                body = self.body_class(data=request.data)
                body.is_valid(raise_exception=True)
            try:
                self.run(request, order_id, body.validated_data if body else {})
            except Purchase.DoesNotExist:
                raise Http404 from None
            except OrderConflict as error:
                return _conflict(error)
            return _answer(order_id)

        return idempotent(request, f"orders.{order_id}.{self.action}", handle)

    def run(self, request, order_id: int, data: dict) -> None:
        raise NotImplementedError


_ACTION_RESPONSES = {
    200: OrderResultSerializer,
    404: ORDER_NOT_FOUND,
    409: CONFLICT,
    422: KEY_REUSED,
    **ERRORS,
}


class OrderCompleteView(_OrderAction):
    action = "complete"
    body_class = OrderCompleteSerializer

    @extend_schema(
        summary="Complete a placed order",
        description=(
            "Picked up or delivered: the order counts from now on (figures, status, discount), "
            "its held bonus spend stays and its accrual is posted. Only a placed order "
            "(else 409 `order_not_placed`). An order picked up in a store is also completed by "
            "the POS export's sale naming it in `order_ref`."
        ),
        parameters=[_key_header(required=False)],
        request=OrderCompleteSerializer,
        responses=_ACTION_RESPONSES,
    )
    def post(self, request, order_id: int):
        return super().post(request, order_id)

    def run(self, request, order_id, data):
        orders.order_complete(
            order_id=order_id, store_code=data.get("store") or None, channel=_channel(request)
        )


class OrderCancelView(_OrderAction):
    action = "cancel"

    @extend_schema(
        summary="Cancel a placed order",
        description=(
            "The bonuses it held are refunded. Only a placed order (else 409 "
            "`order_not_placed`: a completed order is returned)."
        ),
        parameters=[_key_header(required=False)],
        request=None,
        responses=_ACTION_RESPONSES,
    )
    def post(self, request, order_id: int):
        return super().post(request, order_id)

    def run(self, request, order_id, data):
        orders.order_cancel(order_id=order_id, channel=_channel(request))


class OrderReturnView(_OrderAction):
    action = "return"
    body_class = OrderReturnSerializer

    @extend_schema(
        summary="Return a completed order, wholly or by lines",
        description=(
            "Without `lines`: the whole order (its accrual reversed, its bonus spend refunded). "
            "With `lines`: those quantities; the lines are reduced, the discount spread over "
            "what is kept, and the bonus spend and accrual reversed in proportion to the "
            "eligible amount returned. Returning everything is a whole return. Only a "
            "completed order (else 409 `order_not_completed`). Send an Idempotency-Key so that "
            "a retried partial return is not applied twice."
        ),
        parameters=[_key_header(required=False)],
        request=OrderReturnSerializer,
        responses=_ACTION_RESPONSES,
    )
    def post(self, request, order_id: int):
        return super().post(request, order_id)

    def run(self, request, order_id, data):
        lines = data.get("lines")
        orders.order_return(
            order_id=order_id,
            lines=[ReturnLine(line["sku"], line["qty"]) for line in lines] if lines else None,
            channel=_channel(request),
        )


class CustomerOrdersView(generics.ListAPIView):
    """A customer's orders and purchases from every channel, newest first."""

    scopes = scoped(GET="orders:read")
    serializer_class = OrderSerializer
    pagination_class = PagePagination
    queryset = Purchase.objects.none()  # for the schema: rows come from the selector

    @extend_schema(
        summary="List a customer's orders and purchases",
        description=(
            "Every channel's: app, website and contact-centre orders in any state and the "
            "till's purchases, newest first (by `purchased_at`), with their lines and bonuses."
        ),
        parameters=[
            OpenApiParameter("status", str, enum=list(Purchase.Status.values)),
            OpenApiParameter("source", str, enum=list(Source.values)),
        ],
        responses={200: OrderSerializer(many=True), 404: CUSTOMER_NOT_FOUND, **ERRORS},
    )
    def get(self, request, customer_id: int):
        return super().get(request, customer_id)

    def list(self, request, customer_id: int):
        query = OrderListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        customer_or_404(customer_id, load=False)  # merged away: 404 customer_merged
        rows = order_selectors.customer_orders(
            customer_id=customer_id,
            status=query.validated_data.get("status"),
            source=query.validated_data.get("source"),
        )
        page = self.paginate_queryset(rows)
        bonuses = order_selectors.order_bonuses(order.pk for order in page)
        data = [order_data(order, bonuses[order.pk]) for order in page]
        return self.get_paginated_response(OrderSerializer(data, many=True).data)
