"""What the loyalty endpoints take and give.

The answers of the bonus and loyalty endpoints are written by these serializers; the checkout
quote, the hot path, answers `Quote.as_dict()` as it is and `QuoteSerializer` only documents
that shape (a test holds the two together).
"""

from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.api.common import MAX_ID, StrictSerializer
from customers.api.serializers import CustomerLookupSerializer
from customers.models import PurchaseType
from loyalty.models import CustomerStatus, MovementKind

MAX_LINES = 500


def money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=14, decimal_places=2, **kwargs)


def any_money(**kwargs) -> serializers.DecimalField:
    """A computed amount with no bound on its digits (a quote's lines may add up to more than
    any stored column holds)."""
    return serializers.DecimalField(max_digits=None, decimal_places=2, **kwargs)


def percent(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=5, decimal_places=2, **kwargs)


# --- bonuses -----------------------------------------------------------------------------------


class ExpiringSerializer(serializers.Serializer):
    amount = money(source="expiring", help_text="Unspent bonuses whose validity ends in time.")
    first_expires_at = serializers.DateTimeField(
        source="expiring_first_at",
        allow_null=True,
        help_text="When the first of them expires; null when nothing expires.",
    )
    before = serializers.DateTimeField(
        source="expiring_before", help_text="The end of the window: now + 30 days."
    )


class BonusBalanceSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    available = money(help_text="Can be spent now (1 bonus = 1 rouble).")
    pending = money(help_text="Accrued, not yet available.")
    debt = money(help_text="Taken back by returns after it was spent; later accruals pay it.")
    expiring = ExpiringSerializer(source="*", help_text="What expires in the next 30 days.")


class LedgerEntrySerializer(serializers.Serializer):
    """One ledger movement, from a `loyalty.selectors.bonus_ledger_rows` row."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=MovementKind.choices)
    kind_label = serializers.SerializerMethodField()
    amount = money(help_text="Signed: credits > 0, debits < 0.")
    created_at = serializers.DateTimeField()
    purchase_id = serializers.IntegerField(allow_null=True)
    purchase_number = serializers.CharField(
        allow_null=True, help_text="The purchase's number in its source system (POS, app, site)."
    )
    available_at = serializers.DateTimeField(allow_null=True, help_text="Credits only.")
    expires_at = serializers.DateTimeField(allow_null=True, help_text="Credits only.")
    remaining = money(allow_null=True, help_text="Credits only: what is still unspent.")
    reason = serializers.SerializerMethodField()
    channel = serializers.CharField(help_text="POS, API client, admin or system.")

    @extend_schema_field(serializers.CharField())
    def get_kind_label(self, row) -> str:
        return str(MovementKind(row["kind"]).label)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_reason(self, row) -> str | None:
        """A manager's reason for an adjustment; null when the movement has none."""
        return row["reason"] or None


# --- the customer's loyalty ---------------------------------------------------------------------


# Customer statuses and discount sources are documented as text listing their values, not as
# enums: drf-spectacular names enum components after the field ("status", "source", "code"), and
# other endpoints' fields of those names hold other values (a schema warning on every build).
# Named enums need ENUM_NAME_OVERRIDES in the settings.
STATUS_CODES = ", ".join(CustomerStatus.values)
DISCOUNT_SOURCES = "cumulative (by lifetime total) or personal"


class StatusSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=STATUS_CODES)
    label = serializers.CharField()


class FiguresSerializer(serializers.Serializer):
    as_of = serializers.DateField(
        allow_null=True, help_text="The date the figures, status and scores hold for."
    )
    purchase_count = serializers.IntegerField()
    lifetime_total = money()
    average_check = money()
    frequency = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="Purchases per month."
    )
    first_purchase = serializers.DateField(allow_null=True)
    last_purchase = serializers.DateField(allow_null=True)


class RfmSerializer(serializers.Serializer):
    r = serializers.IntegerField(allow_null=True, help_text="Recency score.")
    f = serializers.IntegerField(allow_null=True, help_text="Frequency score.")
    m = serializers.IntegerField(allow_null=True, help_text="Monetary score.")


class CurrentDiscountSerializer(serializers.Serializer):
    percent = percent()
    source = serializers.CharField(help_text=DISCOUNT_SOURCES)
    label = serializers.CharField()
    valid_until = serializers.DateField(
        allow_null=True, help_text="Personal discounts with an end date: the last day, inclusive."
    )


class NextTierSerializer(serializers.Serializer):
    threshold = money(help_text="The lifetime total the tier starts at.")
    percent = percent()
    amount_left = money(help_text="What the customer has still to buy for it.")


class CustomerLoyaltySerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    status = StatusSerializer(allow_null=True, help_text="Null before the first purchase.")
    status_since = serializers.DateField(allow_null=True)
    figures = FiguresSerializer()
    rfm = RfmSerializer()
    discount = CurrentDiscountSerializer(allow_null=True, help_text="The best that applies today.")
    cumulative_total = money(
        help_text=(
            "The lifetime total the cumulative discount follows: completed purchases up to "
            "today, whatever the channel (`figures.lifetime_total` holds for `figures.as_of`)."
        )
    )
    next_tier = NextTierSerializer(
        allow_null=True, help_text="The cumulative tier that would raise the discount."
    )


