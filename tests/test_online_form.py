"""The online request form /r/<library>/ as readers use it, over HTTP on SQLite and
PostgreSQL: who sees a code and where it is mailed, the release moment, "send it
again", the limits (one at a time and in parallel), the online share, the rush at
the release minute, hostile input, and an answer in the reader's language always."""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select

from helpers import (TEST, codes, csv_file, issue, make_library, make_pool, this_month, warsaw, write)
from kiosk.app.extensions import db
from kiosk.domain.clock import local_day, month_window, utcnow
from kiosk.domain.issuing import Outcome
from kiosk.domain.online import OnlineLimits, OnlineOutcome, request_code
from kiosk.domain.registry import import_cards, prepare_cards
from kiosk.domain.rules import parse_changes, save_rules
from kiosk.domain.sip2_settings import parse_sip2_settings, save_sip2_settings
from kiosk.sip2 import close_thread_connections
from kiosk.storage.models import Channel, Code, Event, Issuance, LimitHit, OutboxMessage
from kiosk.wording.addresses import masked_address
from sip2_peers import Patron, sip2_server

TOKEN = re.compile(r'name="csrf_token" id="csrf_token" value="([^"]+)"')
POOL = codes("ONL", 12)
TODAY = local_day(utcnow())


@pytest.fixture(autouse=True)
def connections_closed():
    yield
    close_thread_connections()


# -- the library, its card register, its library system ---------------------------------

def register(app, library, rows: list[list]) -> None:
    """The card register as the library system exports it: a card, and an E-mail column."""
    prepared = prepare_cards(csv_file([["Karta", "E-mail"], *rows]), card_pattern=None, check_digit=None,
                             pepper=app.config["READER_PEPPER"])
    library_id = library.id
    write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))


def rules(library, **values) -> None:
    parsed = parse_changes({name: str(value) for name, value in values.items()})
    library_id = library.id
    write(lambda s: save_rules(s, library_id, parsed, TEST, utcnow()))


def use_sip2(app, library, port: int, **values) -> None:
    form = parse_sip2_settings({"host": "127.0.0.1", "port": port, "institution": "KODOMAT", **values}, None)
    library_id, pepper = library.id, app.config["READER_PEPPER"]
    write(lambda s: save_sip2_settings(s, library_id, form, pepper=pepper, actor=TEST, now=utcnow()))


@pytest.fixture
def library(app):
    """A library that checks cards against its register, with readers' addresses."""
    library = make_library("lib", card_check="registry")
    make_pool(library, POOL, this_month())
    register(app, library, [["12345678", "anna.kowalska@wp.pl"], ["23456789", ""],
                            *[[f"3000000{n}", "rodzina@poczta.onet.pl"] for n in range(8)],
                            *[[f"5000{n:04d}", ""] for n in range(8)]])  # readers at the kiosk
    return library


# -- the reader's browser --------------------------------------------------------------

def reader(app, address: str = "203.0.113.5"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def token(client, slug: str = "lib") -> str:
    return TOKEN.search(client.get(f"/r/{slug}/").get_data(as_text=True)).group(1)


def ask(client, card: str, *, slug: str = "lib", again: bool = False, pin: str | None = None, lang: str = "pl",
        htmx: bool = False, csrf: str | None = None):
    data = {"card": card, "action": "again" if again else "get", "lang": lang,
            "csrf_token": csrf if csrf is not None else token(client, slug)}
    if pin is not None:
        data["pin"] = pin
    return client.post(f"/r/{slug}/", data=data, headers={"HX-Request": "true"} if htmx else {})


def text_of(response) -> str:
    return response.get_data(as_text=True)


def shown_codes(page: str) -> list[str]:
    flat = page.replace(" ", "").replace("\u00a0", "")
    return [code for code in POOL if code in flat]


def outbox() -> list[OutboxMessage]:
    db.session.commit()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def issuances() -> list[Issuance]:
    db.session.commit()
    return list(db.session.scalars(select(Issuance).order_by(Issuance.id)))


def free_codes() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Code).where(Code.status == "available"))


