import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from customers.normalize import (
    _fast_ru_mobile,
    _parse_phone,
    looks_like_phone,
    normalize_card,
    normalize_email,
    normalize_phone,
)


@pytest.mark.parametrize(
    "raw",
    ["8 (912) 345-67-89", "+7 (912) 345 67 89", "89123456789", "+79123456789", "7 912 345-67-89"],
)
def test_every_common_russian_notation_normalises_to_e164(raw):
    assert normalize_phone(raw) == "+79123456789"


@pytest.mark.parametrize("raw", ["12345", "+7 (000) 000-00-00", "телефон", "8 912 345 67 89 99"])
def test_a_phone_that_cannot_be_a_real_number_is_refused(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_phone(raw)
    assert exc.value.code == "invalid_phone"


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_blank_identifiers_are_none(raw):
    assert normalize_phone(raw) is None
    assert normalize_email(raw) is None
    assert normalize_card(raw) is None


def test_email_is_trimmed_and_lower_cased():
    assert normalize_email("  Anna.Ivanova@Example.RU ") == "anna.ivanova@example.ru"


@pytest.mark.parametrize("raw", ["anna@", "anna example.ru", "@example.ru", "anna@@example.ru"])
def test_a_malformed_email_is_refused(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_email(raw)
    assert exc.value.code == "invalid_email"


def test_card_numbers_keep_digits_only():
    assert normalize_card("2900 0000 12345") == "2900000012345"
    assert normalize_card("2900-000012345") == "2900000012345"


@pytest.mark.parametrize("raw", ["290000001234", "29000000123456", "29000000A2345"])
def test_a_card_number_without_exactly_13_digits_is_refused(raw):
    with pytest.raises(ValidationError) as exc:
        normalize_card(raw)
    assert exc.value.code == "invalid_card"


def test_search_terms_that_look_like_phones():
    assert looks_like_phone("8 (912) 345-67-89")
    assert not looks_like_phone("Иванова")
    assert not looks_like_phone("2900000012345a")


@given(
    prefix=st.sampled_from(["", "+7", "7", "8", "+7 ", "8 ", "+8", "+79", "9"]),
    digits=st.text(alphabet="0123456789", min_size=8, max_size=12),
    separators=st.lists(st.sampled_from([" ", "-", "(", ")", ".", ""]), min_size=12, max_size=12),
)
@settings(max_examples=3000, deadline=None)
def test_the_fast_path_for_russian_mobiles_agrees_with_phonenumbers(prefix, digits, separators):
    raw = prefix + "".join(d + s for d, s in zip(digits, separators, strict=False))
    fast = _fast_ru_mobile(raw)
    try:
        slow = _parse_phone(raw.strip(), "RU")
    except Exception:  # any parse failure means "not a number"
        slow = None
    if fast is not None:
        assert fast == slow, raw


@pytest.mark.parametrize("raw", ["8 (912) 345-67-89", "+7 912 345 67 89", "9123456789"])
def test_common_notations_take_the_fast_path(raw):
    assert _fast_ru_mobile(raw) == "+79123456789"


def test_the_93x_range_is_left_to_the_full_parser():
    assert _fast_ru_mobile("+7 936 164 70 11") is None
    assert normalize_phone("8 (936) 164-70-11") == "+79361647011"
