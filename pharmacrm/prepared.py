"""Server-side prepared statements for the hottest fixed queries, on PostgreSQL.

PostgreSQL plans every statement it is sent; for the small lookups of an API request the plan
costs more than the run (the checkout's customer facts: 0.25 ms planning, 0.13 ms execution).
`execute_prepared` sends `PREPARE` once per database connection and statement, then only
`EXECUTE` with the values, and PostgreSQL reuses the plan (a generic one after five runs, when it
is no worse). Prepared statements belong to the session, not the transaction: a rollback keeps
them, a new connection starts without them. Elsewhere (SQLite) the statement simply runs.

A value that decides which index can serve the query (a partial index's condition) belongs in
the text, not in a parameter: a generic plan cannot see it (`loyalty.orders` writes the channel
into its order-number check for this reason). Check a new statement's plan with
`SET plan_cache_mode = force_generic_plan`.
"""

from __future__ import annotations

import itertools
import re
import threading
import weakref

from django.db import connection

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s")
_names: dict[str, tuple[str, tuple[str, ...] | int]] = {}  # SQL -> (name, parameter order)
_counter = itertools.count(1)
_lock = threading.Lock()
# Raw connection -> the names prepared on it (gone with the connection).
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def execute_prepared(cursor, sql: str, params: dict | list | tuple) -> None:
    """cursor.execute(sql, params) through a prepared statement on PostgreSQL. `sql` takes
    either `%(name)s` or `%s` placeholders (not both; no literal `%`), and must give each one
    a type from its context (the column it is compared to or written into, or a cast), as
    PREPARE needs. Its text is the statement's identity: one text per query shape, not one per
    call (arrays, not IN lists of varying length)."""
    if connection.vendor != "postgresql":
        cursor.execute(sql, params)
        return
    name, order = _statement(sql)
    raw = connection.connection
    done = _prepared.get(raw)
    if done is None:
        done = _prepared[raw] = set()
    if name not in done:
        if isinstance(order, tuple):  # named: $n for the name's place in `order`
            numbers = {key: i for i, key in enumerate(order, 1)}
            text = _PLACEHOLDER.sub(lambda m: f"${numbers[m.group(1)]}", sql)
        else:  # positional: $1, $2, ... in turn
            counter = itertools.count(1)
            text = _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)
        cursor.execute(f"PREPARE {name} AS {text}")
        done.add(name)
    values = [params[key] for key in order] if isinstance(order, tuple) else list(params)
    if not values:
        cursor.execute(f"EXECUTE {name}")
        return
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(values))})", values)


def _statement(sql: str) -> tuple[str, tuple[str, ...] | int]:
    known = _names.get(sql)
    if known is not None:
        return known
    with _lock:
        known = _names.get(sql)
        if known is None:
            found = _PLACEHOLDER.findall(sql)  # the names; "" for each %s
            if all(found):
                order: tuple[str, ...] | int = tuple(dict.fromkeys(found))
            elif not any(found):
                order = len(found)
            else:
                raise ValueError("a prepared statement takes %(name)s or %s placeholders")
            known = _names[sql] = (f"pharmacrm_{next(_counter)}", order)
    return known