# -- the address as the page shows it -----------------------------------------------------

@pytest.mark.parametrize("address, shown", [
    ("anna.kowalska@wp.pl", "a•••@w•••.pl"),
    ("a@b.pl", "a•••@b•••.pl"),  # a short one: the same three dots, no length given away
    ("jan.nowak@poczta.onet.pl", "j•••@p•••.pl"),  # a subdomain: the first label and the last
    ("Jan@Mail.Example.COM", "J•••@m•••.com"),
    ("zofia@xn--d-uga0v4h.pl", "z•••@ł•••.pl"),  # łódź.pl, as an IDN is stored
    ("Żaneta@łódź.pl", "Ż•••@ł•••.pl"),
    ("ola@xn--80ak6aa92e.com", "o•••@а•••.com"),  # Cyrillic
    ('"a b"@x.pl', "a•••@x•••.pl"),
    ("root@localhost", "r•••@l•••"),
    ("not an address", "•••"), ("@wp.pl", "•••"), ("anna@", "•••"), ("", "•••"),
])
def test_a_masked_address(address, shown):
    assert masked_address(address) == shown


# -- who gets to see a code ------------------------------------------------------------

def test_without_a_pin_the_code_is_mailed_to_the_register_s_address_and_never_shown(app, library):
    client = reader(app)

    page = ask(client, "1234-5678")

    html = text_of(page)
    assert page.status_code == 200
    assert shown_codes(html) == []
    assert "a•••@w•••.pl" in html and "anna.kowalska" not in html
    assert 'data-outcome="sent"' in html
    [issued] = issuances()
    assert issued.channel == Channel.ONLINE.value and issued.actor == "online"
    [mail] = outbox()
    assert (mail.to_address, mail.language, mail.issuance_id, mail.library_id) == (
        "anna.kowalska@wp.pl", "pl", issued.id, library.id)
    assert mail.sent_at is None


def test_htmx_gets_the_answer_alone(app, library):
    answer = text_of(ask(reader(app), "12345678", htmx=True))

    assert "<html" not in answer and "online-result" in answer
    assert "a•••@w•••.pl" in answer and shown_codes(answer) == []


def test_a_reader_with_no_address_on_file_is_sent_to_the_library_and_no_code_is_taken(app, library):
    page = text_of(ask(reader(app), "23456789"))

    assert "Nie mamy Twojego adresu e-mail" in page and "Przyjdź do biblioteki" in page
    assert issuances() == [] and outbox() == [] and free_codes() == len(POOL)
    assert db.session.scalar(select(Event.kind).where(Event.kind == "no_address")) == "no_address"


PATRONS = {"10000001": Patron(pin="2468", email="zazolc@example.pl"),
           "10000002": Patron(pin="1357"),  # no BE: no address
           "10000003": Patron(email="bez.pinu@example.pl")}


@pytest.fixture
def sip2_library(app):
    library = make_library("sip")
    make_pool(library, POOL, this_month())
    return library


def test_a_correct_pin_shows_the_code_and_mails_it_where_the_library_system_gives_an_address(app, sip2_library):
    with sip2_server(PATRONS) as server:
        use_sip2(app, sip2_library, server.port)
        form = text_of(reader(app).get("/r/sip/"))
        with_address = text_of(ask(reader(app), "10000001", slug="sip", pin="2468"))
        without = text_of(ask(reader(app), "10000002", slug="sip", pin="1357"))
        no_pin = text_of(ask(reader(app), "10000003", slug="sip"))

    assert 'id="pin"' in form and "PIN (nieobowiązkowy)" in form
    assert "Oto Twój kod" in with_address and len(shown_codes(with_address)) == 1
    assert "z•••@e•••.pl" in with_address
    assert len(shown_codes(without)) == 1 and "Zapisz ten kod" in without
    assert shown_codes(no_pin) == [] and "b•••@e•••.pl" in no_pin  # no PIN: mailed, not shown
    assert [mail.to_address for mail in outbox()] == ["zazolc@example.pl", "bez.pinu@example.pl"]
    assert len(issuances()) == 3


