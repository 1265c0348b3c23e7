"""The online request form in a real Chromium on a phone-sized screen: with htmx and
with JavaScript off, axe-core clean, a code mailed (never shown without a PIN) or
shown after the library system confirms the PIN."""
from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from waitress.server import create_server

from helpers import (TEST, axe_violations, codes, csv_file, make_app, make_library, make_pool, serve_axe, this_month,
                     write)
from kiosk.app.extensions import db
from kiosk.domain.clock import utcnow
from kiosk.domain.registry import import_cards, prepare_cards
from kiosk.domain.sip2_settings import parse_sip2_settings, save_sip2_settings
from kiosk.storage.models import OutboxMessage
from sip2_peers import Patron, sip2_server

pytestmark = pytest.mark.e2e

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
POOL = codes("WEB", 4)


@dataclass
class OnlineSite:
    app: object
    url: str
    sip2_port: int


@pytest.fixture
def online_site(tmp_path, sqlite_template):
    """The app served by waitress: a library checking cards against its register
    (one reader with an address, one without) and one checking them over SIP2."""
    path = tmp_path / "online.db"
    shutil.copy(sqlite_template, path)
    app = make_app(f"sqlite:///{path}", tmp_path)
    patrons = {"10000001": Patron(pin="2468", email="zofia@example.pl")}
    with sip2_server(patrons) as peer:
        with app.app_context():
            library = make_library("czytelnia", card_check="registry")
            make_pool(library, POOL, this_month())
            rows = [["Karta", "E-mail"], ["12345678", "anna.kowalska@wp.pl"], ["23456789", ""],
                    ["34567890", "jan@example.pl"]]
            prepared = prepare_cards(csv_file(rows), card_pattern=None, check_digit=None,
                                     pepper=app.config["READER_PEPPER"])
            library_id = library.id
            write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))
            sip = make_library("sip")
            make_pool(sip, codes("SIP", 2), this_month())
            form = parse_sip2_settings({"host": "127.0.0.1", "port": peer.port, "institution": "KODOMAT"}, None)
            sip_id = sip.id
            write(lambda s: save_sip2_settings(s, sip_id, form, pepper=app.config["READER_PEPPER"], actor=TEST,
                                               now=utcnow()))
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        yield OnlineSite(app=app, url=f"http://127.0.0.1:{server.effective_port}", sip2_port=peer.port)
        server.close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def phone(browser):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors
    serve_axe(page)
    yield page
    context.close()


def ask(page, card: str, button: str = "button.get") -> None:
    """The card typed, a button pressed, the answer swapped in (not a page load)."""
    page.evaluate("window.sameDocument = true")
    page.fill("#card", card)
    page.click(button)
    page.wait_for_selector("#answer .online-result")
    assert page.evaluate("window.sameDocument === true"), "the answer must be swapped in, not loaded"


def outbox(site) -> list[str]:
    with site.app.app_context():
        return list(db.session.scalars(select(OutboxMessage.to_address).order_by(OutboxMessage.id)))


def test_a_reader_on_a_phone_gets_the_code_by_mail_and_every_screen_passes_axe(phone, online_site):
    page = phone
    page.goto(f"{online_site.url}/r/czytelnia/")
    screens = {"form": axe_violations(page)}
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing sideways

    ask(page, "34567890", "button.again")  # the button pressed goes with the form
    screens["no code yet"] = axe_violations(page)
    assert "Nie masz jeszcze kodu na ten miesiąc" in page.inner_text("#answer")
    ask(page, "12345678")
    screens["mailed"] = axe_violations(page)
    mailed = page.inner_text("#answer")
    ask(page, "12345678", "button.again")
    screens["sent again"] = axe_violations(page)
    ask(page, "23456789")
    screens["no address"] = axe_violations(page)
    ask(page, "12?45678")
    screens["card refused"] = axe_violations(page)
    page.click("a[lang=uk]")
    page.wait_for_selector("html[lang=uk]")
    screens["form uk"] = axe_violations(page)

    assert "a•••@w•••.pl" in mailed and not any(code in page.content() for code in POOL)
    assert outbox(online_site) == ["anna.kowalska@wp.pl"] * 2
    assert {name: found for name, found in screens.items() if found} == {}
    assert not page.console_errors
    # Touch targets a thumb can hit.
    heights = page.evaluate("[...document.querySelectorAll('.online-actions button')].map(b => b.offsetHeight)")
    assert heights and min(heights) >= 48


def test_a_correct_pin_shows_the_code_on_the_phone(phone, online_site):
    page = phone
    page.goto(f"{online_site.url}/r/sip/")
    page.fill("#pin", "2468")

    ask(page, "10000001")

    assert "Oto Twój kod" in page.inner_text("#answer h2")
    shown = page.inner_text("#slip-code").replace(" ", "")
    assert shown in codes("SIP", 2)
    assert "z•••@e•••.pl" in page.inner_text("#answer")
    assert axe_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_form_works_with_javascript_off(browser, online_site):
    context = browser.new_context(java_script_enabled=False, **PHONE)
    page = context.new_page()
    page.goto(f"{online_site.url}/r/czytelnia/?lang=en")
    page.fill("#card", "12345678")
    with page.expect_navigation():
        page.click("button.get")

    assert page.url.endswith("/r/czytelnia/")
    assert page.get_attribute("html", "lang") == "en"
    assert "a•••@w•••.pl" in page.inner_text("#answer")
    assert not any(code in page.content() for code in POOL)

    with page.expect_navigation():
        page.click("button.again")
    assert "a•••@w•••.pl" in page.inner_text("#answer")
    assert outbox(online_site) == ["anna.kowalska@wp.pl"] * 2
    context.close()
