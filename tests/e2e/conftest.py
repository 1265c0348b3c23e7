"""End-to-end fixtures: the real app served by waitress on 127.0.0.1, a receipt
printer listening on a socket, and Debian's Chromium driven by Playwright."""
from __future__ import annotations

import shutil
import socket
import threading
from dataclasses import dataclass, field

import pytest
from waitress.server import create_server

from factories import codes, make_app, make_library, make_pool
from kiosk.clock import local_day, month_window, utcnow
from sqlalchemy import select

from kiosk.extensions import db
from kiosk.models import Library
from kiosk.kiosks import enrol_kiosk
from tools import axe_script, chromium_path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class PrinterServer:
    """A receipt printer on 127.0.0.1 that keeps every job it receives."""

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

    def job(self, number: int) -> bytes:
        """The number-th job (1-based), once the printer has read all of it."""
        import time

        deadline = time.monotonic() + 10
        while len(self.jobs) < number and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.jobs) >= number, f"the printer got {len(self.jobs)} jobs, not {number}"
        return self.jobs[number - 1]

    def close(self):
        self.running = False
        self.thread.join(timeout=5)
        self.server.close()


@dataclass
class Site:
    app: object
    url: str
    printer: PrinterServer
    enrol_link: str = ""
    pool_codes: list[str] = field(default_factory=list)


@pytest.fixture
def site(tmp_path, sqlite_template):
    """The app on a fresh SQLite file, a library with a 3-code pool for this month,
    and a kiosk printing to the test printer, enrolled by the returned link."""
    path = tmp_path / "e2e.db"
    shutil.copy(sqlite_template, path)
    app = make_app(f"sqlite:///{path}", tmp_path)
    printer = PrinterServer()
    with app.app_context():
        library = make_library("e2e", slip_header="Biblioteka Publiczna w Łomiankach")
        library.kiosk_idle_seconds = 30
        today = local_day(utcnow())
        pool_codes = codes("E2E", 3)
        make_pool(library, pool_codes, month_window(today.year, today.month))
        enrolment = enrol_kiosk(db.session, library=library, name="Hol", actor="test", now=utcnow(),
                                printer=f"escpos-tcp:127.0.0.1:{printer.port}")
        token = enrolment.token
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}"
    yield Site(app=app, url=url, printer=printer, enrol_link=f"{url}/kiosk/enrol/{token}",
               pool_codes=pool_codes)
    server.close()
    printer.close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def staff_page(browser, site):
    """A library admin of the e2e library, signed in through the login page."""
    from kiosk.accounts import create_user

    with site.app.app_context():
        library = db.session.scalar(select(Library).where(Library.slug == "e2e"))
        _user, password = create_user(db.session, username="ania", role="library_admin", library_id=library.id,
                                      actor="test", now=utcnow())
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{site.url}/login")
    page.fill("#username", "ania")
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_selector("#issue-form")
    page.console_errors = errors
    page.route("**/__axe.min.js", lambda route: route.fulfill(body=axe_script(), content_type="text/javascript"))
    yield page
    context.close()


def axe_violations(page) -> list:
    """axe-core's violations on the page, injected as a same-origin script so the
    Content-Security-Policy stays on."""
    page.add_script_tag(url="/__axe.min.js")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in result["violations"]]


def enrol(page, link: str) -> None:
    """Opens a kiosk's enrolment link and presses its button."""
    page.goto(link)
    page.click("#enrol-button")


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def kiosk_page(browser, site):
    """A kiosk screen, enrolled, on the idle screen."""
    context = browser.new_context(viewport={"width": 1080, "height": 1500})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    enrol(page, site.enrol_link)
    page.wait_for_selector("#screen.idle")
    page.console_errors = errors
    yield page
    context.close()