def test_a_library_that_requires_the_pin_asks_nothing_of_its_system_without_one(app, sip2_library):
    with sip2_server(PATRONS) as server:
        use_sip2(app, sip2_library, server.port, require_pin="1")
        form = text_of(reader(app).get("/r/sip/"))
        page = text_of(ask(reader(app), "10000003", slug="sip", pin=""))
        asked = list(server.requests)

    assert re.search(r'<input id="pin"[^>]*required', form)
    assert "Wpisz PIN" in page and issuances() == []
    assert "63" not in asked  # no patron information request was sent


def test_wrong_pins_are_refused_and_then_limited_with_the_kiosk_s_per_card_limits(app, sip2_library):
    with sip2_server(PATRONS) as server:
        use_sip2(app, sip2_library, server.port)
        answers = [ask(reader(app, f"198.51.100.{n}"), "10000001", slug="sip", pin="0000") for n in range(6)]
        asked_before = server.requests.count("63")
        right_pin_now = ask(reader(app, "198.51.100.99"), "10000001", slug="sip", pin="2468")
        asked_after = server.requests.count("63")
        by_mail = ask(reader(app, "198.51.100.98"), "10000001", slug="sip")

    assert all("Numer karty albo PIN się nie zgadza" in text_of(page) for page in answers[:5])
    assert answers[5].status_code == 429 and "zły PIN" in text_of(answers[5])
    assert right_pin_now.status_code == 429 and asked_after == asked_before  # not asked while limited
    assert db.session.scalar(select(func.count()).select_from(LimitHit).where(
        LimitHit.kind == "card_wrong_pins")) == 5
    # Without a PIN nothing is guessed: the code goes to the reader's own address.
    assert shown_codes(text_of(by_mail)) == [] and [m.to_address for m in outbox()] == ["zazolc@example.pl"]


def test_a_library_system_that_does_not_answer_gets_a_try_again_on_the_form(app, sip2_library):
    from helpers import closed_port

    use_sip2(app, sip2_library, closed_port())
    page = ask(reader(app), "10000001", slug="sip", pin="2468")

    assert page.status_code == 503
    assert "Nie możemy teraz sprawdzić Twojej karty w systemie biblioteki." in text_of(page)
    assert "Spróbuj jeszcze raz za chwilę" in text_of(page) and 'id="online-form"' in text_of(page)
    assert issuances() == []


# -- the release moment ------------------------------------------------------------------

def test_before_the_release_the_page_says_when_and_posts_are_refused(app, monkeypatch):
    monkeypatch.setattr("kiosk.web.online.utcnow", lambda: warsaw(2030, 5, 1, 9, 30))  # the form's clock
    library = make_library("early", card_check="registry")
    make_pool(library, POOL, month_window(2030, 5))
    register(app, library, [["12345678", "anna@wp.pl"]])
    rules(library, release_time="10:00")

    page = text_of(reader(app).get("/r/early/"))
    refused = text_of(ask(reader(app), "12345678", slug="early"))

    assert "01.05.2030 o 10:00" in page
    assert "Jeszcze nie wydajemy kodów" in refused and "01.05.2030 o 10:00" in refused
    assert 'data-outcome="not_yet"' in refused
    assert issuances() == [] and outbox() == []


def test_the_unit_of_work_itself_refuses_a_post_before_the_release(app):
    """The page's early answer aside: the issue path says "not yet" on its own."""
    library = make_library("early", card_check="registry")
    make_pool(library, POOL, month_window(2030, 5))
    register(app, library, [["12345678", "anna@wp.pl"]])
    rules(library, release_time="10:00")

    def at(moment):
        return write(lambda s: request_code(s, None, library_slug="early", card_number="12345678", answer=None,
                                            language="pl", now=moment, pepper=app.config["READER_PEPPER"],
                                            again=False))

    early, on_time = at(warsaw(2030, 5, 1, 9, 59)), at(warsaw(2030, 5, 1, 10, 0))

    assert early.outcome is OnlineOutcome.REFUSED and early.result.ineligible.reason == "not_yet"
    assert on_time.outcome is OnlineOutcome.ISSUED and on_time.code is None and on_time.mailed
    assert len(issuances()) == 1 and len(outbox()) == 1


