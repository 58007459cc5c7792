"""Guards against two runs of the same periodic job (PERFORMANCE.md: pg_try_advisory_lock)."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def try_advisory_lock(key: int) -> Iterator[bool]:
    """Yields True when this process holds session lock `key` (then released on exit), False
    when another one does. Always True off PostgreSQL (SQLite serialises its writers)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
