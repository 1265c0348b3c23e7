"""Cards checked live over SIP2, as readers at the kiosk and staff at the desk see it,
against a real SIP2 server nobody here wrote (pysip2, tests/sip2_peers.py) and against
servers that misbehave: the verdict, the PIN, the rules' facts, the fallback, and a
library system that never holds the database."""
from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from helpers import (TEST, codes, csv_file, import_file, kiosk_carried, kiosk_scan, make_library, make_pool, panel_file,
                     post, this_month, token_of, write)
from kiosk.app.extensions import db
from kiosk.domain.clock import local_day, utcnow
from kiosk.domain.registry import import_cards, prepare_cards
from kiosk.domain.rules import parse_changes, save_rules
from kiosk.domain.sip2_settings import parse_sip2_settings, save_sip2_settings
from kiosk.sip2 import close_thread_connections
from kiosk.storage.models import Code, Event, Issuance, Library, Platform
from sip2_peers import Patron, bad_checksum_server, half_answer_server, silent_server, sip2_server

TODAY = local_day(utcnow())
VALID = Patron(pin="2468", name="Zażółć Gęślą Jaźń", fee="0.00", expiry=(TODAY + timedelta(days=300)).strftime("%Y%m%d"),
               birth="19900101", email="zazolc@example.pl")


def status(*positions: int) -> str:
    return "".join("Y" if n in positions else " " for n in range(14))


def use_sip2(app, library: Library, port: int, **values) -> None:
    form = parse_sip2_settings({"host": "127.0.0.1", "port": port, "institution": "KODOMAT", **values}, None)
    library_id, pepper = library.id, app.config["READER_PEPPER"]
    write(lambda s: save_sip2_settings(s, library_id, form, pepper=pepper, actor=TEST, now=utcnow()))


def rules(library, **values) -> None:
    parsed = parse_changes({name: str(value) for name, value in values.items()})
    library_id = library.id
    write(lambda s: save_rules(s, library_id, parsed, TEST, utcnow()))


def register(app, library, rows: list[list]) -> None:
    prepared = prepare_cards(csv_file(rows), card_pattern=None, check_digit=None, pepper=app.config["READER_PEPPER"])
    library_id = library.id
    write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))


scan = kiosk_scan


def pin(client, asked, value: str):
    """The PIN typed on the PIN screen `asked` (a response)."""
    return kiosk_carried(client, asked, "pin_for", pin=value)


def each_at_a_kiosk(enrolled_kiosk, library, cards) -> dict[str, str]:
    """Every card scanned at a kiosk of its own (one kiosk would pause after five refusals)."""
    return {card: scan(enrolled_kiosk(library)[0], card).get_data(as_text=True) for card in cards}


def issued() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Issuance))


@pytest.fixture(autouse=True)
def connections_closed():
    """The SIP2 connections this test's thread opened are closed after it."""
    yield
    close_thread_connections()


@pytest.fixture
def library():
    library = make_library()
    make_pool(library, codes("LEG", 40), this_month())
    return library


def test_the_library_system_decides_the_card(app, library, enrolled_kiosk):
    patrons = {"10000001": VALID,
               "10000002": Patron(status=status(0)),  # charge privileges denied
               "10000003": Patron(status=status(4)),  # card reported lost
               "10000004": Patron(status=status(10)),  # excessive outstanding fines
               "10000005": Patron(status=status(5)),  # too many items charged: a loan limit, not a block
               "10000006": Patron(expiry=(TODAY - timedelta(days=1)).strftime("%Y%m%d")),
               "10000007": Patron(expiry=TODAY.strftime("%Y%m%d")),  # valid through today
               "10000008": Patron(valid=False)}
    with sip2_server(patrons) as server:
        use_sip2(app, library, server.port)
        seen = each_at_a_kiosk(enrolled_kiosk, library, [*patrons, "19999999"])
        unknown = seen["19999999"]

    for card in ("10000001", "10000005", "10000007"):
        assert "Oto Twój kod" in seen[card], card
    for card in ("10000002", "10000003", "10000004"):
        assert "Karta jest zablokowana." in seen[card], card
    assert "Karta straciła ważność." in seen["10000006"]
    for page in (seen["10000008"], unknown):
        assert "Tej karty nie ma w rejestrze czytelników biblioteki." in page
    assert issued() == 3
    assert server.connections == 1  # one connection, reused for every card and kiosk of this thread