# -- "I already have this month's code" ----------------------------------------------------

def test_send_again_mails_the_same_code_three_times_a_day_then_waits(app, library):
    client = reader(app)
    none_yet = text_of(ask(client, "12345678", again=True))
    first = ask(client, "12345678")
    again = [ask(client, "12345678", again=True) for _ in range(3)]
    fourth = ask(client, "12345678", again=True)

    assert "Nie masz jeszcze kodu na ten miesiąc" in none_yet
    assert first.status_code == 200 and all(page.status_code == 200 for page in again)
    assert all("Wysłaliśmy go ponownie" in text_of(page) and shown_codes(text_of(page)) == [] for page in again)
    assert fourth.status_code == 429 and "wysłaliśmy dziś już kilka razy" in text_of(fourth)
    [issued] = issuances()
    assert issued.print_count == 4
    assert [mail.issuance_id for mail in outbox()] == [issued.id] * 4


def test_asking_for_a_code_already_had_counts_as_sending_it_again(app, library):
    client = reader(app)
    pages = [ask(client, "12345678") for _ in range(5)]

    assert [page.status_code for page in pages] == [200, 200, 200, 200, 429]
    assert "Masz już kod na ten miesiąc" in text_of(pages[1])
    # Counted as sending it again, though within two minutes it is a double press: mailed once.
    assert len(issuances()) == 1 and len(outbox()) == 1


# -- the limits ----------------------------------------------------------------------------

def test_one_address_gets_at_most_five_messages_a_day(app, library):
    pages = [ask(reader(app, f"192.0.2.{n}"), f"3000000{n}") for n in range(7)]

    assert [page.status_code for page in pages] == [200] * 5 + [429] * 2
    assert "Na adres zapisany dla tej karty" in text_of(pages[5])
    assert len(outbox()) == 5 and len(issuances()) == 5  # no code taken that nothing could deliver


def test_one_client_address_is_limited_and_refused_cards_more_strictly(app, library):
    app.config.update(ONLINE_REQUESTS_PER_ADDRESS=4, ONLINE_REFUSED_CARDS_PER_ADDRESS=2)
    busy = reader(app, "203.0.113.7")
    probing = reader(app, "203.0.113.8")

    many = [ask(busy, card) for card in ("30000000", "30000001", "30000002", "30000003", "30000004")]
    probes = [ask(probing, card) for card in ("99999991", "99999992", "12345678")]
    elsewhere = ask(reader(app, "203.0.113.9"), "30000004")

    assert [page.status_code for page in many] == [200] * 4 + [429]
    assert "Z tego urządzenia przyszło za dużo próśb" in text_of(many[4])
    assert [page.status_code for page in probes] == [200, 200, 429]  # the valid card waits too
    assert "Tej karty nie ma w rejestrze" in text_of(probes[0])
    assert elsewhere.status_code == 200


def in_parallel(app, requests: list) -> list:
    """Each request(client) in a thread of its own, a browser each, all sent together."""
    db.session.commit()
    results: list = [None] * len(requests)
    errors: list[BaseException] = []
    start = threading.Barrier(len(requests))

    def run(n: int, request) -> None:
        try:
            with app.app_context():
                client, prepared = request()
                start.wait()
                results[n] = prepared(client)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, request)) for n, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def posting(app, card: str, address: str, **options):
    """A reader with the form open: the token fetched, the post sent when all are ready."""
    def prepare():
        client = reader(app, address)
        csrf = token(client, options.get("slug", "lib"))
        return client, lambda c: ask(c, card, csrf=csrf, **options)
    return prepare


