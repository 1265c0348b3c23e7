"""The kiosk in a real Chromium: what a reader sees, presses and takes away."""

import pytest
from sqlalchemy import select

from helpers import kiosk_ready, axe_violations, enrol, serve_axe
from kiosk.app.extensions import db
from kiosk.storage.models import Library

pytestmark = pytest.mark.e2e


def ready(page) -> None:
    kiosk_ready(page)


def scan(page, card: str) -> None:
    """A barcode scanner: the digits as fast keystrokes, then Enter."""
    page.evaluate("window.sameDocument = true")
    page.locator("#card").press_sequentially(card, delay=5)
    page.press("#card", "Enter")
    page.wait_for_selector("#screen.result")
    assert page.evaluate("window.sameDocument === true"), "a screen must be swapped in, not loaded"


def shown_code(page) -> str:
    return page.inner_text("#slip-code").replace(" ", "")


def test_scan_shows_the_slip_prints_it_and_the_same_card_gets_the_same_code(kiosk_page, site):
    page = kiosk_page

    scan(page, "12345678")
    code = shown_code(page)

    assert code in site.pool_codes
    assert "Oto Twój kod" in page.inner_text("h1")
    assert "Aktywuj kod do" in page.inner_text(".slip-warning")
    assert page.locator(".slip-qr svg").count() == 1
    assert " ".join([code[:4], code[4:8], code[8:]]).encode() in site.printer.job(1)
    assert site.printer.job(1).endswith(b"\x1dV\x00")

    page.click("#done")
    ready(page)
    scan(page, "1234-5678")

    assert "Masz już kod na ten miesiąc" in page.inner_text("h1")
    assert shown_code(page) == code
    assert code.encode() in site.printer.job(2).replace(b" ", b"")
    assert not page.console_errors


def test_exhausted_pool(kiosk_page):
    page = kiosk_page
    for card in ("10000001", "10000002", "10000003"):
        scan(page, card)
        page.click("#done")
        ready(page)

    scan(page, "10000004")

    assert "Kody na ten miesiąc już się skończyły" in page.inner_text("h1")
    assert page.locator("#slip-code").count() == 0


def test_refused_card_gives_the_reason_as_the_largest_text_with_the_number_masked(kiosk_page):
    scan(kiosk_page, "12?4567")

    assert "Nie możemy wydać kodu na tę kartę" in kiosk_page.inner_text("#screen")
    assert "numer karty tej biblioteki" in kiosk_page.inner_text("h1")
    sizes = kiosk_page.evaluate("""() => [...document.querySelectorAll('#screen *')]
        .filter(e => e.childNodes.length && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
        .map(e => [e.tagName, parseFloat(getComputedStyle(e).fontSize)])""")
    largest = max(size for _tag, size in sizes)
    assert [tag for tag, size in sizes if size == largest] == ["H1"]
    assert "•••4567" in kiosk_page.inner_text(".typed")


def test_language_switch_changes_the_screen_and_the_slip(kiosk_page, site):
    page = kiosk_page

    page.click("a[lang=uk]")
    page.wait_for_selector("#screen[lang=uk]")
    assert "відскануйте картку" in page.inner_text("h1")
    scan(page, "12345678")

    assert "Ось ваш код" in page.inner_text("h1")
    assert "Активуйте код до" in page.inner_text(".slip-warning")
    assert "Активуйте".encode("cp1251") in site.printer.job(1)
    page.click("#done")
    ready(page)
    assert page.get_attribute("#screen", "lang") == "pl"  # "Gotowe": the next reader starts in Polish


def test_idle_timeout_clears_the_screen_and_leaves_no_history(browser, site):
    with site.app.app_context():
        db.session.scalar(select(Library)).kiosk_idle_seconds = 2
        db.session.commit()
    context = browser.new_context()
    page = context.new_page()
    enrol(page, site.enrol_link)
    ready(page)
    history_before = page.evaluate("history.length")

    scan(page, "12345678")
    code = shown_code(page)
    page.wait_for_selector("#screen.idle", timeout=10_000)

    assert code not in page.content()
    assert code.replace(" ", "") not in page.content()
    assert page.input_value("#card") == ""
    assert page.evaluate("history.length") == history_before
    assert page.evaluate("document.activeElement.id") == "card"
    context.close()


