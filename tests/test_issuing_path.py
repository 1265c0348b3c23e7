"""The issuing path near the storage floor (issue 13): settings kept per process
and dropped when another process changes them, a kiosk scan in one issuing
transaction plus one read, SQLite's write lock only for the part that needs it,
durable commits, and a connection the server dropped survived."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.orm import Session

from helpers import TEST, codes, issue, kiosk_scan, make_library, make_pool, this_month, token_of, warsaw, write
from kiosk.app.extensions import db
from kiosk.domain.clock import utcnow
from kiosk.domain.issuing import Outcome
from kiosk.domain.kiosks import revoke_kiosk
from kiosk.domain.rules import parse_changes, save_rules
from kiosk.storage.database import configure_engine, run_in_transaction, take_write_lock
from kiosk.storage.models import Event, Issuance

JANUARY_2020 = (warsaw(2020, 1, 1).date(), warsaw(2020, 1, 31).date())


def other_process(url: str) -> Session:
    """A session of its own engine: what another worker or the command line sees."""
    return Session(configure_engine(create_engine(url)))


def test_a_change_made_by_another_process_is_seen_at_the_next_issue(app, database_url):
    library = make_library()
    make_pool(library, codes("JAN", 5), JANUARY_2020)
    assert issue(app, "1001", warsaw(2020, 1, 10, 9)).outcome is Outcome.ISSUED  # the settings are cached now

    elsewhere = other_process(database_url)
    try:
        parsed = parse_changes({"min_age": "13"})
        run_in_transaction(elsewhere, lambda s: save_rules(s, library.id, parsed, TEST, utcnow()))
    finally:
        elsewhere.close()
        elsewhere.get_bind().dispose()

    refused = issue(app, "1002", warsaw(2020, 1, 10, 9))
    assert refused.outcome is Outcome.NOT_ELIGIBLE
    assert refused.ineligible.reason == "no_data"  # the new age rule, with no birth dates known


def test_an_operators_sql_on_a_cached_table_is_seen_too(app):
    """Triggers replace the version, whoever writes: raw SQL on the connection here."""
    library = make_library()
    make_pool(library, codes("JAN", 5), JANUARY_2020)
    assert issue(app, "1001", warsaw(2020, 1, 10, 9)).outcome is Outcome.ISSUED

    write(lambda s: s.connection().execute(text("UPDATE libraries SET card_pattern = '[0-9]{8}' WHERE id = :id"),
                                           {"id": library.id}))
    refused = issue(app, "1002", warsaw(2020, 1, 10, 9))
    assert refused.outcome is Outcome.CARD_REFUSED and refused.reason == "format"

    write(lambda s: s.connection().execute(text("DELETE FROM pools WHERE 1 = 0")))  # touches nothing
    write(lambda s: s.connection().execute(text("UPDATE libraries SET card_pattern = NULL")))
    assert issue(app, "1003", warsaw(2020, 1, 10, 9)).outcome is Outcome.ISSUED


def test_a_connection_lost_at_commit_is_not_tried_again(app, monkeypatch):
    """The commit may have reached the database: doing the work twice could count a
    print twice or redeem a link twice, so the error goes up instead."""
    from sqlalchemy.exc import OperationalError
    make_library()
    runs = []

    def lost_at_commit(session):
        runs.append(1)
        session.add(Event(at=utcnow(), actor="once", kind="settings", details="{}"))
        session.flush()
        error = OperationalError("COMMIT", {}, Exception("server closed the connection"))
        error.connection_invalidated = True
        monkeypatch.setattr(session, "commit", lambda: (_ for _ in ()).throw(error))
        return "done"

    with pytest.raises(OperationalError):
        run_in_transaction(db.session, lost_at_commit)
    monkeypatch.undo()
    assert len(runs) == 1


def test_a_kiosk_scan_is_one_issuing_transaction_plus_one_read(app, enrolled_kiosk, backend):
    library = make_library()
    make_pool(library, codes("C", 20), this_month())
    client, _ = enrolled_kiosk(library)
    assert b"C0" in kiosk_scan(client, "20000001").data  # the settings are read once here

    token = token_of(client, "/kiosk/")  # the idle page, read before counting
    statements: list[str] = []
    listener = lambda conn, cursor, statement, params, context, many: statements.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        answer = client.post("/kiosk/scan", data={"card": "20000002", "lang": "pl", "entry": "scan",
                                                  "csrf_token": token}, headers={"HX-Request": "true"})
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert answer.status_code == 200 and b"C0" in answer.data
    words = [" ".join(statement.split()[:2]).upper() for statement in statements]
    reads_before = words[:words.index("BEGIN IMMEDIATE")] if backend == "sqlite" else []
    # The settings version, then the issuing transaction: the pause, the reader's
    # history, the claim, the issuance, its event and the kiosk's count.
    assert words[:2] == ["BEGIN DEFERRED", "SELECT CONSORTIUM.SETTINGS_VERSION"] or backend != "sqlite", words
    assert sum(word.startswith("SELECT CONSORTIUM") for word in words) == 1, words
    assert sum(1 for word in words if word.startswith(("INSERT", "UPDATE", "DELETE"))) == 4, words
    assert len(statements) <= 12, statements
    if backend == "sqlite":
        # The read part of the issuing transaction, then the write lock, taken once.
        assert [word for word in words if word.startswith("BEGIN")] == ["BEGIN DEFERRED", "BEGIN IMMEDIATE"]
        assert not any(word.startswith(("INSERT", "UPDATE")) for word in reads_before)


def test_a_kiosk_revoked_by_another_process_stops_at_its_next_scan(app, enrolled_kiosk, database_url):
    """The scan trusts the process's last copy of the settings only until its own
    transaction reads them again, with the kiosk's enrolment."""
    library = make_library()
    make_pool(library, codes("C", 20), this_month())
    client, enrolment = enrolled_kiosk(library)
    token = token_of(client, "/kiosk/")
    assert b"C0" in kiosk_scan(client, "20000001").data

    elsewhere = other_process(database_url)
    try:
        run_in_transaction(elsewhere, lambda s: revoke_kiosk(s, enrolment.kiosk.id, TEST, utcnow()))
    finally:
        elsewhere.close()
        elsewhere.get_bind().dispose()

    answer = client.post("/kiosk/scan", data={"card": "20000002", "lang": "pl", "entry": "scan",
                                              "csrf_token": token}, headers={"HX-Request": "true"})
    assert answer.status_code == 403
    assert db.session.scalar(select(Issuance.id).where(Issuance.card_hint == "0002")) is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_commits_are_durable(app):
    assert db.session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL: a power cut loses no slip
    db.session.rollback()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_write_before_the_write_lock_is_refused(app):
    make_library()

    def careless(session):
        session.add(Event(at=utcnow(), actor="x", kind="settings", details="{}"))
        session.flush()
        take_write_lock(session)

    with pytest.raises(RuntimeError, match="without the lock"):
        run_in_transaction(db.session, careless, late_lock=True)
    assert db.session.scalar(select(Event.id).where(Event.actor == "x")) is None  # rolled back, nothing kept


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_connection_the_server_dropped_is_replaced(app, enrolled_kiosk, database_url):
    library = make_library()
    make_pool(library, codes("C", 20), this_month())
    client, _ = enrolled_kiosk(library)
    token = token_of(client, "/kiosk/")
    assert b"C0" in kiosk_scan(client, "20000001").data
    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()  # the pool's one connection
    db.session.rollback()

    killer = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with killer.begin() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    killer.dispose()

    answer = client.post("/kiosk/scan", data={"card": "20000002", "lang": "pl", "entry": "scan",
                                              "csrf_token": token}, headers={"HX-Request": "true"})
    assert answer.status_code == 200 and b"C0" in answer.data
    assert db.session.scalar(select(Issuance.id).where(Issuance.card_hint == "0002")) is not None


def test_every_cached_table_has_its_triggers(app, backend):
    """The snapshot is only as fresh as these triggers: a later migration that
    rebuilds a table (SQLite's batch mode drops its triggers) must make them again."""
    if backend == "sqlite":
        names = set(db.session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
        expected = {f"settings_changed_{table}_{change}" for table in CACHED for change in ("insert", "update", "delete")}
        expected.add("settings_changed_consortium")
    else:
        names = {f"{table}.{name}" for table, name in db.session.execute(text(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"))}
        expected = ({f"{table}.settings_changed" for table in CACHED + ("consortium",)}
                    | {f"{table}.settings_truncated" for table in CACHED})
    db.session.rollback()
    assert expected <= names, sorted(expected - names)


CACHED = ("libraries", "platforms", "rule_sets", "sip2_settings", "closed_days", "kiosks", "pools")
