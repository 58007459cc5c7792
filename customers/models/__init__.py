"""The unified customer base: one record per person, whatever channel they came through."""

from .base import MONEY, Channel, PurchaseType, ReferenceList, Sex, Source
from .catalogue import Product, Store
from .identity import DuplicateSuspicion, IdentifierAlias, IdentifierKind, MergeRecord
from .imports import ImportIssue, ImportRun
from .people import (
    IDENTIFIER_COLUMNS,
    PERSONAL_FIELDS,
    Consent,
    Customer,
    ExternalId,
    FamilyMember,
)
from .purchases import Purchase, PurchaseLine, Reservation

__all__ = [
    "IDENTIFIER_COLUMNS",
    "MONEY",
    "PERSONAL_FIELDS",
    "Channel",
    "Consent",
    "Customer",
    "DuplicateSuspicion",
    "ExternalId",
    "FamilyMember",
    "IdentifierAlias",
    "IdentifierKind",
    "ImportIssue",
    "ImportRun",
    "MergeRecord",
    "Product",
    "Purchase",
    "PurchaseLine",
    "PurchaseType",
    "ReferenceList",
    "Reservation",
    "Sex",
    "Source",
    "Store",
]