# --- the checkout quote: the request --------------------------------------------------------------


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "example": "1.5",
        "description": "A decimal as a string; a JSON number is taken as written, too.",
    }
)
class DecimalInput(serializers.Field):
    """A number as the client wrote it, checked by the checkout service (which names the field
    and the rule, every bad field at once): a string, an integer or a JSON number (read as
    Decimal, never float)."""

    default_error_messages = {
        "invalid": _('Give a decimal number as a string, e.g. "1.5".'),
        "max_length": _("Too long for a number."),
    }
    MAX_LENGTH = 32
    # The service's quantity check fails on a huge negative number (decimal.InvalidOperation
    # when it rounds it to three places) instead of naming it: anything below this is passed
    # on as this, which it refuses as it refuses any quantity below zero.
    FLOOR = -(Decimal(10) ** 15)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | Decimal):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > self.MAX_LENGTH:
            self.fail("max_length")
        try:
            number = data if isinstance(data, Decimal) else Decimal(str(data).strip())
        except InvalidOperation:
            return data  # not a number: the service says so
        if number.is_finite() and number < self.FLOOR:
            return self.FLOOR
        return data

    def to_representation(self, value) -> str:
        return str(value)


class QuoteLineInput(StrictSerializer):
    """One basket line: the product by `sku` or by `product_id` (one of the two)."""

    sku = serializers.CharField(required=False, max_length=64)
    product_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    qty = DecimalInput(help_text="Greater than 0, at most three decimals (a pack split: 0.5).")
    price = DecimalInput(help_text="The unit price in roubles, at least 0, at most two decimals.")

    def validate(self, attrs):
        if ("sku" in attrs) == ("product_id" in attrs):
            raise serializers.ValidationError(
                _("Give the product as one of sku, product_id."), code="one_product"
            )
        return attrs


class LinesField(serializers.ListField):
    """The basket's lines: a list of at most MAX_LINES, refused before any line is read when
    longer."""

    def __init__(self, **kwargs):
        super().__init__(child=QuoteLineInput(), max_length=MAX_LINES, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) > MAX_LINES:
            self.fail("max_length", max_length=MAX_LINES)
        return super().to_internal_value(data)


class QuoteRequestSerializer(StrictSerializer):
    customer = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="The customer's id."
    )
    customer_lookup = CustomerLookupSerializer(
        required=False, help_text="Or the customer by one identifier (as the lookup takes it)."
    )
    lines = LinesField()
    purchase_type = serializers.SlugRelatedField(
        slug_field="code",
        queryset=PurchaseType.objects.all(),
        required=False,
        help_text="Its code (retail, preorder, delivery): accrual rates may differ by type.",
    )

    def validate(self, attrs):
        if ("customer" in attrs) == ("customer_lookup" in attrs):
            raise serializers.ValidationError(
                _("Give the customer as one of customer, customer_lookup."), code="one_customer"
            )
        return attrs


# --- the checkout quote: the answer (Quote.as_dict) ---------------------------------------------


class QuoteLineSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    qty = serializers.DecimalField(max_digits=10, decimal_places=3)
    price = money()
    amount = any_money(help_text="qty × price, rounded half-up to kopecks.")
    bonus_eligible = serializers.BooleanField(
        help_text="Earns bonuses and may be paid with them (not prescription-only, by default)."
    )


class QuoteNextTierSerializer(NextTierSerializer):
    tier_id = serializers.IntegerField()


class AppliedDiscountSerializer(CurrentDiscountSerializer):
    source_id = serializers.IntegerField(help_text="The tier's or the personal discount's id.")
    lifetime_total = money()
    next_tier = QuoteNextTierSerializer(allow_null=True)


class QuoteBalanceSerializer(serializers.Serializer):
    available = money()
    pending = money()
    debt = money()


class QuoteSerializer(serializers.Serializer):
    """The checkout's answer, the same for every channel that asks."""

    customer_id = serializers.IntegerField()
    on = serializers.DateField(help_text="The day quoted (today in the chain's time zone).")
    lines = QuoteLineSerializer(many=True)
    subtotal = any_money(help_text="The lines' amounts.")
    discount = AppliedDiscountSerializer(allow_null=True)
    discount_percent = percent()
    discount_amount = any_money(help_text="subtotal × percent, rounded half-up.")
    total = any_money(help_text="subtotal - discount_amount: paid in money and bonuses.")
    eligible_amount = any_money(help_text="The bonus-eligible lines' share of the total.")
    max_spend_by_share = any_money(help_text="The rules' maximum share of the eligible amount.")
    max_spend = any_money(
        help_text="The most bonuses this purchase may spend: min(share, balance)."
    )
    balance = QuoteBalanceSerializer()
    status = serializers.CharField(
        help_text=f"The customer status this purchase accrues at: {STATUS_CODES}."
    )
    accrual_percent = percent()
    accrual_without_spending = any_money(help_text="What the purchase earns if no bonus is spent.")
    accrual_with_max_spend = any_money(help_text="... if `max_spend` bonuses are spent.")
    lifetime_total = money(help_text="The lifetime total the cumulative discount follows.")
    next_tier = QuoteNextTierSerializer(allow_null=True)