def test_the_limits_hold_under_parallel_requests(app, library):
    app.config.update(ONLINE_REQUESTS_PER_ADDRESS=3)
    from_one_address = in_parallel(app, [posting(app, f"3000000{n}", "203.0.113.50") for n in range(8)])

    assert sorted(page.status_code for page in from_one_address) == [200] * 3 + [429] * 5
    assert len(issuances()) == 3


def test_send_again_and_mails_hold_under_parallel_requests(app, library):
    ask(reader(app, "198.51.100.1"), "12345678")
    resends = in_parallel(app, [posting(app, "12345678", f"198.51.100.{10 + n}", again=True) for n in range(8)])
    family = in_parallel(app, [posting(app, f"3000000{n}", f"198.51.100.{30 + n}") for n in range(8)])

    assert sorted(page.status_code for page in resends) == [200] * 3 + [429] * 5
    assert sorted(page.status_code for page in family) == [200] * 5 + [429] * 3
    by_address = {}
    for mail in outbox():
        by_address[mail.to_address] = by_address.get(mail.to_address, 0) + 1
    assert by_address == {"anna.kowalska@wp.pl": 4, "rodzina@poczta.onet.pl": 5}
    assert len(issuances()) == 6


def test_wrong_pins_are_counted_under_parallel_requests(app, sip2_library):
    with sip2_server(PATRONS) as server:
        use_sip2(app, sip2_library, server.port)
        pages = in_parallel(app, [posting(app, "10000001", f"198.51.100.{n}", slug="sip", pin="0000")
                                  for n in range(10)])

    assert sorted(page.status_code for page in pages) == [200] * 5 + [429] * 5
    assert db.session.scalar(select(func.count()).select_from(LimitHit).where(
        LimitHit.kind == "card_wrong_pins")) == 5
    assert issuances() == []


def test_a_burst_of_pins_reaches_the_library_system_at_most_five_times(app, sip2_library):
    """31 posts at once for one card (30 wrong PINs and the right one): each PIN is
    counted before the library system is asked, so it is asked at most 5 times, and
    the reader's account there is never locked by the form."""
    with sip2_server(PATRONS) as server:
        use_sip2(app, sip2_library, server.port)
        guesses = [f"{n:04d}" for n in range(30)] + ["2468"]
        pages = in_parallel(app, [posting(app, "10000001", f"198.51.100.{n}", slug="sip", pin=pin)
                                  for n, pin in enumerate(guesses)])
        asked = server.requests.count("63")

    assert asked <= 5
    assert sum(1 for page in pages if page.status_code == 429) >= len(guesses) - 5
    assert all("data-outcome" in text_of(page) for page in pages)


def test_the_rush_at_the_release_minute(app):
    """More readers than codes, all at once: first come, first served, one code each,
    every one answered on the form."""
    library = make_library("rush", card_check="registry")
    make_pool(library, codes("RSH", 10), this_month())
    cards = [f"4{n:07d}" for n in range(24)]
    register(app, library, [[card, f"czytelnik{n}@example.pl"] for n, card in enumerate(cards)])
    twice = cards[:4] * 2  # four readers press twice, from two phones

    pages = in_parallel(app, [posting(app, card, f"10.1.{n // 200}.{n % 200}", slug="rush")
                              for n, card in enumerate(cards + twice)])

    assert {page.status_code for page in pages} == {200}
    answers = [text_of(page) for page in pages]
    assert all('id="online-form"' in page for page in answers)
    said = [re.search(r'data-outcome="([a-z_]+)"', page).group(1) for page in answers]
    assert said.count("sent") == 10 and set(said) <= {"sent", "sent_again", "no_codes_left"}
    assert sum("Kody na ten miesiąc już się skończyły" in page for page in answers) == said.count("no_codes_left")
    assert said.count("no_codes_left") >= len(cards) - 10
    given = issuances()
    assert len(given) == 10 and len({i.reader_key for i in given}) == 10 and len({i.code_id for i in given}) == 10
    assert len({mail.issuance_id for mail in outbox()}) == 10


