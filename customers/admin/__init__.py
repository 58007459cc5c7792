"""The customer base in the admin, for marketers (Russian UI, English source strings)."""

from . import customer, purchases, records, references
from .references import ReferenceListAdmin

__all__ = ["ReferenceListAdmin", "customer", "purchases", "records", "references"]
