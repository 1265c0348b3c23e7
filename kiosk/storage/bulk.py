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

Table and column names are the callers' constants, never input; the rows are data
and go as parameters (SQLite) or through COPY's own escaping (PostgreSQL)."""
from __future__ import annotations

import json
from typing import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


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
