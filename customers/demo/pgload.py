"""PostgreSQL schema work around a bulk load: drop secondary indexes and constraints, restore them.

Loading 25 million rows into tables with their indexes and foreign keys in place costs an index
insertion per index and a trigger per foreign key for every row; building each index once after
the load, and validating each foreign key with one join, is several times faster. What is dropped
is captured first from the catalogue (``pg_get_indexdef`` / ``pg_get_constraintdef``) and
recreated exactly, under the same names, so Django's migration state stays true.

Kept in place: primary keys, and anything another table's foreign key depends on.

No Django: functions take psycopg2 connection parameters, so they run from threads (indexes are
rebuilt on several connections at once) and from the benchmark harness.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql

# Session settings for index builds and foreign-key validation (which uses maintenance_work_mem
# as its work_mem): sorts of 10-25 million keys then run in memory instead of spilling.
MAINTENANCE_SQL = (
    "SET maintenance_work_mem = '1GB'",
    "SET max_parallel_maintenance_workers = 2",
)


@dataclass
class SavedSchema:
    """Secondary indexes and constraints of some tables, as the statements that recreate them.

    They are restored in phases, each on several connections at once: ``alters`` (per table: one
    ALTER TABLE adding all its CHECK constraints, so one scan checks them all), ``indexes`` (each
    its own job: builds on the same table take locks that do not conflict), ``attaches`` (unique
    constraints attached to their rebuilt indexes: instant), then foreign keys, added NOT VALID
    and validated separately (validation locks only the referencing table against other
    validations, so several run at once).
    """

    alters: dict[str, list[str]] = field(default_factory=dict)  # per table, run in order
    indexes: list[tuple[str, str]] = field(default_factory=list)  # (table, CREATE INDEX ...)
    attaches: list[str] = field(default_factory=list)
    foreign_keys: list[tuple[str, str]] = field(default_factory=list)  # (add, validate or "")
    drops: list[str] = field(default_factory=list)

    def statements(self) -> list[str]:
        """Every restoring statement, in a valid order (for a manual recovery script)."""
        out = [s for table in self.alters.values() for s in table]
        out += [index for _, index in self.indexes]
        out += self.attaches
        for add, validate in self.foreign_keys:
            out += [add, validate] if validate else [add]
        return out

    def is_empty(self) -> bool:
        return not self.drops


def connect(conn_params: dict):
    """An autocommit psycopg2 connection."""
    conn = psycopg2.connect(**conn_params)
    conn.autocommit = True
    return conn


@contextmanager
def session(conn_params: dict) -> Iterator:
    """A cursor on a fresh autocommit connection, closed afterwards."""
    conn = connect(conn_params)
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def capture(cursor, tables: Iterable[str]) -> SavedSchema:
    """Read the secondary indexes and constraints of ``tables`` (none is changed)."""
    tables = list(tables)
    saved = SavedSchema(alters={t: [] for t in tables})
    checks: dict[str, list[str]] = {t: [] for t in tables}
    # Indexes another table's foreign key depends on stay (PostgreSQL would refuse to drop them).
    cursor.execute(
        """
        SELECT rel.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
               con.conindid, pg_get_indexdef(con.conindid), idx.relname, con.condeferrable,
               con.convalidated
        FROM pg_constraint con
        JOIN pg_class rel ON rel.oid = con.conrelid
        LEFT JOIN pg_class idx ON idx.oid = con.conindid
        WHERE rel.relname = ANY(%s) AND rel.relnamespace = current_schema()::regnamespace
          AND con.contype IN ('u', 'c', 'f', 'x')
          AND NOT (con.contype IN ('u', 'x') AND EXISTS (
                SELECT 1 FROM pg_constraint fk WHERE fk.contype = 'f'
                AND fk.conindid = con.conindid))
        ORDER BY rel.relname, con.contype, con.conname
        """,
        [tables],
    )
    fk_drops, other_drops = [], []
    for table, name, kind, definition, _indid, indexdef, index_name, deferrable, valid in cursor:
        t, n = sql.Identifier(table), sql.Identifier(name)
        drop = _sql(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(t, n), cursor)
        add = _sql(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(t, n), cursor) + definition
        if kind == "f":
            fk_drops.append(drop)
            if valid and not definition.endswith("NOT VALID"):
                validate = _sql(
                    sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(t, n), cursor
                )
                saved.foreign_keys.append((add + " NOT VALID", validate))
            else:
                saved.foreign_keys.append((add, ""))
        elif kind == "c":
            other_drops.append(drop)
            checks[table].append(_sql(sql.SQL("ADD CONSTRAINT {} ").format(n), cursor) + definition)
        elif kind == "u" and not deferrable and index_name:
            # Build the index like any other (in parallel, under a light lock), then attach it.
            other_drops.append(drop)
            saved.indexes.append((table, indexdef))
            saved.attaches.append(
                _sql(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE USING INDEX {}").format(
                        t, n, sql.Identifier(index_name)
                    ),
                    cursor,
                )
            )
        else:  # deferrable unique or exclusion constraints: recreated as they were
            other_drops.append(drop)
            saved.alters[table].append(add)
    cursor.execute(
        """
        SELECT tbl.relname, idx.relname, pg_get_indexdef(idx.oid)
        FROM pg_index x
        JOIN pg_class idx ON idx.oid = x.indexrelid
        JOIN pg_class tbl ON tbl.oid = x.indrelid
        WHERE tbl.relname = ANY(%s) AND tbl.relnamespace = current_schema()::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid
                          AND con.conrelid = x.indrelid)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint fk WHERE fk.contype = 'f'
                          AND fk.conindid = x.indexrelid)
        ORDER BY tbl.relname, idx.relname
        """,
        [tables],
    )
    for table, index_name, indexdef in cursor:
        other_drops.append(
            _sql(sql.SQL("DROP INDEX {}").format(sql.Identifier(index_name)), cursor)
        )
        saved.indexes.append((table, indexdef))
    for table, parts in checks.items():
        if parts:
            alter = _sql(sql.SQL("ALTER TABLE {} ").format(sql.Identifier(table)), cursor)
            saved.alters[table].insert(0, alter + ", ".join(parts))
    saved.drops = fk_drops + other_drops
    return saved


def drop(cursor, saved: SavedSchema) -> None:
    """Drop what ``capture`` saw (foreign keys first). Run it in one transaction."""
    for statement in saved.drops:
        cursor.execute(statement)


def restore(
    conn_params: dict,
    saved: SavedSchema,
    *,
    connections: int = 2,
    log: Callable[[str], None] = lambda _: None,
) -> list[tuple[str, str]]:
    """Recreate everything in ``saved`` on ``connections`` parallel connections.

    Returns the statements that failed with their errors (empty when all is restored): a
    failure does not stop the others, so as much as possible is back in place.
    """
    failures: list[tuple[str, str]] = []
    with session(conn_params) as cursor:
        cursor.execute(
            "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(%s) "
            "AND relnamespace = current_schema()::regnamespace",
            [list({table for table, _ in saved.indexes} | set(saved.alters))],
        )
        size = dict(cursor.fetchall())
    alters = [stmts for _, stmts in sorted(saved.alters.items(), key=lambda i: -size.get(i[0], 0))]
    _run_parallel(conn_params, [a for a in alters if a], connections, failures, log)
    # The longest builds first, so that the last one to finish is a short one.
    indexes = sorted(saved.indexes, key=lambda item: -size.get(item[0], 0))
    _run_parallel(conn_params, [[index] for _, index in indexes], connections, failures, log)
    _run_parallel(conn_params, [[s] for s in saved.attaches], connections, failures, log)
    adds = [[add] for add, _ in saved.foreign_keys]
    _run_parallel(conn_params, adds, 1, failures, log)
    validations = [[v] for _, v in saved.foreign_keys if v]
    _run_parallel(conn_params, validations, connections, failures, log)
    return failures


def _run_parallel(conn_params, jobs, connections, failures, log) -> None:
    """Run each job (a list of statements, in order) on one of ``connections`` threads.

    Every statement that fails, or never ran because no connection could be opened, ends up in
    ``failures``; nothing is silently skipped.
    """
    if not jobs:
        return
    pending = list(jobs)
    lock = threading.Lock()
    errors: list[str] = []

    def work() -> None:
        try:
            conn = connect(conn_params)
        except psycopg2.Error as exc:
            errors.append(str(exc).strip())
            return
        try:
            with conn.cursor() as cursor:
                for statement in MAINTENANCE_SQL:
                    cursor.execute(statement)
                while True:
                    with lock:
                        if not pending:
                            return
                        job = pending.pop(0)
                    for statement in job:
                        try:
                            cursor.execute(statement)
                        except Exception as exc:
                            with lock:
                                failures.append((statement, str(exc).strip()))
                            continue
                        with suppress(Exception):  # a broken log must not stop the restore
                            log(statement)
        finally:
            conn.close()

    threads = [
        threading.Thread(target=work, daemon=True) for _ in range(min(connections, len(jobs)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reason = f"not run: {errors[0]}" if errors else "not run"
    failures.extend((statement, reason) for job in pending for statement in job)


def vacuum_analyze(conn_params: dict, tables: Iterable[str], *, connections: int = 2) -> None:
    """VACUUM (ANALYZE) the tables, several at once.

    ANALYZE gives the planner statistics for the new rows; VACUUM marks the pages all-visible
    (index-only scans) now, rather than autovacuum doing it later in the middle of whatever runs
    next. After an index rebuild it is quick: the builds' scans have already set hint bits.
    """
    jobs = [[_ident("VACUUM (ANALYZE) {}", t)] for t in tables]
    failures: list[tuple[str, str]] = []
    _run_parallel(conn_params, jobs, connections, failures, lambda _: None)
    if failures:
        raise psycopg2.DatabaseError("; ".join(f"{s}: {e}" for s, e in failures))


def reset_sequence(cursor, table: str, column: str = "id") -> None:
    """Point the table's id sequence past the largest id, so ORM inserts continue after it."""
    cursor.execute(
        sql.SQL(
            "SELECT setval(pg_get_serial_sequence(%s, %s), "
            "COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false)"
        ).format(c=sql.Identifier(column), t=sql.Identifier(table)),
        [table, column],
    )