def test_keyboard_only(kiosk_page):
    page = kiosk_page
    assert page.evaluate("document.activeElement.id") == "card"  # ready for the scanner

    page.keyboard.type("87654321")
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen.result")
    # The field for the next reader keeps the focus (a scanner types into it); one
    # Shift+Tab back is "Gotowe".
    assert page.evaluate("document.activeElement.id") == "card"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "done"
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen.idle")

    assert page.evaluate("document.activeElement.id") == "card"
    # Tab reaches the language switch and the field; the keypad is for touch and
    # never takes the focus (a keyboard has its own digits).
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.getAttribute('lang')") == "uk"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('ok')")


def test_on_screen_keypad(kiosk_page):
    page = kiosk_page
    for key in "123456789":
        page.click(f"button[data-key='{key}']")
    page.click("button[data-key='back']")
    assert page.input_value("#card") == "12345678"

    page.click("button.ok")
    page.wait_for_selector("#screen.result")

    assert page.locator("#slip-code").count() == 1


def test_a_typed_number_does_not_show_a_code_already_handed_out(kiosk_page, site):
    page = kiosk_page
    scan(page, "12345678")
    code = shown_code(page)
    page.click("#done")
    ready(page)

    for key in "12345678":  # the same number on the keypad, as anyone could type it
        page.click(f"button[data-key='{key}']")
    page.click("button.ok")
    page.wait_for_selector("#screen.result")
    typed_on_keypad = page.inner_text("#screen")
    page.click("#done")
    ready(page)
    page.locator("#card").press_sequentially("12345678", delay=180)  # a person at a keyboard
    page.press("#card", "Enter")
    page.wait_for_selector("#screen.result")
    typed_slowly = page.inner_text("#screen")

    for screen in (typed_on_keypad, typed_slowly):
        assert "Ta karta ma już kod na ten miesiąc" in screen and code not in screen.replace(" ", "")
    assert len(site.printer.jobs) == 1


def test_touch_targets_are_at_least_48px(kiosk_page):
    sizes = kiosk_page.eval_on_selector_all(
        "a, button, input:not([type=hidden])", "els => els.map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height])")

    assert sizes and all(width >= 48 and height >= 48 for width, height in sizes)


def test_a_browser_that_is_not_enrolled_is_told_so(browser, site):
    context = browser.new_context()
    page = context.new_page()

    response = page.goto(f"{site.url}/kiosk/")

    assert response.status == 403
    assert "nie jest skonfigurowany" in page.inner_text("h1")
    context.close()


@pytest.fixture
def axe_page(browser, site):
    # axe comes as a same-origin script, so the Content-Security-Policy stays on.
    context = browser.new_context(viewport={"width": 1080, "height": 1500})
    page = context.new_page()
    serve_axe(page)
    enrol(page, site.enrol_link)
    ready(page)
    yield page
    context.close()


def test_every_kiosk_screen_passes_axe(axe_page, site):
    page = axe_page
    screens = {"idle": axe_violations(page)}
    page.click("a[lang=uk]")
    page.wait_for_selector("#screen[lang=uk]")
    screens["idle uk"] = axe_violations(page)
    page.click("a[lang=pl]")
    page.wait_for_selector("#screen[lang=pl]")
    scan(page, "12345678")
    screens["slip"] = axe_violations(page)
    page.click("#done")
    ready(page)
    scan(page, "12345678")
    screens["reprint"] = axe_violations(page)
    page.click("#done")
    for card in ("20000001", "20000002"):
        ready(page)
        scan(page, card)
        page.click("#done")
    ready(page)
    scan(page, "20000003")
    screens["no codes left"] = axe_violations(page)
    for attempt in range(5):
        page.click("#done")
        ready(page)
        scan(page, f"?{attempt}")
    screens["card refused"] = axe_violations(page)
    page.click("#done")
    ready(page)
    scan(page, "30000001")
    assert "Chwila przerwy" in page.inner_text("h1")
    screens["paused"] = axe_violations(page)
    page.goto(f"{site.url}/kiosk/enrol/used-link")
    screens["link invalid"] = axe_violations(page)

    assert {name: found for name, found in screens.items() if found} == {}
