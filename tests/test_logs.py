"""The health check and the logs: /healthz says whether the database answers and
has this program's schema; every log line is one JSON object with the request's
id, and the id is in the answer so a line can be found from a complaint."""
from __future__ import annotations

import io
import json
import logging

import pytest
from sqlalchemy import text

from kiosk.app.extensions import db
from kiosk.app.logs import configure_logging
from kiosk.storage.migrations import code_schema_heads


@pytest.fixture
def log_lines(monkeypatch):
    """Our logging set up as a server sets it up, written to a buffer; undone after."""
    monkeypatch.delenv("KIOSK_LOG_FILE", raising=False)  # not into the run's watched file (log_watch)
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    for handler in [h for h in root.handlers if getattr(h, "_kodomat_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_health_says_the_database_answers_with_this_programs_schema(app, client, backend):
    answer = client.get("/healthz")

    body = answer.get_json()
    assert answer.status_code == 200 and body["status"] == "ok"
    assert body["database"]["backend"] == backend and body["database"]["reachable"] is True
    assert body["database"]["schema"] == body["database"]["schema_expected"] == sorted(code_schema_heads())


def test_health_refuses_a_database_behind_the_program(app, client):
    (current,) = code_schema_heads()
    db.session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    db.session.commit()
    try:
        answer = client.get("/healthz")
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
        db.session.commit()

    assert answer.status_code == 503
    assert answer.get_json()["status"] == "database schema out of date"
    assert answer.get_json()["database"]["schema"] == ["0001"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_health_says_when_the_database_is_gone(app, client, database_url):
    db.engine.dispose()
    path = database_url.removeprefix("sqlite:///")
    with open(path, "wb") as damaged:  # what a disk fault or a bad restore leaves
        damaged.write(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        try:
            open(path + suffix, "wb").close()
        except OSError:
            pass

    answer = client.get("/healthz")

    assert answer.status_code == 503
    assert answer.get_json() == {"status": "database unreachable",
                                 "database": {"backend": "sqlite", "reachable": False}}


def test_the_schema_heads_read_from_files_are_alembics():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from kiosk.app.factory import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert code_schema_heads() == set(ScriptDirectory.from_config(config).get_heads())


def test_each_request_gets_an_id_in_its_log_lines_and_its_answer(app, client, log_lines):
    @app.get("/test/log-something")
    def log_something():
        logging.getLogger("kiosk.test").warning("something happened", extra={"kiosk_id": 7})
        return "ok"

    answer = client.get("/test/log-something?card=31415926535&pin=2718")

    request_id = answer.headers["X-Request-Id"]
    assert len(request_id) == 32
    lines = [line for line in log_lines() if line.get("request_id") == request_id]
    said = next(line for line in lines if line["logger"] == "kiosk.test")
    assert said["message"] == "something happened" and said["level"] == "WARNING" and said["kiosk_id"] == 7
    access = next(line for line in lines if line["logger"] == "kiosk.http")
    assert (access["method"], access["path"], access["status"]) == ("GET", "/test/log-something", 200)
    assert isinstance(access["ms"], float)
    everything = "\n".join(json.dumps(line) for line in log_lines())
    assert "31415926535" not in everything and "2718" not in everything  # a query string is never logged


def test_a_proxys_request_id_is_kept_only_behind_a_trusted_proxy(app, client):
    given = "0123456789abcdef0123456789abcdef"

    assert client.get("/healthz", headers={"X-Request-Id": given}).headers["X-Request-Id"] != given
    app.config["TRUST_PROXY"] = True
    assert client.get("/healthz", headers={"X-Request-Id": given}).headers["X-Request-Id"] == given
    forged = client.get("/healthz", headers={"X-Request-Id": 'x", "level": "INFO'}).headers["X-Request-Id"]
    assert len(forged) == 32 and '"' not in forged


def test_an_exception_is_one_line_with_its_traceback(app, client, log_lines):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/test/fail")
    def fail():
        raise RuntimeError("a bug, logged whole")

    answer = client.get("/test/fail")

    assert answer.status_code == 500
    failed = next(line for line in log_lines() if line["level"] == "ERROR")
    assert failed["request_id"] == answer.headers["X-Request-Id"]
    assert "RuntimeError: a bug, logged whole" in failed["exception"] and "Traceback" in failed["exception"]


def test_text_logs_for_a_person_at_a_terminal(monkeypatch, log_lines):
    buffer = io.StringIO()
    monkeypatch.setenv("KIOSK_LOG_FORMAT", "text")
    configure_logging(stream=buffer)

    logging.getLogger("kiosk.test").warning("plain words")

    assert "WARNING kiosk.test [None] plain words" in buffer.getvalue()


def test_a_kiosk_enrolment_link_never_reaches_the_log(app, client, log_lines):
    from helpers import make_library, new_kiosk

    token = new_kiosk(make_library()).token

    answer = client.get(f"/kiosk/enrol/{token}")

    assert answer.status_code == 200
    access = [line for line in log_lines() if line["logger"] == "kiosk.http"]
    assert access[-1]["path"] == "/kiosk/enrol/***"
    assert token not in "\n".join(json.dumps(line) for line in log_lines())
