"""What a marketer types in the customer search box, matched the way they mean it."""

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from customers.models import Customer, IdentifierAlias, IdentifierKind
from customers.normalize import looks_like_phone, normalize_card, normalize_phone

NAME_FIELDS = ("last_name", "first_name", "middle_name")


def _or_none(normalize, term: str) -> str | None:
    try:
        return normalize(term)
    except ValidationError:
        return None


# Where each kind of identifier is looked up on the customer row.
_COLUMNS = {
    IdentifierKind.CARD: "card_number",
    IdentifierKind.PHONE: "phone",
    IdentifierKind.EMAIL: "_email_lower",  # Lower(email): what the unique index is built on
}


def _identifiers(term: str) -> dict[str, str]:
    """The identifiers a search term can be, normalised; empty when it is none."""
    if "@" in term:
        return {IdentifierKind.EMAIL: term.lower()}  # stored lower-cased
    found = {}
    card = _or_none(normalize_card, term)
    if card:
        found[IdentifierKind.CARD] = card
    phone = _or_none(normalize_phone, term) if looks_like_phone(term) else None
    if phone:
        found[IdentifierKind.PHONE] = phone
    return found


def _identifier_q(identifiers: dict[str, str]) -> Q:
    """Equality on the unique indexes, plus the survivors of merges that left the identifier."""
    on_card = Q(*(Q(**{_COLUMNS[k]: v}) for k, v in identifiers.items()), _connector=Q.OR)
    aliases = Q(*(Q(kind=k, value=v) for k, v in identifiers.items()), _connector=Q.OR)
    # Fetched first (one lookup on a unique index), so the OR stays two index lookups.
    survivors = list(IdentifierAlias.objects.filter(aliases).values_list("customer_id", flat=True))
    return on_card | Q(pk__in=survivors) if survivors else on_card


def _word_variants(word: str, vendor: str) -> list[str]:
    if vendor != "sqlite":
        return [word]
    # SQLite's LIKE folds case for ASCII letters only; names are stored capitalised, so try the
    # spellings a Cyrillic name actually has. PostgreSQL folds Cyrillic itself.
    return list(dict.fromkeys([word, word.lower(), word.capitalize(), word.upper()]))


def _name_q(term: str, vendor: str) -> Q:
    """Every word starts the last, first or middle name, in any case."""
    condition = Q()
    for word in term.split():
        condition &= Q(
            *(
                Q(**{f"{field}__istartswith": variant})
                for field in NAME_FIELDS
                for variant in _word_variants(word, vendor)
            ),
            _connector=Q.OR,
        )
    return condition


def customer_search(queryset: QuerySet[Customer], term: str) -> QuerySet[Customer]:
    """Customers matching a phone (any notation), card number, email, or the start of their names.

    Identifiers are exact lookups on unique indexes (a merged customer's old identifier finds the
    survivor); only names are matched by prefix.
    """
    term = term.strip()
    if not term:
        return queryset
    identifiers = _identifiers(term)
    if identifiers:
        queryset = queryset.alias(_email_lower=Lower("email"))
        return queryset.filter(_identifier_q(identifiers))
    if not any(ch.isalpha() for ch in term):
        # Digits that are neither a real phone nor a card: nothing to match, and no name scan.
        return queryset.none()
    return queryset.filter(_name_q(term, connections[queryset.db].vendor))
