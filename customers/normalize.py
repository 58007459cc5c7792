"""Normalisation of customer identifiers: one canonical form per phone, email and card.

Each function returns the canonical value or raises ValidationError naming what is wrong;
blank input returns None, so optional identifiers stay optional.
"""

import re
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

CARD_LENGTH = 13


@lru_cache(maxsize=200_000)
def _parse_phone(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Russian mobile numbers in their usual notations: +7/7/8 or nothing, then 9XX XXX XX XX. Every
# such number outside the 93x range is a valid RU mobile in phonenumbers' metadata, so these
# need no full parse (tens of microseconds each; a POS file holds hundreds of thousands).
_SEPARATORS = re.compile(r"[\s\-().]")
_RU_MOBILE = re.compile(r"(?:\+7|7|8)?(9[0-24-9]\d{8})")


def _fast_ru_mobile(raw: str) -> str | None:
    match = _RU_MOBILE.fullmatch(_SEPARATORS.sub("", raw))
    return f"+7{match.group(1)}" if match else None


def normalize_phone(raw: str | None, *, region: str | None = None) -> str | None:
    """Any common notation ("8 (912) 345-67-89", "+7 912 345 67 89") -> E.164 ("+79123456789")."""
    if raw is None or not str(raw).strip():
        return None
    region = region or settings.PHONE_DEFAULT_REGION
    if region == "RU":
        fast = _fast_ru_mobile(str(raw))
        if fast is not None:
            return fast
    value = _parse_phone(str(raw).strip(), region)
    if value is None:
        raise ValidationError(
            _("“%(value)s” is not a valid phone number."),
            code="invalid_phone",
            params={"value": raw},
        )
    return value


def normalize_email(raw: str | None) -> str | None:
    """Trimmed, lower-case, validated."""
    if raw is None or not str(raw).strip():
        return None
    value = str(raw).strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise ValidationError(
            _("“%(value)s” is not a valid email address."),
            code="invalid_email",
            params={"value": raw},
        ) from None
    return value


def normalize_card(raw: str | None) -> str | None:
    """Digits only; a loyalty card number has exactly 13 digits."""
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    # Allow spaces and dashes as separators, but not letters or other noise.
    if any(not (ch.isdigit() or ch in " -") for ch in text) or len(digits) != CARD_LENGTH:
        raise ValidationError(
            _("A loyalty card number has %(length)d digits; got “%(value)s”."),
            code="invalid_card",
            params={"length": CARD_LENGTH, "value": raw},
        )
    return digits


def looks_like_phone(text: str) -> bool:
    """True when a search term is made of phone characters and has enough digits to be one."""
    digits = sum(ch.isdigit() for ch in text)
    return digits >= 10 and all(ch.isdigit() or ch in " +-()." for ch in text)
