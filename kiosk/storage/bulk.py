"""Bulk statements for imports of up to 100,000 rows, where the ORM's per-row work
would cost more than the database's. Everything runs on the session's own
connection, inside the unit of work's transaction
(kiosk.storage.database.run_in_transaction): a refused import leaves nothing.

- A list as a table (listed): SQLite's json_each over one JSON parameter,
  PostgreSQL's unnest over one array; one statement joins or inserts from it, with
  no parameter bound row by row.
- New rows of a table whose unique index may already hold some
  (insert_unless_taken): on SQLite one INSERT … SELECT from such a list, ON
  CONFLICT DO NOTHING; on PostgreSQL psycopg's COPY, the fastest way in.
- Rows of several columns (insert_rows): sqlite3's executemany, psycopg's COPY;
  changes to rows found by id (update_rows): executemany, or one UPDATE … FROM
  unnest on PostgreSQL.

Table and column names are the callers' constants, never input; the rows are data
and go as parameters (SQLite) or through COPY's own escaping (PostgreSQL)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Table, text
from sqlalchemy.orm import Session


BULK_CACHE_KIB = 64 * 1024


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


@contextmanager
def _roomy_cache(session: Session) -> Iterator[None]:
    """SQLite's page cache made bigger for one bulk statement, then as it was: random
    keys going into a unique index outgrow the default 2 MiB, and the dirty pages it
    cannot hold are spilled to the WAL mid-transaction (a register of 100,000 cards
    went in 3× slower)."""
    connection = session.connection().connection.driver_connection
    before = connection.execute("PRAGMA cache_size").fetchone()[0]
    connection.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA cache_size = {int(before)}")


def listed(session: Session, name: str, values: list[str]) -> tuple[str, dict]:
    """A FROM item that gives the values as rows, with their place in the list from 0:
    `{name}.value`, `{name}.key`. Returns (its SQL, its parameters)."""
    if _is_sqlite(session):
        return f"json_each(:{name}) AS {name}", {name: json.dumps(values)}
    return (f"(SELECT item.value, item.place - 1 AS key FROM unnest(CAST(:{name} AS VARCHAR[])) "
            f"WITH ORDINALITY AS item(value, place)) AS {name}"), {name: values}


def insert_unless_taken(session: Session, table: str, constants: dict[str, object], column: str,
                        values: list[str], unique: Sequence[str]) -> bool:
    """One row per value (in the list's order), each with the same constant columns.
    False when the unique index on `unique` already holds one of them: then some rows
    may be stored, and the caller must refuse so its transaction rolls back. The index
    finds a duplicate row by row, whatever the table's statistics say."""
    columns = ", ".join([*constants, column])
    if _is_sqlite(session):
        source, params = listed(session, "new_rows", values)
        given = ", ".join(f":{name}" for name in constants)
        # "WHERE true": SQLite's parser needs it between an INSERT's SELECT and its ON CONFLICT.
        with _roomy_cache(session):
            inserted = session.execute(text(
                f"INSERT INTO {table} ({columns}) SELECT {given}, new_rows.value FROM {source} WHERE true "
                f"ON CONFLICT ({', '.join(unique)}) DO NOTHING"), {**params, **constants}).rowcount
        return inserted == len(values)
    return _copy_unless_taken(session, table, columns, tuple(constants.values()), values)


def _copy_unless_taken(session: Session, table: str, columns: str, constants: tuple, values: list[str]) -> bool:
    import psycopg

    # COPY knows no ON CONFLICT: a duplicate fails it, so it runs in a savepoint that
    # the transaction survives, to name the duplicate after.
    connection = session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT bulk_insert")
        try:
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row((*constants, value))
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT bulk_insert")
            return False
        cursor.execute("RELEASE SAVEPOINT bulk_insert")
    return True


def _as_stored(session: Session, table: Table, columns: Sequence[str], rows: Iterable[tuple]) -> list[tuple]:
    """The rows with each value as its column's type binds it for this database (the
    ORM's own conversions: dates as text in SQLite, moments as naive UTC), a column
    at a time."""
    dialect = session.get_bind().dialect
    by_column: list = list(zip(*rows)) or [()] * len(columns)
    for index, name in enumerate(columns):
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            by_column[index] = map(processor, by_column[index])
    return list(zip(*by_column))


def insert_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Rows of the columns' values, as the ORM would take them."""
    names = ", ".join(columns)
    stored = _as_stored(session, table, columns, rows)
    connection = session.connection().connection.driver_connection
    if _is_sqlite(session):
        with _roomy_cache(session):
            connection.executemany(
                f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})", stored)
        return
    with connection.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in stored:
            copy.write_row(row)


def update_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Set columns of rows found by their id: each row is (id, *values), the values
    as the ORM would take them. SQLite: one UPDATE by rowid a row (executemany);
    PostgreSQL: one UPDATE joined with the rows given as arrays."""
    stored = _as_stored(session, table, ("id", *columns), rows)
    if not stored:
        return
    if _is_sqlite(session):
        assignments = ", ".join(f"{name} = ?" for name in columns)
        session.connection().connection.driver_connection.executemany(
            f"UPDATE {table.name} SET {assignments} WHERE id = ?", [(*values, key) for key, *values in stored])
        return
    dialect = session.get_bind().dialect
    arrays = ", ".join(f"CAST(:c{index} AS {table.c[name].type.compile(dialect)}[])"
                       for index, name in enumerate(("id", *columns)))
    assignments = ", ".join(f"{name} = given.{name}" for name in columns)
    by_column = list(zip(*stored))
    session.execute(text(
        f"UPDATE {table.name} SET {assignments} FROM unnest({arrays}) AS given(id, {', '.join(columns)}) "
        f"WHERE {table.name}.id = given.id"), {f"c{index}": list(values) for index, values in enumerate(by_column)})
