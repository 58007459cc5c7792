from rest_framework import serializers

from customers.models import Customer

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
