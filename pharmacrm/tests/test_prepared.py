"""execute_prepared: PREPARE once per connection and statement, then EXECUTE with the values."""

import pytest
from django.db import connection

from pharmacrm import prepared
from pharmacrm.prepared import execute_prepared

pytestmark = pytest.mark.django_db

# PREPARE types each parameter from its context: here, casts (valid SQL on SQLite too).
NAMED = "SELECT CAST(%(a)s AS integer) + CAST(%(b)s AS integer), CAST(%(a)s AS integer) * 10"
POSITIONAL = "SELECT CAST(%s AS integer) - CAST(%s AS integer)"
ARRAYS = "SELECT cardinality(%s::bigint[]), %s::bigint[]"


def run(sql, params):
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, params)
        return cursor.fetchone()


def server_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def test_named_and_positional_values_reach_their_placeholders():
    assert run(NAMED, {"b": 2, "a": 5}) == (7, 50)
    assert run(NAMED, {"a": 1, "b": 1}) == (2, 10)
    assert run(POSITIONAL, [9, 4]) == (5,)
    assert run(POSITIONAL, [1, 1]) == (0,)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="arrays: PostgreSQL")
def test_arrays_reach_their_placeholders():
    assert run(ARRAYS, [[1, 2, 3], [4]]) == (3, [4])
    assert run(ARRAYS, [[], []]) == (0, [])


@pytest.mark.django_db(transaction=True)  # it closes the connection
@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_a_statement_is_prepared_once_per_connection_and_again_on_a_new_one():
    run(NAMED, {"a": 1, "b": 2})
    run(NAMED, {"a": 3, "b": 4})
    name, _order = prepared._statement(NAMED)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [name])
        assert cursor.fetchone()[0] == 1
    assert any("CAST($1 AS integer) + CAST($2 AS integer)" in t for t in server_statements())

    # A new connection (Django reconnects after a close) has none: prepared again.
    connection.close()
    connection.ensure_connection()
    assert run(NAMED, {"a": 2, "b": 2}) == (4, 20)


def test_mixed_placeholders_are_refused():
    with pytest.raises(ValueError):
        prepared._statement("SELECT %s, %(a)s")
