"""A real queue at the kiosk and the desk, in Chromium: a barcode scanner is fast
keystrokes and Enter typed into whatever has the focus, at the screen sizes
libraries have (a portrait kiosk 1080x1920, a 1280x1024 one, a desk at 1366x768)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from helpers import kiosk_ready, enrol, new_kiosk, write
from kiosk.app.extensions import db
from kiosk.storage.models import Library

pytestmark = pytest.mark.e2e

PORTRAIT, SQUARE, DESK = (1080, 1920), (1280, 1024), (1366, 768)


def scanner(page, card: str) -> None:
    """A keyboard-wedge scanner: the digits a few milliseconds apart, then Enter, into
    whatever has the focus."""
    page.keyboard.type(card, delay=4)
    page.keyboard.press("Enter")


def scan_and_wait(page, card: str) -> None:
    """A scan, then the new screen it brings (not the old one, still on the page)."""
    page.evaluate("window.previousScreen = document.getElementById('screen')")
    scanner(page, card)
    page.wait_for_function("() => { const s = document.getElementById('screen');"
                           " return s !== window.previousScreen && s.classList.contains('result')"
                           " && !s.classList.contains('next-reader') && !s.classList.contains('htmx-settling'); }")


def ready(page) -> None:
    kiosk_ready(page, "#screen")


def shown_code(page) -> str:
    return page.inner_text("#slip-code").replace(" ", "")


def kiosk_at(browser, site, size, printer: str | None = None):
    """A kiosk browser of the size, enrolled (with another printer if given)."""
    link = site.enrol_link
    if printer is not None:
        with site.app.app_context():
            library = db.session.scalar(select(Library).where(Library.slug == "e2e"))
            link = f"{site.url}/kiosk/enrol/{new_kiosk(library, printer=printer, name='Drugi').token}"
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.on("pageerror", lambda error: pytest.fail(f"page error: {error}"))
    enrol(page, link)
    page.wait_for_selector("#screen.idle")
    ready(page)
    return page


def look_up(page, field: str, text: str) -> str:
    """Types into a look-up field, presses Enter and waits for that look-up's answer."""
    page.fill(field, text)
    with page.expect_response(lambda response: "/lookup" in response.url):
        page.press(field, "Enter")
    page.wait_for_function("() => !document.querySelector('#desk-result.htmx-settling')")
    return page.inner_text("#desk-result")


def no_scroll(page) -> bool:
    return page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")


# -- the kiosk -----------------------------------------------------------------------

def test_a_scan_while_a_code_is_on_screen_is_the_next_reader(browser, site):
    page = kiosk_at(browser, site, SQUARE)
    scanner(page, "11112222")
    page.wait_for_selector("#screen.result #slip-code")
    first = shown_code(page)
    ready(page)
    page.focus("#done")  # even with "Gotowe" focused, as a reader may leave it

    page.keyboard.type("3", delay=4)
    hidden_at_once = page.evaluate("getComputedStyle(document.querySelector('.slip')).visibility") == "hidden"
    page.keyboard.type("3334444", delay=4)
    page.keyboard.press("Enter")
    page.wait_for_function("(first) => { const c = document.querySelector('#slip-code');"
                           " return c && c.innerText.replace(/ /g, '') !== first; }", arg=first)

    assert hidden_at_once
    assert shown_code(page) != first and first not in page.inner_text("body").replace(" ", "")
    assert page.evaluate("document.activeElement.id") == "card"


def test_a_tap_on_the_keypad_then_a_scan_types_into_the_card_field(browser, site):
    page = kiosk_at(browser, site, PORTRAIT)
    page.click("button[data-key='5']")
    assert page.evaluate("document.activeElement.id") == "card"

    scanner(page, "5556666")
    page.wait_for_selector("#screen.result")

    assert page.locator("#slip-code").count() == 1  # one card "55556666", not "5" and an Enter on the key


def test_gotowe_and_the_idle_time_leave_nothing_of_the_last_reader(browser, site):
    def short_idle_time(session):  # below what the settings page allows, to keep the test short
        session.scalar(select(Library).where(Library.slug == "e2e")).kiosk_idle_seconds = 2

    with site.app.app_context():
        write(short_idle_time)
    page = kiosk_at(browser, site, SQUARE)
    page.click("a.lang[lang='en']")
    page.wait_for_selector("#screen.idle[lang='en']")
    ready(page)
    scanner(page, "77778888")
    page.wait_for_selector("#screen.result")
    page.click("#done")
    page.wait_for_selector("#screen.idle")
    after_done = page.get_attribute("#screen", "lang")

    page.click("a.lang[lang='uk']")
    page.wait_for_selector("#screen.idle[lang='uk']")
    ready(page)
    page.keyboard.type("123", delay=150)  # half a number, typed by hand, then the reader walks away
    page.wait_for_function("() => document.querySelector('#screen.idle[lang=\"pl\"]') &&"
                           " document.querySelector('#card').value === ''", timeout=15_000)

    assert after_done == "pl"


