"""What the orders endpoints take and give. Money is a decimal string with two places; times are
ISO 8601 with the chain's offset."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import RegexValidator
from rest_framework import serializers

from customers.api.common import MAX_ID, StrictSerializer
from customers.models import Purchase, Source
from loyalty.discounts import AppliedDiscount
from loyalty.order_selectors import Balance, OrderBonuses

MAX_LINES = 500
PLACED, COMPLETED = Purchase.Status.PLACED.value, Purchase.Status.COMPLETED.value
_printable = RegexValidator(r"^[^\x00-\x1f\x7f]*$", "Control characters are not allowed.")


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=14, decimal_places=2, **kwargs)


# -- requests ----------------------------------------------------------------------------------


class OrderLineInSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=64, validators=[_printable])
    qty = serializers.DecimalField(
        max_digits=10,
        decimal_places=3,
        min_value=Decimal("0.001"),
        help_text="> 0, at most three decimals (packs can be split)",
    )
    price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), help_text="per unit, ≥ 0"
    )


class OrderCreateSerializer(StrictSerializer):
    customer = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="customer id")
    number = serializers.CharField(
        max_length=64,
        validators=[_printable],
        help_text="the order's number in the client's channel (unique there); a till's online "
        "sale gives its purchase id, as its POS export will",
    )
    store = serializers.CharField(
        max_length=50,
        required=False,
        allow_null=True,
        validators=[_printable],
        help_text="the pick-up store's code (a till's sale: its store); leave out for delivery",
    )
    delivery = serializers.BooleanField(default=False, help_text="delivered, not picked up")
    lines = serializers.ListField(child=OrderLineInSerializer(), min_length=1, max_length=MAX_LINES)
    bonus_to_spend = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        default=Decimal("0.00"),
        help_text="at most the checkout quote's max_spend (the rules' share, and the balance)",
    )
    status = serializers.ChoiceField(
        choices=[PLACED, COMPLETED],
        default=PLACED,
        help_text="placed (awaiting pick-up or delivery) or completed (a till's online sale)",
    )


class OrderCompleteSerializer(StrictSerializer):
    store = serializers.CharField(
        max_length=50,
        required=False,
        allow_null=True,
        validators=[_printable],
        help_text="the store it was picked up in, if not the one it was placed for",
    )


class ReturnLineSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=64, validators=[_printable])
    qty = serializers.DecimalField(max_digits=10, decimal_places=3, min_value=Decimal("0.001"))


class OrderReturnSerializer(StrictSerializer):
    lines = serializers.ListField(
        child=ReturnLineSerializer(),
        required=False,
        allow_null=True,
        min_length=1,
        max_length=MAX_LINES,
        help_text="the quantities returned; leave out to return the whole order",
    )


class OrderListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Purchase.Status.values, required=False)
    source = serializers.ChoiceField(choices=Source.values, required=False)


# -- responses ---------------------------------------------------------------------------------


class OrderLineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    qty = serializers.DecimalField(max_digits=10, decimal_places=3)
    price = _money()
    amount = _money(help_text="qty × price, rounded half-up")


class BalanceSerializer(serializers.Serializer):
    available = _money()
    pending = _money(help_text="accrued, not yet available")
    debt = _money(help_text="taken back by returns; later accruals pay it off first")


class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(help_text="the order's number (a till sale's purchase id)")
    customer = serializers.IntegerField(allow_null=True)
    source = serializers.ChoiceField(choices=Source.choices)
    status = serializers.ChoiceField(choices=Purchase.Status.choices)
    fulfilment = serializers.ChoiceField(
        choices=Purchase.Fulfilment.choices, allow_null=True, help_text="orders only"
    )
    store = serializers.CharField(allow_null=True, help_text="store code")
    purchase_type = serializers.CharField(help_text="purchase-type code")
    order_ref = serializers.CharField(help_text="a till sale: the app or site order it fulfils")
    created_at = serializers.DateTimeField(help_text="placed (or recorded)")
    purchased_at = serializers.DateTimeField(help_text="placed, then when completed")
    lines = OrderLineSerializer(many=True)
    subtotal = _money(help_text="the lines' amounts")
    discount = _money(help_text="the discount applied, in money")
    total = _money(help_text="subtotal − discount: paid in money and bonuses")
    bonus_spent = _money(help_text="bonuses redeemed (held while placed; refunded on cancel)")
    bonus_accrued = _money(help_text="0 until completed")


class DiscountAppliedSerializer(serializers.Serializer):
    percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    source = serializers.CharField(help_text="cumulative or personal")
    label = serializers.CharField()


class OrderResultSerializer(serializers.Serializer):
    """One order after a call: the order, the customer's bonuses now and, when it was placed by
    this call, the discount it was priced with."""

    order = OrderSerializer()
    balance = BalanceSerializer(help_text="the customer's bonuses after this call")
    discount_applied = DiscountAppliedSerializer(
        allow_null=True,
        help_text="placing: the customer's discount the order was priced with (null: none); "
        "other calls: null",
    )


def order_data(order: Purchase, bonuses: OrderBonuses, lines: list[dict] | None = None) -> dict:
    """An order (its store, type and lines loaded) as OrderSerializer reads it; `lines` (sku,
    name, qty, price, amount) when the caller has them (an order placed just now)."""
    if lines is None:
        lines = [
            {
                "sku": line.product.sku,
                "name": line.product.name,
                "qty": line.qty,
                "price": line.price,
                "amount": line.amount,
            }
            for line in order.lines.all()
        ]
    return {
        "id": order.pk,
        "number": order.external_id,
        "customer": order.customer_id,
        "source": order.source,
        "status": order.status,
        "fulfilment": order.fulfilment or None,
        "store": order.store.code if order.store is not None else None,
        "purchase_type": order.purchase_type.code,
        "order_ref": order.order_ref,
        "created_at": order.created_at,
        "purchased_at": order.purchased_at,
        "lines": lines,
        "subtotal": sum((line["amount"] for line in lines), Decimal("0.00")),
        "discount": order.discount,
        "total": order.total,
        "bonus_spent": bonuses.spent,
        "bonus_accrued": bonuses.accrued,
    }


def order_result_data(
    order: Purchase,
    bonuses: OrderBonuses,
    balance: Balance,
    discount: AppliedDiscount | None = None,
    lines: list[dict] | None = None,
) -> dict:
    return {
        "order": order_data(order, bonuses, lines),
        "balance": {
            "available": balance.available,
            "pending": balance.pending,
            "debt": balance.debt,
        },
        "discount_applied": (
            {"percent": discount.percent, "source": discount.source, "label": discount.label}
            if discount is not None
            else None
        ),
    }
