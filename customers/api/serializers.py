from django.utils.translation import gettext as _
from rest_framework import serializers

from customers.models import Customer, ExternalId, Sex
from customers.normalize import normalize_card, normalize_email, normalize_phone

from .common import StrictSerializer, birth_date_check

# The card's fields as the app and the site see them (the field sources and the merge flags are
# the CRM's business).
CUSTOMER_FIELDS = (
    "id",
    "card_number",
    "phone",
    "email",
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "sex",
    "city",
    "street",
    "house",
    "flat",
    "household_size",
    "created_at",
    "updated_at",
)


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = CUSTOMER_FIELDS
        read_only_fields = ("id", "created_at", "updated_at")


class CustomerLookupSerializer(serializers.Serializer):
    """Exactly one identifier."""

    phone = serializers.CharField(required=False, max_length=64)
    card = serializers.CharField(required=False, max_length=64)
    email = serializers.CharField(required=False, max_length=254)
    external_id = serializers.CharField(
        required=False, max_length=200, help_text="SYSTEM:ID, e.g. app:12345"
    )

    def validate(self, attrs):
        if len(attrs) != 1:
            raise serializers.ValidationError(
                "Give exactly one of phone, card, email, external_id.", code="one_identifier"
            )
        return attrs


# --- Registration and changes from the channels ---------------------------------------------------


class PersonalDataSerializer(StrictSerializer):
    """The personal fields of a card as a channel sends them; "" clears a text field."""

    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    middle_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    birth_date = serializers.DateField(required=False, allow_null=True)
    sex = serializers.ChoiceField(
        choices=Sex.choices, required=False, allow_blank=True, help_text="F or M"
    )
    city = serializers.CharField(required=False, allow_blank=True, max_length=100)
    street = serializers.CharField(required=False, allow_blank=True, max_length=200)
    house = serializers.CharField(required=False, allow_blank=True, max_length=20)
    flat = serializers.CharField(required=False, allow_blank=True, max_length=20)
    household_size = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=50
    )

    def validate_birth_date(self, value):
        return birth_date_check(value)


class ExternalIdInputSerializer(StrictSerializer):
    system = serializers.ChoiceField(choices=ExternalId.System.choices)
    id = serializers.CharField(max_length=100, help_text="the customer's id in that system")


class CustomerRegistrationSerializer(PersonalDataSerializer):
    """Identifiers in any notation (at least one) and personal data."""

    phone = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=40, help_text="any notation"
    )
    card = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=40, help_text="13 digits"
    )
    email = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=254)
    external_ids = serializers.ListField(
        child=ExternalIdInputSerializer(), required=False, max_length=10
    )

    def validate_phone(self, value):
        return normalize_phone(value)

    def validate_card(self, value):
        return normalize_card(value)

    def validate_email(self, value):
        return normalize_email(value)

    def validate(self, attrs):
        if not any(attrs.get(name) for name in ("phone", "card", "email", "external_ids")):
            raise serializers.ValidationError(
                _("A customer needs a card number, a phone, an email or an external id."),
                code="no_identifier",
            )
        return attrs


class CustomerUpdateSerializer(PersonalDataSerializer):
    """The card's fields a channel may change; null or "" clears an identifier."""

    phone = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=40, help_text="any notation"
    )
    email = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=254)
    card_number = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=40, help_text="13 digits"
    )

    def validate_phone(self, value):
        return normalize_phone(value)

    def validate_card_number(self, value):
        return normalize_card(value)

    def validate_email(self, value):
        return normalize_email(value)


class RegistrationSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=["created", "matched", "merged", "suspected"],
        help_text=(
            "created: a new customer (201); matched: an existing one; merged: the identifiers "
            "named several customers of one person, merged into this one (their ids in "
            "merged_ids); suspected: they named customers whose personal data disagree, so the "
            "record was attached to the strongest identifier's customer and a duplicate "
            "suspicion left for marketers"
        ),
    )
    customer = CustomerSerializer()
    merged_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="customers merged into this one just now"
    )


class CustomerUpdateResultSerializer(serializers.Serializer):
    customer = CustomerSerializer()
    changed_fields = serializers.ListField(child=serializers.CharField())
    kept_fields = serializers.ListField(
        child=serializers.CharField(),
        help_text="fields sent but left as they were: a more trusted source gave their value",
    )
