"""End-to-end fixtures: the real app served by waitress on 127.0.0.1, a receipt
printer listening on a socket (the fake_printer fixture), and Debian's Chromium
driven by Playwright. Helpers for the tests (enrol, axe_violations, …) are in
tests/helpers.py."""
from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select
from waitress.server import create_server

from helpers import (TEST, new_kiosk, write, FakePrinter, chromium_path, codes, enrol, kiosk_ready, make_app, make_library, make_pool, serve_axe,
                     serving, this_month)
from kiosk.domain.clock import utcnow
from kiosk.app.extensions import db
from kiosk.storage.models import Library

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Site:
    app: object
    url: str
    printer: FakePrinter
    enrol_link: str = ""
    pool_codes: list[str] = field(default_factory=list)


@pytest.fixture
def site(tmp_path, sqlite_template, fake_printer):
    """The app on a fresh SQLite file, a library with a 3-code pool for this month,
    and a kiosk printing to the test printer, enrolled by the returned link."""
    path = tmp_path / "e2e.db"
    shutil.copy(sqlite_template, path)
    app = make_app(f"sqlite:///{path}", tmp_path)
    with app.app_context():
        library = make_library("e2e", slip_header="Biblioteka Publiczna w Łomiankach")
        library.kiosk_idle_seconds = 30
        pool_codes = codes("E2E", 3)
        make_pool(library, pool_codes, this_month())
        enrolment = new_kiosk(library, printer=f"escpos-tcp:127.0.0.1:{fake_printer.port}")
        token = enrolment.token
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=serving, args=(server,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}"
    yield Site(app=app, url=url, printer=fake_printer, enrol_link=f"{url}/kiosk/enrol/{token}",
               pool_codes=pool_codes)
    server.close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def staff_page(browser, site):
    """A library admin of the e2e library, signed in through the login page."""
    from kiosk.domain.accounts import create_user

    with site.app.app_context():
        library = db.session.scalar(select(Library).where(Library.slug == "e2e"))
        library_id = library.id
        _user, password = write(lambda s: create_user(s, username="ania", role="library_admin",
                                                      library_id=library_id, actor=TEST, now=utcnow()))
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
    serve_axe(page)
    yield page
    context.close()


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
    kiosk_ready(page)  # the idle screen in, and htmx running on it: a reader's scan is swapped in
    page.console_errors = errors
    yield page
    context.close()
