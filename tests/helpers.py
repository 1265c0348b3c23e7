"""Everything the tests share, in one module. Tests import from here only: never
from a test module, nor from a conftest (fixtures come from the conftests).

- the app and test data: make_app, IsolatedClient, warsaw, this_month, make_library,
  legimi, codes, xlsx_file, xls_file, csv_file, panel_file, make_pool, issue, counts;
- staff over HTTP: token_of, post, login, signed_in;
- the kiosk over HTTP: enrol_browser;
- a receipt printer on a socket: FakePrinter, and closed_port for one that is off;
- outside tools: PROJECT, require, require_command, chromium_path, axe_script;
- the browser (e2e): enrol, serve_axe, axe_violations.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import threading
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import func, select

from kiosk import create_app
from kiosk.app.extensions import db
from kiosk.domain.accounts import create_user
from kiosk.domain.actors import Actor
from kiosk.domain.clock import local_day, month_window, utcnow
from kiosk.domain.issuing import IssueResult, issue_code
from kiosk.domain.kiosks import Enrolment, enrol_kiosk
from kiosk.domain.libraries import add_library
from kiosk.domain.pool_files import prepare_pool
from kiosk.domain.pools import ImportReport, import_pool, preview_pool
from kiosk.domain.settings import parse_new_library
from kiosk.storage.database import run_in_transaction
from kiosk.storage.models import Channel, Code, Event, Library, Platform, Pool

PROJECT = Path(__file__).resolve().parent.parent
WARSAW = ZoneInfo("Europe/Warsaw")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- the app and test data -----------------------------------------------------

class IsolatedClient(FlaskClient):
    """Each request in an app context of its own, as in production: the test keeps
    one pushed for its own queries, and requests must not share its `g`."""

    def open(self, *args, **kwargs):
        db.session.commit()  # the test's own transaction must not hold SQLite's lock
        with self.application.app_context():
            return super().open(*args, **kwargs)


def make_app(url: str, instance: Path):
    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": url,
        "READER_PEPPER": "test-pepper",
        "SECRET_KEY": "test-secret",
    })
    app.test_client_class = IsolatedClient
    return app


def warsaw(*args) -> datetime:
    """A moment given in Warsaw wall-clock time."""
    return datetime(*args, tzinfo=WARSAW)


def this_month() -> tuple[date, date]:
    """The window of the current month, in Warsaw."""
    today = local_day(utcnow())
    return month_window(today.year, today.month)


TEST = Actor.system("test")


def write(work):
    """work(session) in the app's one unit of work, as every request and command does
    (what the test changed through the session itself is committed first)."""
    db.session.commit()
    return run_in_transaction(db.session, work)


def make_library(slug: str = "lib", **settings) -> Library:
    new = parse_new_library(slug=slug, name=f"Biblioteka {slug}", **settings)
    library_id = write(lambda s: add_library(s, new, actor=TEST, now=warsaw(2020, 1, 1, 8)).id)
    return db.session.get(Library, library_id)


def legimi() -> Platform:
    return db.session.scalar(select(Platform).where(Platform.slug == "legimi"))


def codes(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:06d}" for n in range(1, count + 1)]


def xlsx_file(rows: list[list]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xls_file(rows: list[list]) -> bytes:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Kody")
    date_style = xlwt.easyxf(num_format_str="DD.MM.YYYY")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, date):
                sheet.write(r, c, datetime(value.year, value.month, value.day), date_style)
            else:
                sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_file(rows: list[list], delimiter: str = ";", encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode(encoding)


def panel_file(values: list[str], window: tuple[date, date] | None = None) -> bytes:
    """An XLSX like the panel's export: a 'Kod' column, the window where given."""
    if window is None:
        return xlsx_file([["Kod"]] + [[v] for v in values])
    return xlsx_file([["Kod", "Ważny od", "Ważny do"]] + [[v, *window] for v in values])