def test_the_rules_read_age_and_debt_from_the_answer(app, library, enrolled_kiosk):
    thirteen = TODAY.replace(year=TODAY.year - 13)
    day_before = thirteen + timedelta(days=1) if thirteen.month != 2 or thirteen.day != 28 else thirteen
    patrons = {"20000001": Patron(birth=thirteen.strftime("%Y%m%d"), fee="0.00"),  # 13 today
               "20000002": Patron(birth=day_before.strftime("%Y%m%d"), fee="0.00"),  # 13 tomorrow
               "20000003": Patron(birth="19800101", fee="5.00"),
               "20000004": Patron(birth="19800101", fee="5.01"),
               "20000005": Patron(birth="19800101"),  # no BV: the debt is not known
               "20000006": Patron(birth="20000101", birth_field="BC", fee="0")}  # Polaris sends BC
    rules(library, min_age=13, max_debt="5")
    with sip2_server(patrons) as server:
        use_sip2(app, library, server.port)
        seen = each_at_a_kiosk(enrolled_kiosk, library, patrons)

    assert "Oto Twój kod" in seen["20000001"]
    assert "Oto Twój kod" in seen["20000003"]
    assert "Oto Twój kod" in seen["20000006"]
    if day_before != thirteen:
        assert "Oto Twój kod" not in seen["20000002"] and "13" in seen["20000002"]
    assert "Oto Twój kod" not in seen["20000004"]
    assert "Oto Twój kod" not in seen["20000005"]
    reasons = db.session.execute(select(Event.details).where(Event.kind == "not_eligible")).scalars().all()
    assert any('"debt"' in r for r in reasons) and any('"no_data"' in r for r in reasons)


def test_the_last_loan_comes_from_the_register_where_sip2_says_nothing(app, library, enrolled_kiosk):
    rules(library, active_within_months=6)
    register(app, library, [["karta", "ostatnie wypożyczenie"], ["30000001", TODAY.isoformat()],
                            ["30000002", (TODAY - timedelta(days=400)).isoformat()]])
    patrons = {card: Patron() for card in ("30000001", "30000002", "30000003")}
    with sip2_server(patrons) as server:
        use_sip2(app, library, server.port)
        seen = each_at_a_kiosk(enrolled_kiosk, library, patrons)

    assert "Oto Twój kod" in seen["30000001"]
    assert "Oto Twój kod" not in seen["30000002"]  # inactive, by the register
    assert "Oto Twój kod" not in seen["30000003"]  # not in the register: no data, never a guess
    assert issued() == 1


def test_the_kiosk_asks_for_the_pin_and_a_wrong_one_counts_toward_the_pause(app, library, enrolled_kiosk):
    with sip2_server({"40000001": VALID, "40000009": VALID}) as server:
        use_sip2(app, library, server.port, require_pin=True)
        client, _ = enrolled_kiosk(library)
        asked = scan(client, "40000001")
        page = asked.get_data(as_text=True)
        assert "Wpisz PIN" in page and 'type="password"' in page
        assert "40000001" not in page and "0001" in page  # the card masked, the PIN field masked
        assert issued() == 0

        wrong = [pin(client, scan(client, "40000001"), "1111").get_data(as_text=True) for _ in range(5)]
        assert all("Numer karty albo PIN się nie zgadza." in page for page in wrong)
        paused = scan(client, "40000001").get_data(as_text=True)
        assert "Chwila przerwy" in paused
        requests_during_pause = len(server.requests)
        assert "Chwila przerwy" in scan(client, "40000001").get_data(as_text=True)
        assert len(server.requests) == requests_during_pause  # a paused kiosk asks the library system nothing

        other, _ = enrolled_kiosk(library)
        assert "Chwila przerwy" in scan(other, "40000001").get_data(as_text=True)  # the card waits everywhere
        right = pin(other, scan(other, "40000009"), "2468").get_data(as_text=True)
        assert "Oto Twój kod" in right and "2468" not in right
    assert issued() == 1


def test_an_empty_pin_or_an_unknown_card_with_a_pin_reads_as_a_wrong_pin(app, library, enrolled_kiosk):
    with sip2_server({"40000002": VALID}) as server:
        use_sip2(app, library, server.port, require_pin=True)
        client, _ = enrolled_kiosk(library)
        empty = pin(client, scan(client, "40000002"), "").get_data(as_text=True)
        stranger = pin(client, scan(client, "49999999"), "2468").get_data(as_text=True)
        delimiter = pin(client, scan(client, "40000002"), "24|68").get_data(as_text=True)
    for page in (empty, stranger, delimiter):
        assert "Numer karty albo PIN się nie zgadza." in page
    assert issued() == 0


