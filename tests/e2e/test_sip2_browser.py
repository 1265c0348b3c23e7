"""The PIN at a kiosk in a real Chromium: asked after the card where the library
checks cards over SIP2, typed on the keypad into a masked field, checked by a real
SIP2 server (pysip2), and the screen stays clean for axe-core."""
import os

import pytest
from sqlalchemy import select

from helpers import PROJECT, TEST, axe_violations, kiosk_ready, serve_axe, write
from kiosk.app.extensions import db
from kiosk.domain.clock import utcnow
from kiosk.domain.sip2_settings import parse_sip2_settings, save_sip2_settings
from kiosk.storage.models import Library
from sip2_peers import Patron, sip2_server

pytestmark = pytest.mark.e2e


def ready(page) -> None:
    kiosk_ready(page)


@pytest.fixture
def pin_library(site):
    with sip2_server({"12345678": Patron(pin="2468", name="Zażółć Gęślą"), "87654321": Patron(pin="1357")}) as server:
        with site.app.app_context():
            library_id = db.session.scalar(select(Library.id).where(Library.slug == "e2e"))
            form = parse_sip2_settings({"host": "127.0.0.1", "port": server.port, "require_pin": True}, None)
            pepper = site.app.config["READER_PEPPER"]
            write(lambda s: save_sip2_settings(s, library_id, form, pepper=pepper, actor=TEST, now=utcnow()))
            db.session.remove()
        yield site


def test_the_pin_is_asked_typed_on_the_keypad_masked_and_checked(pin_library, kiosk_page):
    page = kiosk_page
    serve_axe(page)
    ready(page)

    page.locator("#card").press_sequentially("12345678", delay=5)
    page.press("#card", "Enter")
    page.wait_for_selector("#screen.pin")
    assert page.inner_text("h1") == "Wpisz PIN"
    assert page.get_attribute("#pin", "type") == "password"
    assert page.evaluate("document.activeElement.id") == "pin"
    assert axe_violations(page) == []
    if os.environ.get("KODOMAT_SCREENSHOTS"):  # README's pictures, on demand
        page.screenshot(path=str(PROJECT / "docs" / "img" / "kiosk-pin.png"))

    for key in "1111":
        page.click(f'#screen.pin [data-key="{key}"]')
    page.click("#screen.pin button.ok")
    page.wait_for_selector("#screen.refused")
    assert "Numer karty albo PIN się nie zgadza." in page.inner_text("#screen")

    page.locator("#card").press_sequentially("12345678", delay=5)
    page.press("#card", "Enter")
    page.wait_for_selector("#screen.pin")
    for key in "2468":
        page.click(f'#screen.pin [data-key="{key}"]')
    assert page.input_value("#pin") == "2468"
    page.click("#screen.pin button.ok")
    page.wait_for_selector("#screen.result:not(.refused)")
    assert page.inner_text("#slip-code").replace(" ", "").startswith("E2E")
    assert "Zażółć" not in page.content() and "2468" not in page.content()
    assert page.console_errors == []


def test_a_scan_on_the_pin_screen_is_the_next_readers_card_and_a_typed_pin_is_a_pin(pin_library, kiosk_page):
    page = kiosk_page
    ready(page)
    page.locator("#card").press_sequentially("12345678", delay=5)
    page.press("#card", "Enter")
    page.wait_for_selector("#screen.pin")

    # The next reader scans while the PIN screen is still up: a new scan, not a PIN.
    page.locator("#pin").press_sequentially("87654321", delay=5)
    page.press("#pin", "Enter")
    page.wait_for_function("() => document.querySelector('#screen.pin .typed').textContent.endsWith('4321')")
    assert page.locator("#screen.pin h1").is_visible()

    # A PIN typed at a person's pace on a keyboard stays a PIN, and the screen stays readable.
    page.locator("#pin").press_sequentially("1357", delay=150)
    assert page.locator("#screen.pin h1").is_visible() and page.locator("#done").is_visible()
    page.press("#pin", "Enter")
    page.wait_for_selector("#screen.result:not(.refused)")
    assert page.console_errors == []


def test_the_admin_sets_up_sip2_and_tests_a_card_in_the_panel(pin_library, staff_page):
    """The settings page's SIP2 form and its connection test, in a real Chromium:
    axe-clean, the test answered in place by htmx, the password never shown back."""
    site, page = pin_library, staff_page
    page.goto(f"{site.url}/admin/e2e/settings#sip2")
    assert page.input_value("#sip2-password") == ""
    assert "Hasło nie jest zapisane." in page.inner_text("#sip2")
    assert axe_violations(page) == []

    page.fill("#sip2-card", "12345678")
    page.fill("#sip2-pin", "2468")
    page.click("#sip2 button:has-text('Sprawdź kartę')")
    page.wait_for_selector("#sip2-check p.notice")
    said = page.inner_text("#sip2-check")
    assert "Karta przyjęta." in said and "Sprawdzenie trwało" in said and "PIN poprawny" in said
    assert "2468" not in page.content() and "12345678" not in page.url
    assert axe_violations(page) == []
    if os.environ.get("KODOMAT_SCREENSHOTS"):
        page.locator("#sip2").screenshot(path=str(PROJECT / "docs" / "img" / "admin-sip2.png"))
    assert page.console_errors == []