def import_file(library: Library, data: bytes, *, window: tuple[date, date] | None = None,
                filename: str = "kody.xlsx", now: datetime | None = None, dry_run: bool = False,
                actor: Actor = TEST, platform: Platform | None = None) -> ImportReport:
    """Imports a pool file as the CLI and the panel do: read first, then one unit of
    work (or, with dry_run, every check and nothing written). Raises ImportRefused."""
    library_id, platform_id = library.id, (platform or legimi()).id
    prepared = prepare_pool(data, filename, window)
    if dry_run:
        return preview_pool(db.session, library_id=library_id, platform_id=platform_id, prepared=prepared)
    moment = now or utcnow()
    return write(lambda s: import_pool(s, library_id=library_id, platform_id=platform_id, prepared=prepared,
                                       actor=actor, now=moment))


def make_pool(library: Library, values: list[str], window: tuple[date, date],
              filename: str = "kody.xlsx", now: datetime | None = None) -> Pool:
    report = import_file(library, panel_file(values), window=window, filename=filename,
                         now=now or datetime.combine(window[0], datetime.min.time(), WARSAW))
    return db.session.get(Pool, report.pool_id)


def issue(app, card: str, at: datetime, library: str = "lib",
          channel: Channel = Channel.KIOSK) -> IssueResult:
    return write(lambda s: issue_code(s, library_slug=library, card_number=card, channel=channel,
                                      actor=TEST, now=at, pepper=app.config["READER_PEPPER"]))


def issue_in_parallel(app, shares: list[list], issue_one) -> list:
    """Many kiosks at once: one thread per share, each with its own engine (its own
    connection, as separate kiosks have), all starting together; each item of a share
    is issued in its own unit of work by issue_one(session, item, pepper) -> result.
    Returns (item, result) pairs in the order they finished."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from kiosk.storage.database import configure_engine

    db.session.commit()  # hold no lock while the workers run
    url, pepper = app.config["SQLALCHEMY_DATABASE_URI"], app.config["READER_PEPPER"]
    results: list = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(shares))
    lock = threading.Lock()

    def work(share: list) -> None:
        engine = configure_engine(create_engine(url))
        session = Session(engine)
        try:
            start.wait()
            for item in share:
                result = run_in_transaction(session, lambda s: issue_one(s, item, pepper))
                with lock:
                    results.append((item, result))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            session.close()
            engine.dispose()

    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    return results


def new_kiosk(library: Library, printer: str = "browser", name: str = "Hol") -> Enrolment:
    """A new kiosk of the library and its one-time link's token."""
    library_id = library.id
    return write(lambda s: enrol_kiosk(s, library_id=library_id, name=name, actor=TEST, now=utcnow(),
                                       printer=printer))


def counts() -> dict[str, int]:
    """What is stored, to show a refused operation left nothing behind."""
    return {
        "pools": db.session.scalar(select(func.count()).select_from(Pool)),
        "codes": db.session.scalar(select(func.count()).select_from(Code)),
        "events": db.session.scalar(select(func.count()).select_from(Event)),
    }


# -- staff over HTTP: the real login form, forms posted with their token -----------

def token_of(client, url: str = "/login") -> str:
    return TOKEN.search(client.get(url).get_data(as_text=True)).group(1)


def post(client, url: str, data: dict | None = None, token_from: str = "/login", **kwargs):
    return client.post(url, data={**(data or {}), "csrf_token": token_of(client, token_from)}, **kwargs)


def login(client, username: str, password: str):
    return post(client, "/login", {"username": username, "password": password})


def signed_in(app, role: str, library=None, username: str | None = None):
    """A test client signed in as a new user of that role (and library)."""
    name = username or f"{role.replace('_', '-')}-{library.slug if library else 'all'}"
    library_id = library.id if library else None
    user, password = write(lambda s: create_user(s, username=name, role=role, library_id=library_id, actor=TEST,
                                                 now=utcnow()))
    client = app.test_client()
    assert login(client, name, password).status_code == 302
    return client, user, password


# -- the kiosk over HTTP ------------------------------------------------------------

def kiosk_scan(client, card: str, **extra):
    """A card scanned at an enrolled kiosk's browser, as htmx posts it."""
    return client.post("/kiosk/scan", data={"card": card, "lang": "pl", "entry": "scan",
                                            "csrf_token": token_of(client, "/kiosk/"), **extra},
                       headers={"HX-Request": "true"})