def test_with_a_pin_and_two_platforms_the_reader_picks_without_a_second_pin(app, library, enrolled_kiosk):
    empik = db.session.scalar(select(Platform).where(Platform.slug == "empik-go"))
    import_file(library, panel_file(codes("EMP", 3)), window=this_month(), filename="emp.xlsx", platform=empik)
    with sip2_server({"40000003": VALID}) as server:
        use_sip2(app, library, server.port, require_pin=True)
        client, _ = enrolled_kiosk(library)
        asked = pin(client, scan(client, "40000003"), "2468")
        page = asked.get_data(as_text=True)
        assert "Który serwis wybierasz?" in page
        picked = kiosk_carried(client, asked, "choice", platform="empik-go").get_data(as_text=True)
    assert "Oto Twój kod" in picked and "EMP" in picked.replace(" ", "")
    assert issued() == 1


def test_the_desk_asks_the_library_system_but_never_for_a_pin(app, library, signed_in_desk):
    with sip2_server({"50000001": VALID, "50000002": Patron(status=status(4))}) as server:
        use_sip2(app, library, server.port, require_pin=True)
        client = signed_in_desk(library)
        good = post(client, "/desk/lib/issue", {"card": "50000001"}, token_from="/desk/lib/").get_data(as_text=True)
        lost = post(client, "/desk/lib/issue", {"card": "50000002"}, token_from="/desk/lib/").get_data(as_text=True)
    assert "LEG" in good.replace(" ", "") and "PIN" not in good
    assert "Karta jest zablokowana." in lost
    assert issued() == 1


@pytest.mark.parametrize("peer", [silent_server, half_answer_server, lambda: bad_checksum_server(times=99)],
                         ids=["silent", "half-answer", "bad-checksum"])
def test_a_library_system_that_fails_refuses_plainly_or_falls_back_to_the_register(app, library, enrolled_kiosk,
                                                                                    peer, caplog):
    caplog.set_level("DEBUG")
    register(app, library, [["karta"], ["60000001"]])
    with peer() as server:
        use_sip2(app, library, server.port, timeout="1")
        client, _ = enrolled_kiosk(library)
        started = time.monotonic()
        refused = [scan(client, "60000001").get_data(as_text=True) for _ in range(6)]
        took = time.monotonic() - started
        assert all("Nie możemy teraz sprawdzić Twojej karty w systemie biblioteki." in page for page in refused)
        assert took < 6 * 1.6  # each no longer than the timeout, and more
        # A library system that is down is not the reader's fault: no pause after six tries.
        assert "Chwila przerwy" not in refused[-1]

        use_sip2(app, library, server.port, timeout="1", on_failure="registry")
        in_register = scan(client, "60000001").get_data(as_text=True)
        stranger = scan(client, "69999999").get_data(as_text=True)
    assert "Oto Twój kod" in in_register
    assert "Tej karty nie ma w rejestrze" in stranger
    assert issued() == 1
    # The fallback is said in the log; no card number ever is.
    assert "the card is refused for now" in caplog.text and "the card register decides" in caplog.text
    assert "60000001" not in caplog.text and "69999999" not in caplog.text


def test_a_pin_cannot_be_checked_against_the_register(app, library, enrolled_kiosk):
    register(app, library, [["karta"], ["60000002"]])
    with silent_server() as server:
        use_sip2(app, library, server.port, timeout="0.5", on_failure="registry", require_pin=True)
        client, _ = enrolled_kiosk(library)
        page = pin(client, scan(client, "60000002"), "2468").get_data(as_text=True)
    assert "Nie możemy teraz sprawdzić Twojej karty" in page
    assert issued() == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_silent_library_system_never_holds_the_database(app, library, enrolled_kiosk, signed_in_desk):
    """While one kiosk waits for a library system that does not answer, the other
    library's desk issues at once: the wait happens before any transaction opens."""
    other = make_library("inna")
    make_pool(other, codes("OTH", 3), this_month())
    desk = signed_in_desk(other)
    token = token_of(desk, "/desk/inna/")
    with silent_server() as server:
        use_sip2(app, library, server.port, timeout="3")
        kiosk, _ = enrolled_kiosk(library)
        kiosk_token = token_of(kiosk, "/kiosk/")
        waited: list[str] = []

        def wait_at_the_kiosk():
            try:
                with app.app_context():  # a request thread of its own, as the server has
                    waited.append(kiosk.post("/kiosk/scan", data={"card": "70000001", "csrf_token": kiosk_token,
                                                                  "lang": "pl"},
                                             headers={"HX-Request": "true"}).get_data(as_text=True))
            finally:
                close_thread_connections()

        waiting = threading.Thread(target=wait_at_the_kiosk)
        waiting.start()
        deadline = time.monotonic() + 5
        while not server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.connections == 1
        started = time.monotonic()
        answer = desk.post("/desk/inna/issue", data={"card": "70000002", "csrf_token": token})
        took = time.monotonic() - started
        waiting.join()
    assert "OTH" in answer.get_data(as_text=True).replace(" ", "")
    assert took < 2.0  # the kiosk beside it waits 3 s for its library system
    assert "Nie możemy teraz sprawdzić Twojej karty" in waited[0]