def test_a_slip_that_did_not_print_keeps_the_code_up_and_the_desk_finds_its_number(browser, site, staff_page):
    page = kiosk_at(browser, site, SQUARE, printer="escpos-tcp:127.0.0.1:9")  # nothing listens on port 9
    scanner(page, "99990000")
    page.wait_for_selector("#screen.result .alert")
    text = page.inner_text("#screen")
    slip_number = re.search(r"S\d{6}", text).group(0)
    code = shown_code(page)
    delay = page.get_attribute("#screen .next", "hx-trigger")

    found = look_up(staff_page, "#lookup-code", slip_number)

    assert "delay:120s" in delay  # four times the library's 30 s
    assert code in found


@pytest.mark.parametrize("size", [PORTRAIT, SQUARE], ids=["1080x1920", "1280x1024"])
def test_no_kiosk_screen_scrolls_in_any_language_and_the_field_is_in_the_middle(browser, site, size):
    page = kiosk_at(browser, site, size)
    failures = []
    for n, language in enumerate(("pl", "en", "uk")):
        page.click(f"a.lang[lang='{language}']")
        page.wait_for_selector(f"#screen.idle[lang='{language}']")
        ready(page)
        # Measured in one step inside the page, on the field that is there: under load a
        # swap could replace the element between a wait and a separate measurement.
        box = page.wait_for_function("""() => {
            const field = document.querySelector('#screen.idle #card');
            const box = field && field.getBoundingClientRect();
            return box && box.height ? {y: box.y, height: box.height} : null;
        }""").json_value()
        middle = (box["y"] + box["height"] / 2) / size[1]
        if size == PORTRAIT and not 0.3 < middle < 0.7:
            failures.append((language, "card field at", round(middle, 2)))
        screens = {"idle": None, "slip": f"1212{n}000", "refused": "!!", "reprint": f"1212{n}000"}
        for name, card in screens.items():
            if card:
                if name != "slip":
                    page.click("#done")
                    page.wait_for_selector("#screen.idle")
                    page.click(f"a.lang[lang='{language}']")
                    page.wait_for_selector(f"#screen.idle[lang='{language}']")
                    ready(page)
                page.locator("#card").press_sequentially(card, delay=4)
                page.press("#card", "Enter")
                page.wait_for_selector("#screen.result")
            if not no_scroll(page):
                failures.append((language, name))
        page.click("#done")
        page.wait_for_selector("#screen.idle")
    assert failures == []


def test_one_card_scanned_again_and_again_prints_twice_then_pauses(browser, site):
    page = kiosk_at(browser, site, SQUARE)
    screens = []
    for _ in range(4):
        ready(page)  # the screen's form is htmx's, as it is a moment after it appears
        scan_and_wait(page, "31313131")
        screens.append(page.inner_text("#screen"))

    site.printer.job(2)  # waits for the second slip
    page.wait_for_timeout(500)
    assert len(site.printer.jobs) == 2
    assert "Kiosk przyjmie kartę znowu za" in screens[2] and "Kiosk przyjmie kartę znowu za" in screens[3]


# -- the desk ------------------------------------------------------------------------------

def desk(staff_page, site):
    staff_page.set_viewport_size({"width": DESK[0], "height": DESK[1]})
    staff_page.goto(f"{site.url}/desk/e2e/")
    staff_page.wait_for_selector("#issue-form")
    return staff_page


def test_after_every_desk_action_the_card_field_has_the_focus(staff_page, site):
    page = desk(staff_page, site)
    scanner(page, "40404040")
    page.wait_for_selector("#desk-result #slip-code")
    first = shown_code(page)
    assert page.evaluate("document.activeElement.id") == "card"

    with page.context.expect_page() as pdf_tab:
        page.click("text=PDF (A6)")
    pdf_tab.value.close()
    assert page.evaluate("document.activeElement.id") == "card"

    page.focus("#desk-result a.button")  # the last reader's PDF link, focused
    scanner(page, "50505050")
    page.wait_for_function("(first) => { const c = document.querySelector('#slip-code');"
                           " return c && c.innerText.replace(/ /g, '') !== first; }", arg=first)

    assert len(page.context.pages) == 1  # the scan did not open the last reader's PDF
    assert page.evaluate("document.activeElement.id") == "card" and page.input_value("#card") == ""


def test_at_1366x768_the_issued_code_is_in_view_without_scrolling(staff_page, site):
    page = desk(staff_page, site)
    scanner(page, "60606060")
    page.wait_for_selector("#desk-result #slip-code")

    box = page.locator("#slip-code").bounding_box()
    assert page.evaluate("window.scrollY") == 0
    assert box["y"] + box["height"] <= DESK[1]


def test_look_up_by_code_in_any_case_with_dashes_or_by_slip_number(staff_page, site):
    page = desk(staff_page, site)
    scanner(page, "70707070")
    page.wait_for_selector("#desk-result #slip-code")
    code = shown_code(page)
    slip_number = re.search(r"S\d{6}", page.inner_text("#desk-result .slip-issued")).group(0)

    found = {typed: look_up(page, "#lookup-code", typed)
             for typed in (f"{code[:4].lower()}-{code[4:8].lower()} {code[8:].lower()}", slip_number)}
    by_card = look_up(page, "#lookup-card", "70707070")

    assert all(code in text for text in found.values()) and code in by_card
    assert page.input_value("#lookup-card") == "" and page.input_value("#lookup-code") == ""