def kiosk_carried(client, asked, field: str, **values):
    """A press on the kiosk screen `asked` (a response) whose form carries the card
    sealed in `field`: "choice" (with platform=...) or "pin_for" (with pin=...)."""
    carried = re.search(rf'name="{field}" value="([^"]+)"', asked.get_data(as_text=True))[1]
    return client.post("/kiosk/scan", data={field: carried, "lang": "pl", "csrf_token": token_of(client, "/kiosk/"),
                                            **values}, headers={"HX-Request": "true"})


def enrol_browser(client, token: str):
    """Opens the link, then presses the button, as an admin does on the kiosk."""
    page = client.get(f"/kiosk/enrol/{token}")
    if page.status_code != 200:
        return page
    csrf = TOKEN.search(page.get_data(as_text=True)).group(1)
    return client.post(f"/kiosk/enrol/{token}", data={"csrf_token": csrf})


# -- a receipt printer ----------------------------------------------------------------

class FakePrinter:
    """A receipt printer on 127.0.0.1 that keeps every job it receives (a job is
    all the bytes of one connection). Point a printer setting at
    f"escpos-tcp:127.0.0.1:{printer.port}"; close() it when done."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.jobs: list[bytes] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                job = b""
                while chunk := connection.recv(65536):
                    job += chunk
                self.jobs.append(job)

    def _wait_for(self, number: int, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while len(self.jobs) < number and time.monotonic() < deadline:
            time.sleep(0.05)

    def job(self, number: int) -> bytes:
        """The number-th job (1-based), once the printer has read all of it."""
        self._wait_for(number)
        assert len(self.jobs) >= number, f"the printer got {len(self.jobs)} jobs, not {number}"
        return self.jobs[number - 1]

    def wait(self) -> bytes:
        """The one job a test expects: its bytes once read (b"" if none came within
        10 s); the printer takes no more jobs after it."""
        self._wait_for(1)
        self.close()
        return self.jobs[0] if self.jobs else b""

    def close(self):
        self.running = False
        self.thread.join(timeout=5)
        self.server.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: a printer that is off."""
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    return port


# -- outside tools: missing ones skip the test with how to install them, and fail it in CI --

def require(found: bool, what: str, how: str) -> None:
    if found:
        return
    message = f"{what} is missing: {how}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run these tests)")
    pytest.skip(message)


def require_command(name: str, debian_package: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"`{name}`", f"apt-get install {debian_package}")
    return path


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "Chromium", "apt-get install chromium (or set CHROMIUM=/path/to/chrome)")
    return path


def axe_script() -> str:
    path = PROJECT / "node_modules" / "axe-core" / "axe.min.js"
    require(path.exists(), "axe-core", "npm ci (needs Node.js and npm)")
    return path.read_text()


# -- the browser (e2e, Playwright pages) --------------------------------------------------

def enrol(page, link: str) -> None:
    """Opens a kiosk's enrolment link and presses its button."""
    page.goto(link)
    page.click("#enrol-button")


def kiosk_ready(page, screen: str = "#screen.idle") -> None:
    """The screen is in, and htmx has taken over its scan form (as a reader's scanner
    would find it, a moment after the screen appears)."""
    page.wait_for_function("""(screen) => {
        const form = document.querySelector(screen + ' form.scan');
        return form && form['htmx-internal-data'] && form['htmx-internal-data'].initHash;
    }""", arg=screen)


def serve_axe(page) -> None:
    """Serves axe-core to the page at /__axe.min.js, on the page's own origin, for
    axe_violations."""
    page.route("**/__axe.min.js", lambda route: route.fulfill(body=axe_script(), content_type="text/javascript"))


def axe_violations(page) -> list:
    """axe-core's violations on the page, injected as a same-origin script so the
    Content-Security-Policy stays on. The page must have had serve_axe."""
    page.add_script_tag(url="/__axe.min.js")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in result["violations"]]


def serving(server) -> None:
    """waitress's loop, for a thread; server.close() from the test may close its socket
    under a select() in progress, which then fails with EBADF: the server has stopped,
    as the test asked, and nothing is left to do."""
    try:
        server.run()
    except OSError:
        pass