def test_the_online_share_is_kept_for_the_form(app, library):
    rules(library, online_share=50)  # 6 of the 12 codes
    at_kiosk = [issue(app, f"5000{n:04d}", utcnow()) for n in range(8)]
    online = [ask(reader(app, f"192.0.2.{n}"), card) for n, card in enumerate(
        ["12345678", "30000000", "30000001", "30000002", "30000003", "30000004"])]

    assert [result.outcome for result in at_kiosk[:6]] == [Outcome.ISSUED] * 6
    assert all(result.outcome is Outcome.NOT_ELIGIBLE and result.ineligible.reason == "online_reserved"
               for result in at_kiosk[6:])
    assert [page.status_code for page in online] == [200] * 6 and len(outbox()) == 6
    assert free_codes() == 0


# -- hostile input ---------------------------------------------------------------------------

def test_another_library_s_slug_and_an_unknown_one(app, library):
    other = make_library("other", card_check="registry")
    make_pool(other, codes("OTH", 2), this_month())

    elsewhere = text_of(ask(reader(app), "12345678", slug="other"))
    unknown = reader(app).get("/r/nie-ma-takiej/?lang=en")

    assert "Tej karty nie ma w rejestrze" in elsewhere
    assert issuances() == [] and outbox() == []
    assert unknown.status_code == 404 and 'id="online-form"' not in text_of(unknown)
    assert '<html lang="en">' in text_of(unknown)


@pytest.mark.parametrize("card", ["12?4567", "' OR 1=1 --", "ł" * 50, "1" * 65, "<script>alert(1)</script>", ""])
def test_garbage_cards_are_refused_in_words(app, library, card):
    page = ask(reader(app), card)

    assert page.status_code == 200 and "Nie możemy wydać kodu na tę kartę" in text_of(page)
    assert "<script>alert" not in text_of(page)
    assert issuances() == []


def test_oversized_fields_and_a_nul_get_the_form_back_not_an_error_page(app, library):
    client = reader(app)
    huge = client.post("/r/lib/", data={"card": "1" * 20_000, "csrf_token": token(client)})
    nul = client.post("/r/lib/", data={"card": "1234\x005678", "csrf_token": token(client)})
    long_pin = ask(client, "12345678", pin="9" * 5000)

    for page in (huge, nul):
        assert page.status_code == 400 and "Nie możemy przyjąć tego formularza" in text_of(page)
        assert 'id="online-form"' in text_of(page)
    assert long_pin.status_code == 200  # no PIN field here: ignored, the code is mailed
    assert len(issuances()) == 1


def test_a_form_without_its_token_is_answered_with_a_fresh_one(app, library):
    client = reader(app)
    page = client.post("/r/lib/", data={"card": "12345678", "action": "get", "lang": "uk"})
    fragment = client.post("/r/lib/", data={"card": "12345678"}, headers={"HX-Request": "true"})
    fresh = TOKEN.search(text_of(fragment)).group(1)
    retried = ask(client, "12345678", csrf=fresh, htmx=True)

    assert page.status_code == 400 and '<html lang="uk">' in text_of(page) and 'id="online-form"' in text_of(page)
    # The language chosen on the first post is kept (a cookie): the answer is in Ukrainian.
    assert fragment.status_code == 400 and "Форма застаріла" in text_of(fragment)
    assert 'hx-swap-oob="true"' in text_of(fragment)
    assert retried.status_code == 200 and "a•••@w•••.pl" in text_of(retried)


# -- the reader's language ----------------------------------------------------------------------

