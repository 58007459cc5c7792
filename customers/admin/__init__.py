"""The customer base in the admin, for marketers (Russian UI, English source strings)."""

from . import customer, identity, imports, merge, purchases, records, references, suspicions
from .references import ReferenceListAdmin

__all__ = [
    "ReferenceListAdmin",
    "customer",
    "identity",
    "imports",
    "merge",
    "purchases",
    "records",
    "references",
    "suspicions",
]