def next_id(cursor, table: str, column: str = "id") -> int:
    """The first id free of both existing rows and ids the sequence already handed out."""
    cursor.execute(
        sql.SQL("SELECT COALESCE(MAX({c}), 0) FROM {t}").format(
            c=sql.Identifier(column), t=sql.Identifier(table)
        )
    )
    largest = cursor.fetchone()[0]
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
    sequence = cursor.fetchone()[0]
    if sequence:
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # a regclass name
        last_value, is_called = cursor.fetchone()
        largest = max(largest, last_value if is_called else last_value - 1)
    return largest + 1


def count_up_to(cursor, table: str, limit: int) -> int:
    """Rows in a table, counting no further than ``limit`` (cheap on big tables)."""
    cursor.execute(
        sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) AS rows").format(
            sql.Identifier(table)
        ),
        [limit],
    )
    return cursor.fetchone()[0]


def schema_snapshot(cursor, tables: Iterable[str]) -> set[tuple]:
    """Indexes and constraints of ``tables`` with their definitions (for before/after checks)."""
    tables = list(tables)
    cursor.execute(
        "SELECT 'index', tablename, indexname, indexdef FROM pg_indexes "
        "WHERE tablename = ANY(%s) AND schemaname = current_schema()",
        [tables],
    )
    rows = set(cursor.fetchall())
    cursor.execute(
        """
        SELECT 'constraint', rel.relname, con.conname,
               pg_get_constraintdef(con.oid) || ' valid=' || con.convalidated::text
        FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
        WHERE rel.relname = ANY(%s) AND rel.relnamespace = current_schema()::regnamespace
        """,
        [tables],
    )
    rows |= set(cursor.fetchall())
    return rows


def _sql(composed, cursor) -> str:
    return composed.as_string(cursor)


def _ident(template: str, name: str) -> sql.Composed:
    return sql.SQL(template).format(sql.Identifier(name))
