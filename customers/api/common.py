"""What the customers app's endpoints share: the caller's channel, the customer named in the
URL, strict input (unknown fields and text PostgreSQL cannot store refused), aware times, and the
404/409 entries of the schema."""

from __future__ import annotations

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers

from customers.models import Customer, MergeRecord, Source
from pharmacrm.api.models import ApiClient

# The strict parser lives with the API's shared parts; named here too for this app's views.
from pharmacrm.api.parsers import StrictJSONParser  # noqa: F401
from pharmacrm.api.schema import ERROR

# Ids in URLs and bodies are bigints: anything larger names nothing (and must not reach the
# database, which would refuse it with a server error).
MAX_ID = 2**63 - 1

# The channel an API client writes as: where its customers, consents and reservations came from,
# and how far its personal data is trusted (customers.identity.SOURCE_RANK).
KIND_SOURCE = {
    ApiClient.Kind.APP: Source.APP,
    ApiClient.Kind.SITE: Source.SITE,
    ApiClient.Kind.POS: Source.POS,
    ApiClient.Kind.CONTACT_CENTRE: Source.CONTACT_CENTRE,
}

NOT_FOUND = OpenApiResponse(
    ERROR,
    description="No such customer (code `customer_merged`: merged "
    "into another one, named in the message).",
)
CONFLICT = OpenApiResponse(
    ERROR, description="The state refuses the request; `errors` names the field."
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="1 to 200 characters: a retry with the same key and body gets the first "
    "response and changes nothing; the same key with another body is refused (422).",
)
REPLAYED = OpenApiResponse(ERROR, description="This Idempotency-Key was used for another request.")


class ClientKindRefused(exceptions.PermissionDenied):
    default_detail = gettext_lazy(
        "This API client has no channel (app, site, POS, contact centre) to record its writes "
        "under: set its kind in the admin."
    )
    default_code = "client_without_channel"


def client_source(request) -> str:
    """The channel the calling client writes as; clients of kind "other" may not write."""
    source = KIND_SOURCE.get(request.auth.kind)
    if source is None:
        raise ClientKindRefused()
    return source


class CustomerMerged(exceptions.NotFound):
    default_code = "customer_merged"


def customer_or_404(pk: int, *, load: bool = True) -> Customer | int:
    """The customer a URL names (just its id with load=False: one cheap query).

    404 when unknown; a customer merged away answers 404 with code "customer_merged" and the
    survivor's id in the message (lookups by its identifiers or external ids find the survivor).
    """
    if 0 < pk <= MAX_ID:
        if load:
            customer = Customer.objects.filter(pk=pk).first()
            if customer is not None:
                return customer
        elif Customer.objects.filter(pk=pk).exists():
            return pk
        survivor = (
            MergeRecord.objects.filter(merged_customer_id=pk)
            .values_list("survivor_id", flat=True)
            .first()
        )
        if survivor is not None:
            raise CustomerMerged(
                _("This customer was merged into customer %(id)s.") % {"id": survivor}
            )
    raise exceptions.NotFound(_("There is no such customer."))


def check_id(pk: int) -> int:
    """A URL's other ids: beyond a bigint they name nothing."""
    if not 0 < pk <= MAX_ID:
        raise exceptions.NotFound()
    return pk


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (a misspelt field must not look accepted) and read-only
    ones, each named, code "unknown_field"."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, f in self.fields.items() if not f.read_only}
            unknown = sorted(str(k) for k in data if k not in writable)
            if unknown:
                raise serializers.ValidationError(
                    {
                        name[:100]: [
                            serializers.ErrorDetail(
                                _("Unknown or read-only field."), code="unknown_field"
                            )
                        ]
                        for name in unknown[:20]
                    }
                )
        return super().to_internal_value(data)


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset; a time without one is refused rather than guessed."""

    default_error_messages = {
        "naive": gettext_lazy("Give the time with its offset, e.g. 2026-03-01T10:00:00+03:00."),
        "range": gettext_lazy("The time must lie between the years 2000 and 2100."),
    }

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if isinstance(value, str) and not _has_offset(value):
            self.fail("naive")
        if not 2000 <= parsed.year <= 2100:
            self.fail("range")
        return parsed


def _has_offset(text: str) -> bool:
    try:
        parsed = parse_datetime(text.strip())
    except ValueError:
        return False
    return parsed is not None and parsed.tzinfo is not None


def birth_date_check(value):
    """A birth date from outside: not in the future, not before 1900 (a typo)."""
    if value is not None and value > timezone.localdate():
        raise serializers.ValidationError(_("A birth date cannot be in the future."), code="future")
    if value is not None and value.year < 1900:
        raise serializers.ValidationError(_("A birth date before 1900 is a typo."), code="too_old")
    return value
