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
from kiosk.extensions import db
from kiosk.kiosks import enrol_kiosk
from tools import chromium_path

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
