"""The rules in a real Chromium: where two platforms' codes are out, the kiosk asks
which one with one touch, and a rule's refusal reads as one sentence."""
import pytest
from sqlalchemy import select

from helpers import (kiosk_ready, TEST, axe_violations, codes, enrol, import_file, panel_file, serve_axe, this_month, warsaw,
                     write)
from kiosk.app.extensions import db
from kiosk.domain.rules import parse_changes, save_rules
from kiosk.storage.models import Library, Platform

pytestmark = pytest.mark.e2e


def ready(page) -> None:
    kiosk_ready(page)


def scan(page, card: str, screen: str) -> None:
    page.locator("#card").press_sequentially(card, delay=5)
    page.press("#card", "Enter")
    page.wait_for_selector(screen)


@pytest.fixture
def two_platforms(site):
    with site.app.app_context():
        library = db.session.scalar(select(Library).where(Library.slug == "e2e"))
        empik = db.session.scalar(select(Platform).where(Platform.slug == "empik-go"))
        import_file(library, panel_file(codes("EMPG", 3)), window=this_month(), filename="empik.xlsx",
                    now=warsaw(2026, 1, 1, 8), platform=empik)
        db.session.remove()
    return site


def test_one_touch_picks_the_platform_and_its_slip_prints(browser, two_platforms):
    site = two_platforms
    context = browser.new_context(viewport={"width": 1080, "height": 1500})
    page = context.new_page()
    serve_axe(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    enrol(page, site.enrol_link)
    ready(page)

    scan(page, "12345678", "#screen.choose")
    assert "Który serwis wybierasz?" in page.inner_text("h1")
    buttons = page.locator("button.platform-choice")
    assert buttons.all_inner_texts() == ["Legimi", "Empik Go"]
    assert min(box["height"] for box in (b.bounding_box() for b in buttons.all())) >= 48
    assert axe_violations(page) == []

    page.click("button.platform-choice >> text=Empik Go")
    page.wait_for_selector("#screen.result")
    assert "Twój kod Empik Go" in page.inner_text(".slip-title")
    code = page.inner_text("#slip-code").replace(" ", "")
    assert code.startswith("EMPG")
    assert b"Empik Go" in site.printer.job(1)
    assert not errors
    context.close()


def test_a_rules_refusal_is_said_in_one_sentence(kiosk_page, site):
    with site.app.app_context():
        library_id = db.session.scalar(select(Library.id).where(Library.slug == "e2e"))
        write(lambda s: save_rules(s, library_id, parse_changes({"min_age": "13"}), TEST, warsaw(2026, 1, 1, 8)))
        db.session.remove()
    scan(kiosk_page, "12345678", "#screen.result")
    assert kiosk_page.inner_text("h1") == "Nie możemy teraz sprawdzić, czy kod Ci przysługuje."
    assert "Zapytaj w wypożyczalni" in kiosk_page.inner_text("#screen")
    assert kiosk_page.locator("#slip-code").count() == 0
