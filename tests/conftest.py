"""Fixtures: an app on a fresh database per test, on SQLite and on PostgreSQL;
staff signed in, kiosks enrolled, a receipt printer on a socket.

PostgreSQL runs where TEST_DATABASE_URL names a server (each test session gets a
schema of its own there). Outside CI a missing URL skips those tests; in CI it
fails them, so CI can never pass without PostgreSQL.

Helpers (builders of test data and the like) are in helpers.py."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

import log_watch  # noqa: F401 - first: it notes the cards that become reader keys
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from helpers import FakePrinter, enrol_browser, make_app, new_kiosk, signed_in
from kiosk.storage.database import normalise_database_url
from kiosk.app.extensions import db
from kiosk.storage.models import Base

BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config) -> None:
    log_watch.watch_this_process()


@pytest.fixture(autouse=True)
def _log_watch():
    log_watch.watch_this_process()
SEED_PLATFORMS: list[dict] = []  # read from a freshly migrated database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    folder = tmp_path_factory.mktemp("template")
    path = folder / "template.db"
    app = make_app(f"sqlite:///{path}", folder)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set TEST_DATABASE_URL")
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL, e.g. postgresql://postgres@127.0.0.1:5432/test")
    base = normalise_database_url(url)
    schema = f"kodomat_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    scoped = f"{base}{separator}options=-csearch_path%3D{schema}"
    app = make_app(scoped, tmp_path_factory.mktemp("pg-instance"))
    with app.app_context():
        upgrade()
        # The platforms as the migrations made them, for every test to start with.
        SEED_PLATFORMS[:] = [dict(row._mapping) for row in db.session.execute(text(
            "SELECT slug, name, activation_url, slip_steps FROM platforms ORDER BY id"))]
        db.session.remove()
        db.engine.dispose()
    yield scoped
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _empty_postgres(app) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO platforms (slug, name, activation_url, slip_steps) "
                          "VALUES (:slug, :name, :activation_url, :slip_steps)"), SEED_PLATFORMS)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(request, backend, tmp_path, sqlite_template) -> str:
    if backend == "sqlite":
        path = tmp_path / "kodomat.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def app(backend, database_url, tmp_path):
    app = make_app(database_url, tmp_path)
    if backend == "postgresql":
        _empty_postgres(app)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# -- staff signed in, kiosks enrolled, a printer ---------------------------------------

def _signing_in(app, role: str):
    def sign_in(library):
        client, _user, _password = signed_in(app, role, library)
        return client
    return sign_in


@pytest.fixture
def signed_in_desk(app):
    """A function: library -> a test client signed in (through the login form) as
    a new desk user of that library. For the user and password, use signed_in."""
    return _signing_in(app, "desk")


@pytest.fixture
def signed_in_admin(app):
    """A function: library -> a test client signed in as a new library admin of it."""
    return _signing_in(app, "library_admin")


@pytest.fixture
def enrolled_kiosk(app):
    """A function: (library, printer="browser") -> (client, enrolment): a test client
    whose browser is enrolled, through the link and its button, as a new kiosk of
    that library printing to `printer`."""
    def enrolled(library, printer: str = "browser"):
        enrolment = new_kiosk(library, printer)
        client = app.test_client()
        assert enrol_browser(client, enrolment.token).status_code == 302
        return client, enrolment
    return enrolled


@pytest.fixture
def fake_printer():
    """A receipt printer listening on 127.0.0.1 (helpers.FakePrinter), closed after the test."""
    printer = FakePrinter()
    yield printer
    printer.close()
