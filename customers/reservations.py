"""Reservations from the website and the app: a product held in a store for pick-up until a
deadline, then cancelled by the customer or expired by the periodic task."""

import datetime as dt
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Customer, Product, Reservation, Store

# A reservation without an explicit deadline is held until the end of the store's local day this
# many days after the day it was made (made on Monday at any hour: pick up by Wednesday 23:59:59).
RESERVATION_HOLD_DAYS = 2
# A deadline the caller gives lies in the future and at most this far ahead.
RESERVATION_MAX_HOLD = dt.timedelta(days=30)


def reservation_default_deadline(*, store: Store, at: datetime) -> datetime:
    """The end (23:59:59) of the store's local day RESERVATION_HOLD_DAYS after `at`'s."""
    try:
        zone = ZoneInfo(store.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(settings.TIME_ZONE)
    day = at.astimezone(zone).date() + dt.timedelta(days=RESERVATION_HOLD_DAYS)
    return datetime.combine(day, dt.time(23, 59, 59), tzinfo=zone)


@transaction.atomic
def reservation_create(
    *,
    customer_id: int,
    store_code: str,
    sku: str,
    quantity: Decimal,
    source: str,
    pickup_deadline: datetime | None = None,
    external_id: str = "",
) -> Reservation:
    """Reserve a product in a store for a customer; active until `pickup_deadline`.

    Without a deadline, reservation_default_deadline's. Refusals name their field: `customer`,
    `store` (unknown or closed), `product` (unknown SKU), `quantity`, `pickup_deadline` (past or
    more than RESERVATION_MAX_HOLD ahead), and `external_id` with code "conflict" when the source
    already used that id. Atomic: nothing is written on a refusal.
    """
    now = timezone.now()
    errors: dict[str, ValidationError] = {}
    # Locked so a concurrent merge moves the reservation instead of deleting its customer under it.
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        errors["customer"] = ValidationError(_("There is no such customer."), code="does_not_exist")
    store = Store.objects.filter(code=store_code).first()
    if store is None:
        errors["store"] = ValidationError(
            _("There is no store with this code."), code="does_not_exist"
        )
    elif not store.is_active:
        errors["store"] = ValidationError(_("This store is closed."), code="inactive")
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        errors["product"] = ValidationError(
            _("There is no product with this SKU."), code="does_not_exist"
        )
    if pickup_deadline is not None:
        if timezone.is_naive(pickup_deadline):
            raise ValueError("pickup_deadline must be aware")
        if pickup_deadline <= now:
            errors["pickup_deadline"] = ValidationError(
                _("The pick-up deadline must be in the future."), code="past"
            )
        elif pickup_deadline > now + RESERVATION_MAX_HOLD:
            errors["pickup_deadline"] = ValidationError(
                _("A reservation is held for at most %(days)d days."),
                code="too_far",
                params={"days": RESERVATION_MAX_HOLD.days},
            )
    external_id = external_id.strip()
    if external_id and Reservation.objects.filter(source=source, external_id=external_id).exists():
        errors["external_id"] = _reservation_id_used()
    if errors:
        raise ValidationError(errors)
    reservation = Reservation(
        customer=customer,
        store=store,
        product=product,
        quantity=quantity,
        source=source,
        external_id=external_id,
        pickup_deadline=pickup_deadline or reservation_default_deadline(store=store, at=now),
    )
    reservation.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            reservation.save()
    except IntegrityError:
        # The same source's id taken by a concurrent request since our check.
        if external_id and Reservation.objects.filter(source=source, external_id=external_id):
            raise ValidationError({"external_id": _reservation_id_used()}) from None
        raise
    return reservation


def _reservation_id_used() -> ValidationError:
    return ValidationError(
        _("This reservation id was already used by this channel."), code="conflict"
    )


@transaction.atomic
def reservation_cancel(*, reservation_id: int) -> Reservation:
    """Cancel an active reservation; cancelling a cancelled one changes nothing.

    A picked-up or expired reservation cannot be cancelled: ValidationError with code "conflict".
    Raises Reservation.DoesNotExist.
    """
    reservation = Reservation.objects.select_for_update().get(pk=reservation_id)
    if reservation.status == Reservation.Status.CANCELLED:
        return reservation
    if reservation.status != Reservation.Status.ACTIVE:
        raise ValidationError(
            _("A reservation that is %(status)s cannot be cancelled."),
            code="conflict",
            params={"status": reservation.get_status_display().lower()},
        )
    reservation.status = Reservation.Status.CANCELLED
    reservation.save(update_fields=["status", "updated_at"])
    return reservation


def reservations_expire(*, now: datetime | None = None) -> int:
    """Active reservations whose pick-up deadline has passed become expired; returns how many.
    Safe to run at any time and again: an expired reservation is never touched twice."""
    now = now or timezone.now()
    return Reservation.objects.filter(
        status=Reservation.Status.ACTIVE, pickup_deadline__lt=now
    ).update(status=Reservation.Status.EXPIRED, updated_at=now)