@pytest.mark.parametrize("encoding,name", [("utf-8", "Zażółć Gęślą Jaźń"), ("cp1250", "Zażółć Gęślą Jaźń"),
                                           ("cp852", "Zażółć Gęślą Jaźń"), ("cp850", "Kraków Ó")])
def test_polish_names_in_each_encoding(app, library, enrolled_kiosk, encoding, name):
    with sip2_server({"80000001": Patron(name=name, pin="ąę12" if encoding != "cp850" else "12")},
                     encoding=encoding) as server:
        use_sip2(app, library, server.port, encoding=encoding, require_pin=True)
        client, _ = enrolled_kiosk(library)
        page = pin(client, scan(client, "80000001"), "ąę12" if encoding != "cp850" else "12").get_data(as_text=True)
    assert "Oto Twój kod" in page
    assert name not in page  # the name is never shown, nor kept


def test_eight_kiosks_at_once_over_one_library_system(app, library, enrolled_kiosk):
    cards = [f"9{n:07d}" for n in range(24)]
    with sip2_server({card: Patron() for card in cards}) as server:
        use_sip2(app, library, server.port)
        kiosks = [enrolled_kiosk(library)[0] for _ in range(8)]
        tokens = [token_of(client, "/kiosk/") for client in kiosks]
        start, pages, errors = threading.Barrier(8), [], []

        def queue(client, token, share):
            try:
                start.wait()
                with app.app_context():
                    for card in share:
                        pages.append(client.post("/kiosk/scan", data={"card": card, "csrf_token": token, "lang": "pl"},
                                                 headers={"HX-Request": "true"}).get_data(as_text=True))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                close_thread_connections()  # the request threads' own connections

        threads = [threading.Thread(target=queue, args=(kiosks[n], tokens[n], cards[n::8])) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not errors
    assert sum("Oto Twój kod" in page for page in pages) == 24
    db.session.commit()
    assert db.session.scalar(select(func.count(func.distinct(Issuance.code_id)))) == 24
    assert db.session.scalar(select(func.count(func.distinct(Issuance.reader_key)))) == 24
    assert db.session.scalar(select(func.count()).select_from(Code).where(Code.status == "issued")) == 24
    assert server.connections <= 8 + 1  # the request threads each keep one; never one per scan


def test_wrong_pins_for_one_card_pause_it_at_every_kiosk(app, library, enrolled_kiosk):
    """Five wrong PINs for a card, whichever kiosks they were typed at: that card waits
    everywhere, even with the right PIN; other cards do not."""
    with sip2_server({"41000001": VALID, "41000002": VALID}) as server:
        use_sip2(app, library, server.port, require_pin=True)
        for guess in ("0000", "0001", "0002", "0003", "0004"):
            client = enrolled_kiosk(library)[0]  # a fresh kiosk each time: its own pause never starts
            assert "Numer karty albo PIN" in pin(client, scan(client, "41000001"), guess).get_data(as_text=True)
        client = enrolled_kiosk(library)[0]
        asked_before = len(server.requests)
        paused = scan(client, "41000001").get_data(as_text=True)
        assert "Chwila przerwy" in paused and "Wpisz PIN" not in paused
        assert "Kiosk przyjmie tę kartę znowu za 15 min." in paused
        assert len(server.requests) == asked_before  # not even asked of the library system
        other = pin(client, scan(client, "41000002"), "2468").get_data(as_text=True)
    assert "Oto Twój kod" in other
    assert issued() == 1


@pytest.mark.parametrize("value,expected", [
    ("12.50", 1250), ("12,50", 1250), ("12.5", 1250), ("PLN 12.50", 1250), ("1,234.50", 123450),
    ("1.234,50", 123450), ("1 234,50", 123450), ("-3.00", 0), ("3.00-", 0), ("(3.00)", 0), ("0", 0),
    ("abc", None), ("", None), (None, None), ("5.01", 501)])
def test_the_fee_amount_is_read_as_written_or_not_at_all(value, expected):
    from kiosk.domain.library_system import grosze
    assert grosze(value) == expected


@pytest.mark.parametrize("value,expected", [
    ("20270131", "2027-01-31"), ("20270131    235959", "2027-01-31"), ("2027-01-31", "2027-01-31"),
    ("20270231", None), ("soon", None), ("", None), (None, None)])
def test_sip2_dates_are_read_or_ignored(value, expected):
    from kiosk.domain.library_system import sip_date
    day = sip_date(value)
    assert (day.isoformat() if day else None) == expected


def test_no_pin_is_asked_for_a_number_that_is_no_card(app, library, enrolled_kiosk):
    with sip2_server({"42000001": VALID}) as server:
        use_sip2(app, library, server.port, require_pin=True)
        client, _ = enrolled_kiosk(library)
        garbage = scan(client, "?!").get_data(as_text=True)
    assert "Wpisz PIN" not in garbage and "To nie wygląda na numer karty" in garbage
    assert "63" not in server.requests  # never asked of the library system


def test_ten_wrong_pins_in_a_day_pause_the_card_for_the_rest_of_the_day(app, library):
    """The quarter-hour pause lets five more tries through; the day's limit stops the
    tenth (the kiosk's domain step, with the moments given)."""
    from kiosk.domain.cards import CardAnswer, CardRefusal
    from kiosk.domain.kiosks import scan_card
    from helpers import new_kiosk

    pepper, wrong = app.config["READER_PEPPER"], CardAnswer(refusal=CardRefusal.WRONG_PIN)
    with sip2_server({}) as server:
        use_sip2(app, library, server.port, require_pin=True)
    start = utcnow()
    moments = [start + timedelta(minutes=16 * (n // 5), seconds=n % 5) for n in range(10)]
    for moment in moments:
        kiosk_id = new_kiosk(library).kiosk.id
        scanned = write(lambda s: scan_card(s, kiosk_id=kiosk_id, card="43000001", now=moment, pepper=pepper,
                                            answer=wrong))
        assert scanned.result.reason is CardRefusal.WRONG_PIN
    later = moments[-1] + timedelta(minutes=16)  # past the quarter hour: only the day's limit holds
    kiosk_id = new_kiosk(library).kiosk.id
    paused = write(lambda s: scan_card(s, kiosk_id=kiosk_id, card="43000001", now=later, pepper=pepper,
                                       answer=wrong))
    assert paused.paused_until is not None and paused.paused_until - later > timedelta(hours=23)


def test_the_rules_page_check_asks_the_library_system_too(app, library, signed_in_admin):
    with sip2_server({"44000001": VALID, "44000002": Patron(status=status(4))}) as server:
        use_sip2(app, library, server.port)
        client = signed_in_admin(library)
        said = {card: post(client, "/admin/lib/rules/check", {"card": card, "moment": "", "platform": "legimi"},
                           token_from="/admin/lib/rules").get_data(as_text=True)
                for card in ("44000001", "44000002")}
    assert "Czytelnik dostałby nowy kod" in said["44000001"]
    assert "Karta jest zablokowana." in said["44000002"]
    assert issued() == 0


def test_the_card_travels_sealed_and_a_forged_or_borrowed_note_starts_afresh(app, library, enrolled_kiosk):
    """The PIN screen's note is encrypted: the card number cannot be read from the page,
    even decoded; another kiosk's note, or a changed one, only brings the start screen."""
    import base64

    with sip2_server({"45000001": VALID}) as server:
        use_sip2(app, library, server.port, require_pin=True)
        client, _ = enrolled_kiosk(library)
        other, _ = enrolled_kiosk(library)
        asked = scan(client, "45000001")
        note = re.search(r'name="pin_for" value="([^"]+)"', asked.get_data(as_text=True))[1]
        assert b"45000001" not in base64.urlsafe_b64decode(note + "=" * (-len(note) % 4))
        borrowed = pin(other, asked, "2468").get_data(as_text=True)
        forged = kiosk_carried(client, asked, "pin_for", pin="2468", **{"pin_for": note[:-4] + "AAAA"})
    assert "Oto Twój kod" not in borrowed and "Oto Twój kod" not in forged.get_data(as_text=True)
    assert issued() == 0
