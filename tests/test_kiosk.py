"""The kiosk over HTTP (Flask test client): only enrolled browsers issue, every
screen a reader can meet, the printer that is off, the pause after failed cards."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from helpers import TEST, closed_port, codes, enrol_browser, make_library, make_pool, new_kiosk, this_month, token_of, write
from kiosk.domain.clock import utcnow
from kiosk.app.extensions import db
from kiosk.domain.kiosks import enrol_kiosk, revoke_kiosk
from kiosk.storage.models import Event, Issuance


def scan(client, card, lang="pl", htmx=True, entry="scan"):
    """A card at the kiosk: scanned at the reader by default (kiosk.js says so), or typed."""
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post("/kiosk/scan", data={"card": card, "lang": lang, "entry": entry,
                                            "csrf_token": token_of(client, "/kiosk/")}, headers=headers)


def issuances() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Issuance))


@pytest.fixture
def library(app):
    library = make_library(slip_header="Biblioteka Publiczna w Łomiankach")
    make_pool(library, codes("KSK", 3), this_month())
    return library


def test_a_browser_that_is_not_enrolled_gets_a_page_that_says_so(app, client, library):
    page = client.get("/kiosk/")
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page.get_data(as_text=True)).group(1)
    posted = client.post("/kiosk/scan", data={"card": "12345678", "csrf_token": token})
    without_token = client.post("/kiosk/scan", data={"card": "12345678"})

    assert page.status_code == 403 and "nie jest skonfigurowany" in page.get_data(as_text=True)
    assert posted.status_code == 403 and "nie jest skonfigurowany" in posted.get_data(as_text=True)
    assert without_token.status_code == 403 and 'name="card"' not in without_token.get_data(as_text=True)
    assert issuances() == 0


def test_an_enrolment_link_works_once(app, library, enrolled_kiosk):
    client, enrolment = enrolled_kiosk(library)

    again = app.test_client().get(f"/kiosk/enrol/{enrolment.token}")

    assert client.get("/kiosk/").status_code == 200
    assert again.status_code == 410 and "nieważny" in again.get_data(as_text=True)


def test_opening_the_link_alone_does_not_use_it(app, library):
    enrolment = new_kiosk(library)
    preview = app.test_client()  # e.g. a mail scanner fetching the link

    shown = preview.get(f"/kiosk/enrol/{enrolment.token}")

    assert shown.status_code == 200 and "Ustaw ten komputer jako kiosk" in shown.get_data(as_text=True)
    assert preview.get("/kiosk/").status_code == 403
    assert enrol_browser(app.test_client(), enrolment.token).status_code == 302


def test_an_expired_link_does_not_enrol(app, library):
    library_id = library.id
    enrolment = write(lambda s: enrol_kiosk(s, library_id=library_id, name="Hol", actor=TEST,
                                            now=utcnow() - timedelta(days=4)))

    assert enrol_browser(app.test_client(), enrolment.token).status_code == 410


def test_a_revoked_or_re_enrolled_kiosk_stops_working(app, library, enrolled_kiosk):
    client, enrolment = enrolled_kiosk(library)
    library_id, kiosk_id = library.id, enrolment.kiosk.id
    fresh = write(lambda s: enrol_kiosk(s, library_id=library_id, name="Hol", actor=TEST, now=utcnow(),
                                        kiosk_id=kiosk_id))
    new_browser = app.test_client()
    enrol_browser(new_browser, fresh.token)

    assert client.get("/kiosk/").status_code == 403  # the old browser's cookie is void
    assert new_browser.get("/kiosk/").status_code == 200
    kiosk_id = enrolment.kiosk.id
    write(lambda s: revoke_kiosk(s, kiosk_id, TEST, utcnow()))
    assert new_browser.get("/kiosk/").status_code == 403


def test_scan_shows_the_code_and_the_same_card_gets_it_again(library, enrolled_kiosk):
    client, _ = enrolled_kiosk(library)

    first = scan(client, "1234 5678")
    again = scan(client, "12345678")

    first_text, again_text = first.get_data(as_text=True), again.get_data(as_text=True)
    code = re.search(r'id="slip-code">([^<]+)<', first_text).group(1)
    assert first.status_code == 200 and "Oto Twój kod" in first_text and code.startswith("KSK")
    assert "Aktywuj kod do" in first_text and "<svg" in first_text  # the QR of the activation URL
    assert "<html" not in first_text  # an htmx fragment, not a page
    assert "Masz już kod na ten miesiąc" in again_text and code in again_text
    assert first.headers["Cache-Control"] == "no-store"
    assert issuances() == 1


def test_without_javascript_the_same_urls_answer_with_whole_pages(library, enrolled_kiosk):
    client, _ = enrolled_kiosk(library)

    page = scan(client, "12345678", htmx=False).get_data(as_text=True)

    assert "<html" in page and "Oto Twój kod" in page


def test_every_refusal_is_explained(library, enrolled_kiosk):
    client, _ = enrolled_kiosk(library)
    for card in ("11110001", "11110002", "11110003"):
        scan(client, card)

    empty = scan(client, "22220000").get_data(as_text=True)
    refused = scan(client, "!!").get_data(as_text=True)

    assert "Kody na ten miesiąc już się skończyły" in empty
    assert "Nie możemy wydać kodu na tę kartę" in refused and "wypożyczalni" in refused


def test_no_pool_says_so(app, enrolled_kiosk):
    client, _ = enrolled_kiosk(make_library())

    page = scan(client, "12345678").get_data(as_text=True)

    assert "Biblioteka nie ma jeszcze kodów na ten miesiąc" in page


def test_the_screen_and_the_slip_in_ukrainian(library, enrolled_kiosk):
    client, _ = enrolled_kiosk(library)

    idle = client.get("/kiosk/screen?lang=uk", headers={"HX-Request": "true"}).get_data(as_text=True)
    result = scan(client, "12345678", lang="uk").get_data(as_text=True)

    assert "відскануйте картку" in idle and 'lang="uk"' in idle
    assert "Ось ваш код" in result and "Активуйте код до" in result


def test_five_failed_cards_pause_the_kiosk_and_it_is_logged(library, enrolled_kiosk):
    client, enrolment = enrolled_kiosk(library)
    for attempt in range(5):
        assert "Nie możemy wydać" in scan(client, f"?{attempt}").get_data(as_text=True)

    paused = scan(client, "12345678").get_data(as_text=True)

    assert "Chwila przerwy" in paused and "Kiosk przyjmie kartę znowu" in paused
    assert issuances() == 0  # not even a good card during the pause
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "kiosk_paused")) == 1
    other_kiosk, _ = enrolled_kiosk(library)
    assert "Oto Twój kod" in scan(other_kiosk, "12345678").get_data(as_text=True)


def test_a_form_without_its_token_issues_nothing(library, enrolled_kiosk):
    client, _ = enrolled_kiosk(library)

    forged = client.post("/kiosk/scan", data={"card": "12345678"}, headers={"HX-Request": "true"})

    assert forged.status_code == 400 and "Spróbuj jeszcze raz" in forged.get_data(as_text=True)
    assert issuances() == 0


def test_the_kiosk_receipt_printer_gets_the_slip(library, enrolled_kiosk, fake_printer):
    client, _ = enrolled_kiosk(library, printer=f"escpos-tcp:127.0.0.1:{fake_printer.port}")

    page = scan(client, "12345678").get_data(as_text=True)
    code = re.search(r'id="slip-code">([^<]+)<', page).group(1)

    assert code.encode() in fake_printer.wait()
    assert "Drukujemy kod" in page


def test_a_printer_that_is_off_loses_no_code(library, enrolled_kiosk, runner, tmp_path):
    from kiosk.cli import main

    client, _ = enrolled_kiosk(library, printer=f"escpos-tcp:127.0.0.1:{closed_port()}")

    page = scan(client, "12345678").get_data(as_text=True)
    code = re.search(r'id="slip-code">([^<]+)<', page).group(1)
    slip_id = re.search(r"numer wydruku (S\d{6})", page).group(1)

    assert "Drukarka nie działa" in page
    assert issuances() == 1
    assert db.session.scalar(select(Event).where(Event.kind == "print_failed")) is not None
    # The desk reprints it; the reader coming back gets the same code.
    reprinted = runner.invoke(main, ["slip", code, "--format", "pdf80", "-o", str(tmp_path / "s.pdf")])
    assert reprinted.exit_code == 0 and slip_id in reprinted.output
    assert code in scan(client, "12345678").get_data(as_text=True)


def test_security_headers(library, enrolled_kiosk):
    client, _ = enrolled_kiosk(library)

    headers = client.get("/kiosk/").headers

    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_typing_card_after_card_cannot_drain_the_pool(app, enrolled_kiosk):
    library = make_library()
    make_pool(library, codes("DRN", 20), this_month())
    client, _ = enrolled_kiosk(library)

    pages = [scan(client, f"{70000000 + n}").get_data(as_text=True) for n in range(8)]

    assert sum("Oto Twój kod" in page for page in pages) == 6
    assert "Chwila przerwy" not in pages[5] and "Chwila przerwy" in pages[6]
    assert issuances() == 6
