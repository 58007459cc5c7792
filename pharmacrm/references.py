"""Foreign keys checked set-based by a bulk writer, instead of row by row by PostgreSQL.

PostgreSQL checks a foreign key with a trigger per written row: a query that finds the
referenced row and locks it `FOR KEY SHARE`, so that nobody can delete it (or change its key)
before the writer commits. That costs about 5 µs a row, even against a one-row table, and a POS
purchase with its lines and bonus movements sets off about ten of them: a quarter of the import.

A bulk writer can give the same guarantee once per batch: `lock_referenced` locks every row its
batch refers to `FOR KEY SHARE` in one statement, and fails if any is missing. The batch's rows
are then written inside `row_checks_off()`, with the per-row triggers skipped
(`session_replication_role = replica`: how logical replication's apply workers write rows whose
references the origin has checked already). A row the writer created itself in the same
transaction, or holds locked `FOR UPDATE` already, needs no such lock: nobody else can delete it
before the writer commits.

Nothing else changes: the constraints stay declared, every other write is checked row by row
as before, and a `DELETE` of a referenced row still checks (in its own session) that nothing
refers to it; it waits for the key-share lock, then sees the writer's committed rows.

Changing the setting makes PostgreSQL drop the session's cached plans (prepared statements are
planned again on their next run): cheap once per batch, not meant for a single-row write.

Only a superuser, or a role granted `SET ON PARAMETER session_replication_role` (PostgreSQL 15+),
may change the setting; `row_checks_off()` is a no-op for any other role (the per-row checks
then run, slower and just as correct), and on other databases. Inside it, *every* trigger of the
session is skipped (the schema has no others), so keep it around inserts and updates whose
references were locked as above. Around a delete, the per-row check on the other side (that
nothing refers to the deleted rows) is skipped too: only after locking those rows FOR UPDATE
and checking every referencing table set-based, as the POS benchmark's cleanup does.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterable, Iterator

from django.db import DatabaseError, IntegrityError, connection

logger = logging.getLogger(__name__)

# Raw connection -> whether its role may set session_replication_role.
_permitted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def row_checks_can_be_skipped() -> bool:
    """Whether `row_checks_off()` takes effect on this connection (PostgreSQL, and a role that
    may set session_replication_role); asked once per database connection."""
    if connection.vendor != "postgresql":
        return False
    connection.ensure_connection()
    raw = connection.connection
    permitted = _permitted.get(raw)
    if permitted is None:
        # Granting the setting to a role came with PostgreSQL 15; before, only superusers.
        granted = (
            "has_parameter_privilege(current_user, 'session_replication_role', 'SET')"
            if connection.pg_version >= 150000
            else "false"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT rolsuper OR {granted} FROM pg_roles WHERE rolname = current_user"
            )
            row = cursor.fetchone()
        permitted = _permitted[raw] = bool(row and row[0])
        if not permitted:
            logger.info(
                "Bulk writes check foreign keys row by row: the database role may not set "
                "session_replication_role (see README, 'PostgreSQL settings')."
            )
    return permitted


@contextlib.contextmanager
def row_checks_off() -> Iterator[bool]:
    """Inside (a transaction), rows written skip PostgreSQL's per-row trigger checks; yields
    whether they do. The caller has locked what they refer to with `lock_referenced` (or
    created it, or locked it FOR UPDATE, in this transaction). An error inside leaves the
    setting to the rollback, which undoes it."""
    if not connection.in_atomic_block:
        raise RuntimeError("row_checks_off() needs a transaction.")
    if not row_checks_can_be_skipped():
        yield False
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
    try:
        yield True
    except BaseException:
        # Put back if the transaction goes on; if it has failed, its rollback puts it back.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = origin")
        raise
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = origin")


def lock_referenced(table: str, ids: Iterable[int], *, column: str = "id") -> None:
    """Locks the rows of `table` whose `column` is in `ids` FOR KEY SHARE, as the per-row
    foreign-key check would, in one statement; raises IntegrityError naming the missing ones.
    Only where `row_checks_off()` takes effect: otherwise the per-row checks do this."""
    wanted = {i for i in ids if i is not None}
    if not wanted or not row_checks_can_be_skipped():
        return
    with connection.cursor() as cursor:
        # In key order, as concurrent writers lock them.
        cursor.execute(
            f'SELECT "{column}" FROM {table} WHERE "{column}" = ANY(%s) '
            f'ORDER BY "{column}" FOR KEY SHARE',
            [sorted(wanted)],
        )
        found = {row[0] for row in cursor.fetchall()}
    missing = wanted - found
    if missing:
        shown = ", ".join(str(i) for i in sorted(missing)[:10])
        raise IntegrityError(f"{table}: no row with {column} {shown} (referenced by a bulk write).")