def test_the_answer_and_the_mail_are_in_the_reader_s_language(app, library):
    english = reader(app, "192.0.2.1")
    page = text_of(english.get("/r/lib/?lang=en"))
    remembered = text_of(english.get("/r/lib/"))
    ask(english, "12345678", lang="en")
    ukrainian = text_of(ask(reader(app, "192.0.2.2"), "99999999", lang="uk"))

    assert '<html lang="en">' in page and "Card number" in page
    assert '<html lang="en">' in remembered  # the choice is kept in a cookie
    assert [mail.language for mail in outbox()] == ["en"]
    assert "Цієї картки немає в реєстрі читачів бібліотеки." in ukrainian


def test_a_busy_database_answers_on_the_form(tmp_path, sqlite_template):
    """Another program holds SQLite's write lock longer than the busy timeout."""
    import shutil
    import sqlite3

    from helpers import IsolatedClient
    from kiosk import create_app

    path = tmp_path / "busy.db"
    shutil.copy(sqlite_template, path)
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
                      "READER_PEPPER": "test-pepper", "SECRET_KEY": "test-secret", "SQLITE_BUSY_TIMEOUT_MS": 100})
    app.test_client_class = IsolatedClient
    with app.app_context():
        library = make_library("lib", card_check="registry")
        make_pool(library, POOL, this_month())
        register(app, library, [["12345678", "anna@wp.pl"]])
        client = reader(app)
        csrf = token(client)
        db.session.commit()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            page = ask(client, "12345678", csrf=csrf, lang="en")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert page.status_code == 503
        assert "Please try again in a moment" in text_of(page) and 'id="online-form"' in text_of(page)
        assert issuances() == [] and outbox() == []
        db.session.remove()
        db.engine.dispose()


def test_behind_a_proxy_each_reader_counts_by_the_forwarded_address(tmp_path, sqlite_template):
    import shutil

    from helpers import IsolatedClient
    from kiosk import create_app

    path = tmp_path / "proxy.db"
    shutil.copy(sqlite_template, path)
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
                      "READER_PEPPER": "test-pepper", "SECRET_KEY": "test-secret", "TRUST_PROXY": True,
                      "ONLINE_REQUESTS_PER_ADDRESS": 1})
    app.test_client_class = IsolatedClient
    with app.app_context():
        library = make_library("lib", card_check="registry")
        make_pool(library, POOL, this_month())
        register(app, library, [["12345678", "anna@wp.pl"], ["23456789", "jan@wp.pl"]])
        client = reader(app, "10.0.0.1")  # the proxy
        pages = []
        for card, forwarded in (("12345678", "198.51.100.1"), ("23456789", "198.51.100.2"),
                                ("23456789", "198.51.100.2")):
            client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
            pages.append(ask(client, card))
        assert [page.status_code for page in pages] == [200, 200, 429]
        db.session.remove()
        db.engine.dispose()


def test_limits_can_be_switched_off(app, library):
    limits = OnlineLimits(requests_per_address=0, refused_per_address=0, resends_per_card=0, mails_per_address=0)
    assert limits.of_client("x") == [] and limits.resends is None and limits.mails is None
    app.config.update(ONLINE_REQUESTS_PER_ADDRESS=0, ONLINE_RESENDS_PER_CARD=0, ONLINE_MAILS_PER_ADDRESS=0)
    pages = [ask(reader(app), "12345678") for _ in range(6)]
    assert {page.status_code for page in pages} == {200}
    assert db.session.scalar(select(func.count()).select_from(LimitHit).where(
        LimitHit.kind.in_(["online_requests", "online_resends"]))) == 0


def test_get_my_code_pressed_twice_mails_the_code_once(app, library):
    """Without JavaScript a double press posts the form twice: the second answer
    says the code is on its way, and no second message goes."""
    client = reader(app)
    first, second = ask(client, "12345678"), ask(client, "12345678")

    assert 'data-outcome="sent"' in text_of(first)
    assert 'data-outcome="sent_again"' in text_of(second)
    assert len(outbox()) == 1 and len(issuances()) == 1
    assert ask(client, "12345678", again=True).status_code == 200  # asked for on purpose: it goes
    assert len(outbox()) == 2
