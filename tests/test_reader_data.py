"""A reader's data (GDPR art. 15): everything stored about one card in one library,
from the CLI and from the staff's page, and nothing of another card or another
library. On SQLite and PostgreSQL.

One reader (card 12345678) is served over four months in library "lib": at a
kiosk, at the desk with a note and a reprint, on the online form (mailed, sent
again, then withdrawn and replaced), over the API; the register holds their facts;
their codes were reported activated or not. Beside them: another card in "lib",
and the SAME card number in library "other", each with data of its own."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from helpers import (TEST, codes, csv_file, legimi, make_library, make_pool, post, signed_in, this_month, token_of,
                     warsaw, write)
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.accounts import create_user
from kiosk.domain.activations import import_activations, prepare_activations
from kiosk.domain.actors import Actor
from kiosk.domain.api_keys import create_key
from kiosk.domain.clock import month_window, utcnow
from kiosk.domain.issuing import issue_code, replace_code
from kiosk.domain.kiosks import card_subject, enrol_kiosk, redeem_link, scan_card, wrong_pin_checks
from kiosk.domain.limits import record_hits
from kiosk.domain.online import request_code
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.domain.registry import import_cards, prepare_cards
from kiosk.domain.reprints import reprint
from kiosk.storage.database import run_in_transaction
from kiosk.storage.models import CardRecord, Channel, Code, Event, Issuance, Kiosk, Library, LimitHit
from kiosk.storage.remote import IdempotentAnswer, OutboxMessage

CARD, OTHER_CARD = "12345678", "9999XYZW"
PEPPER = "test-pepper"  # helpers.make_app's
JUNE, JULY, AUGUST = month_window(2026, 6), month_window(2026, 7), month_window(2026, 8)
# What only the others have: none of it may appear in the reader's report.
OTHERS_TEXTS = ("notatka o Bartku", "bartek.nowak@example.org", "XYZW", "notatka innej biblioteki",
                "inna.osoba@example.net", "Filia Inna")


def key_of(card: str) -> str:
    return reader_key(PEPPER, normalise_card(card))


def in_unit(work):
    db.session.commit()
    return run_in_transaction(db.session, work, late_lock=True)


def register(library: Library, rows: list[list]) -> None:
    prepared = prepare_cards(csv_file([["Karta", "E-mail", "Ważna do", "Data urodzenia", "Ostatnie wypożyczenie",
                                        "Zadłużenie"], *rows]), card_pattern=None, check_digit=None, pepper=PEPPER)
    library_id = library.id
    write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))


def enrolled(library: Library, name: str) -> int:
    """A kiosk of the library, enrolled (as its browser's link would)."""
    library_id = library.id
    enrolment = write(lambda s: enrol_kiosk(s, library_id=library_id, name=name, actor=TEST, now=utcnow(),
                                            printer="browser"))
    write(lambda s: redeem_link(s, enrolment.token, utcnow()))
    return enrolment.kiosk.id


def scan(kiosk_id: int, card: str, at):
    return in_unit(lambda s: scan_card(s, kiosk_id=kiosk_id, card=card, now=at, pepper=PEPPER, scanned=True)).result


def at_desk(slug: str, card: str, at, actor: Actor, note: str):
    return in_unit(lambda s: issue_code(s, library_slug=slug, card_number=card, channel=Channel.DESK, actor=actor,
                                        now=at, pepper=PEPPER, note=note))


def online(slug: str, card: str, at, again: bool = False):
    return in_unit(lambda s: request_code(s, None, library_slug=slug, card_number=card, answer=None, language="pl",
                                          now=at, pepper=PEPPER, again=again, client="203.0.113.5"))


def staff(library: Library, name: str) -> Actor:
    library_id = library.id
    user, _password = write(lambda s: create_user(s, username=name, role="desk", library_id=library_id, actor=TEST,
                                                  now=utcnow()))
    return Actor.staff(user.id, name)


def api_issue(client, secret: str, slug: str, card: str, idempotency: str):
    answer = client.post(f"/api/v1/libraries/{slug}/issuances", json={"card": card},
                         headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": idempotency})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["code"]


@pytest.fixture
def seeded(app):
    """The reader, the other card and the other library, served over the months."""
    lib, other = make_library("lib", card_check="registry"), make_library("other", card_check="registry")
    for prefix, window in (("LJUN", JUNE), ("LJUL", JULY), ("LAUG", AUGUST), ("LNOW", this_month())):
        make_pool(lib, codes(prefix, 10), window)
    for prefix, window in (("OJUN", JUNE), ("OJUL", JULY), ("OAUG", AUGUST), ("ONOW", this_month())):
        make_pool(other, codes(prefix, 10), window)
    register(lib, [[CARD, "anna.kowalska@wp.pl", "2099-01-01", "1990-02-01", "2026-05-15", "1,50"],
                   [OTHER_CARD, "bartek.nowak@example.org", "2098-01-01", "1985-03-03", "2026-04-04", "0"]])
    register(other, [[CARD, "inna.osoba@example.net", "2097-01-01", "1970-07-07", "2026-01-01", "9,99"]])
    hall, elsewhere = enrolled(lib, "Hol główny"), enrolled(other, "Filia Inna")
    anna, ola = staff(lib, "anna-desk"), staff(other, "ola-desk")

    # June: the kiosk.
    assert scan(hall, CARD, warsaw(2026, 6, 3, 10)).has_code
    assert scan(hall, OTHER_CARD, warsaw(2026, 6, 3, 11)).has_code
    assert scan(elsewhere, CARD, warsaw(2026, 6, 4, 10)).has_code
    # July: the desk, with notes, and a reprint.
    july = at_desk("lib", CARD, warsaw(2026, 7, 2, 9), anna, "[pełnomocnik] odbiera córka")
    write(lambda s: reprint(s, issuance_id=july.issuance_id, library_id=None, actor=anna, channel=Channel.DESK,
                            now=warsaw(2026, 7, 10, 12)))
    at_desk("lib", OTHER_CARD, warsaw(2026, 7, 2, 10), anna, "notatka o Bartku")
    at_desk("other", CARD, warsaw(2026, 7, 3, 9), ola, "notatka innej biblioteki")
    # The platform's list, as of 3 August: June's codes activated, July's not.
    june_codes = [value for value, in db.session.execute(
        select(Code.value).join(Issuance, Issuance.code_id == Code.id)
        .where(Issuance.window_start == JUNE[0]))]
    prepared = prepare_activations(csv_file([["Kod", "Data aktywacji"], *[[v, "05.06.2026"] for v in june_codes]]))
    library_id, platform_id = lib.id, legimi().id
    write(lambda s: import_activations(s, library_id=library_id, platform_id=platform_id, prepared=prepared,
                                       filename="aktywacje.csv", actor=TEST, now=warsaw(2026, 8, 3, 8)))
    # August: the online form (mailed, asked again), then the code withdrawn and replaced at the desk.
    august = online("lib", CARD, warsaw(2026, 8, 4, 18)).result
    online("lib", CARD, warsaw(2026, 8, 4, 20), again=True)
    write(lambda s: replace_code(s, library_id=library_id, issuance_id=august.issuance_id,
                                 reason="kod nie działa", actor=anna, now=warsaw(2026, 8, 5, 9)))
    online("lib", OTHER_CARD, warsaw(2026, 8, 4, 19))
    online("other", CARD, warsaw(2026, 8, 6, 18))
    # Now: the API, with kept answers; wrong PINs counted against each card.
    client = app.test_client()
    secrets = {}
    for library, name in ((lib, "sowa"), (other, "inna-sowa")):
        library_id = library.id
        secrets[library.slug] = write(lambda s: create_key(s, library_id=library_id, name=name, per_minute=None,
                                                           actor=TEST, now=utcnow())).secret
    api_issue(client, secrets["lib"], "lib", CARD, "a-1")
    api_issue(client, secrets["lib"], "lib", OTHER_CARD, "b-1")
    api_issue(client, secrets["other"], "other", CARD, "c-1")
    # The code shown again at the kiosks: counted against the card at each kiosk.
    for kiosk_id, card in ((hall, CARD), (hall, OTHER_CARD), (elsewhere, CARD)):
        assert scan(kiosk_id, card, utcnow()).has_code
    for library, card in ((lib, CARD), (lib, OTHER_CARD), (other, CARD)):
        library_id = library.id
        write(lambda s: record_hits(s, wrong_pin_checks(library_id, card, PEPPER), utcnow()))
    db.session.commit()
    return lib, other


# -- what the tables hold about the reader, read apart from the report -------------------

def dump(library: Library, card: str) -> dict:
    """The rows about this card in this library, found from the tables themselves."""
    db.session.commit()
    key = key_of(card)
    issuances = list(db.session.scalars(select(Issuance).where(Issuance.library_id == library.id,
                                                               Issuance.reader_key == key).order_by(Issuance.id)))
    ids, code_ids = {i.id for i in issuances}, {i.code_id for i in issuances}
    messages = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.issuance_id.in_(ids))))
    outbox_ids = {m.id for m in messages}

    def about(event: Event) -> bool:
        details = json.loads(event.details)
        return (details.get("issuance_id") in ids or details.get("replaces_issuance_id") in ids
                or details.get("code_id") in code_ids or details.get("outbox_id") in outbox_ids
                or details.get("reader_key") == key)

    events = [e for e in db.session.scalars(select(Event).where(Event.library_id == library.id)) if about(e)]
    kiosks = db.session.scalars(select(Kiosk.id).where(Kiosk.library_id == library.id)).all()
    hashed = card_subject(PEPPER, card)
    hits = [h for h in db.session.scalars(select(LimitHit))
            if h.subject == f"{library.id}:{hashed}" or h.subject in {f"{k}:{hashed}" for k in kiosks}]
    values = {db.session.get(Code, i.code_id).value for i in issuances}
    answers = [a for a in db.session.scalars(select(IdempotentAnswer)) if json.loads(a.body).get("code") in values]
    record = db.session.scalar(select(CardRecord).where(CardRecord.library_id == library.id,
                                                        CardRecord.reader_key == key))
    return dict(key=key, issuances=issuances, codes=values, messages=messages, events=events, hits=hits,
                answers=answers, record=record, hints={i.card_hint for i in issuances},
                notes={i.note for i in issuances if i.note}, emails={m.to_address for m in messages})


def report(runner, *args) -> tuple[int, str]:
    result = runner.invoke(main, ["reader-data", *args])
    return result.exit_code, result.output


def assert_none_of_the_others(text: str, app) -> None:
    for slug, card in (("lib", OTHER_CARD), ("other", CARD)):
        theirs = dump(db.session.scalar(select(Library).where(Library.slug == slug)), card)
        # The same card has the same reader key in every library: only the other card's is theirs alone.
        alone = [theirs["key"]] if card != CARD else []
        leaked = [value for value in (*theirs["codes"], *theirs["notes"], *theirs["emails"], *alone) if value in text]
        assert leaked == [], (slug, card)
        if theirs["record"] is not None:
            assert theirs["record"].email not in text
    assert [value for value in OTHERS_TEXTS if value in text] == []


# -- the domain and the CLI ----------------------------------------------------------

def test_the_json_holds_every_row_about_the_card_and_nothing_of_another(app, runner, seeded):
    lib, _other = seeded
    ours = dump(lib, CARD)

    status, output = report(runner, "--library", "lib", "--card", "1234-5678", "--json")

    assert status == 0, output
    data = json.loads(output)
    assert data["found"] is True and data["library"] == {"slug": "lib", "name": "Biblioteka lib"}
    assert data["reader_key"] == ours["key"] and data["card_hint"] == "5678"
    # Issuances: every one, with its code, window, channel, note, state.
    assert [i["issuance_id"] for i in data["issuances"]] == [i.id for i in ours["issuances"]]
    assert {i["code"] for i in data["issuances"]} == ours["codes"] and len(ours["codes"]) == 5
    assert [i["channel"] for i in data["issuances"]] == ["kiosk", "desk", "online", "online", "api"]
    june, july, august, replacement, _api = data["issuances"]
    assert (june["window_start"], june["window_end"], june["kiosk"]) == ("2026-06-01", "2026-06-30", "Hol główny")
    assert june["activation"] == "activated" and june["activated_on"] == "2026-06-05"
    assert july["note"] == "[pełnomocnik] odbiera córka" and july["actor"] == "staff:anna-desk"
    assert july["print_count"] == 2 and july["activation"] == "not_activated"
    assert july["issued_at"].startswith("2026-07-02T07:00")  # UTC, ISO 8601
    assert august["voided_at"] and august["void_reason"] == "kod nie działa"
    assert august["replaced_by"] == replacement["slip"] and replacement["replaces"] == august["slip"]
    assert august["activation"] == "unknown" and june["first_timer"] is True and july["first_timer"] is False
    # The register's row.
    assert data["register"] == {"expires_on": "2099-01-01", "blocked": False, "birth_date": "1990-02-01",
                                "last_loan": "2026-05-15", "debt_grosze": 150, "email": "anna.kowalska@wp.pl"}
    # The outbox: the code mailed, and mailed again.
    assert sorted(m["message_id"] for m in data["messages"]) == sorted(m.id for m in ours["messages"])
    assert {m["to_address"] for m in data["messages"]} == {"anna.kowalska@wp.pl"}
    assert all(m["slip"] == august["slip"] for m in data["messages"])
    # The log: every event about the reader's issuances, and nothing else.
    assert len(data["events"]) == len(ours["events"]) >= 7
    assert [e["kind"] for e in data["events"]] == [e.kind for e in sorted(ours["events"], key=lambda e: (e.at, e.id))]
    assert {"issue", "reprint", "void", "replace"} <= {e["kind"] for e in data["events"]}
    # The limits: the kiosk's same-card hit may have been dropped since; the wrong PINs are today's.
    assert sorted(h["at"] for h in data["limit_hits"]) == sorted(h.at.isoformat() for h in ours["hits"])
    assert {"card_wrong_pins", "card_wrong_pins_day", "kiosk_same_card"} <= {h["kind"] for h in data["limit_hits"]}
    assert len(data["limit_hits"]) == len(ours["hits"]) >= 3
    # The API's kept answer with the reader's code.
    assert [a["body"]["code"] for a in data["api_answers"]] == [json.loads(a.body)["code"] for a in ours["answers"]]
    assert len(data["api_answers"]) == 1 and data["api_answers"][0]["api_key"] == "sowa"
    assert_none_of_the_others(output, app)


def test_the_text_report_names_every_code_in_polish_dates_and_warsaw_times(app, runner, seeded):
    lib, _other = seeded
    ours = dump(lib, CARD)

    status, output = report(runner, "--library", "lib", "--card", CARD)

    assert status == 0, output
    assert all(code in output for code in ours["codes"])
    assert "Dane czytelnika — Biblioteka lib" in output and "Karta: ••••5678" in output
    assert "ważny 01.07.2026–31.07.2026" in output
    assert "wydano 02.07.2026 09:00: stanowisko (staff:anna-desk); wydruków: 2" in output
    assert "notatka: [pełnomocnik] odbiera córka" in output and "wycofany 05.08.2026 09:00: kod nie działa" in output
    assert "aktywowany 05.06.2026" in output and "nieaktywowany" in output
    assert "anna.kowalska@wp.pl" in output and "Data urodzenia: 01.02.1990" in output
    assert "Zadłużenie: 1,50 zł" in output and "Hol główny" in output
    assert "2026-" not in output  # no ISO date in the text
    assert_none_of_the_others(output, app)


def test_the_same_card_in_the_other_library_gets_that_library_s_data_alone(app, runner, seeded):
    _lib, other = seeded
    theirs = dump(other, CARD)

    status, output = report(runner, "--library", "other", "--card", CARD, "--json")

    data = json.loads(output)
    assert status == 0 and {i["code"] for i in data["issuances"]} == theirs["codes"]
    assert data["register"]["email"] == "inna.osoba@example.net"
    ours = dump(db.session.get(Library, _lib.id), CARD)
    assert [value for value in (*ours["codes"], "anna.kowalska@wp.pl", "odbiera córka", "Hol główny")
            if value in output] == []


def test_the_card_can_be_typed_at_a_prompt_or_piped_never_on_the_command_line(app, runner, seeded):
    on_the_line = runner.invoke(main, ["reader-data", "--library", "lib", "--card", CARD, "--json"]).output
    asked = runner.invoke(main, ["reader-data", "--library", "lib", "--json"], input=f"{CARD}\n")
    piped = runner.invoke(main, ["reader-data", "--library", "lib", "--card", "-", "--json"], input=f"{CARD}\n")

    for result in (asked, piped):
        assert result.exit_code == 0, result.output
        body = result.output[result.output.index("{"):]
        assert json.loads(body)["issuances"] == json.loads(on_the_line)["issuances"] != []
    assert CARD not in asked.output  # the prompt does not echo it


def test_a_lookup_is_logged_without_the_card_and_listed_at_the_next(app, runner, seeded):
    lib, _other = seeded
    before = db.session.query(Event).count()

    report(runner, "--library", "lib", "--card", CARD)
    status, output = report(runner, "--library", "lib", "--card", CARD, "--json")

    db.session.commit()
    logged = db.session.scalars(select(Event).where(Event.kind == "reader_data").order_by(Event.id)).all()
    assert db.session.query(Event).count() == before + 2 and len(logged) == 2
    assert all(e.library_id == lib.id and e.actor.startswith("cli") for e in logged)
    assert all(CARD not in e.details and "5678" not in e.details for e in logged)
    assert json.loads(logged[0].details) == {"form": "text", "found": True, "reader_key": key_of(CARD)}
    # The second lookup lists the first among the card's events.
    assert [e["kind"] for e in json.loads(output)["events"]].count("reader_data") == 1


def test_an_unknown_card_is_an_answer_and_garbage_is_refused(app, runner, seeded):
    status, output = report(runner, "--library", "lib", "--card", "55555555")
    assert status == 0 and "O tej karcie nic nie jest zapisane w tej bibliotece." in output
    status, output = report(runner, "--library", "lib", "--card", "55555555", "--json")
    data = json.loads(output)
    assert data["found"] is False and data["issuances"] == [] and data["register"] is None
    # The first lookup is listed (the log holds it), yet the card is still not known.
    assert [e["kind"] for e in data["events"]] == ["reader_data"]
    assert set(data) == {"library", "generated_at", "reader_key", "card_hint", "found", "register", "issuances",
                         "messages", "events", "limit_hits", "api_answers"}

    for garbage in ("", "   ", "<script>", "12 34; DROP TABLE", "ąęść", "9" * 80):
        status, output = report(runner, "--library", "lib", "--card", garbage)
        assert status == 1 and output.startswith("Karta: "), (garbage, output)
    status, output = report(runner, "--library", "nowhere", "--card", CARD)
    assert status == 2 and "nie ma biblioteki" in output


# -- the staff's page -------------------------------------------------------------------

URL = "/desk/lib/reader-data"


@pytest.mark.parametrize("role", ["desk", "library_admin"])
def test_staff_of_the_library_see_the_report_in_the_page_and_download_it(app, seeded, role):
    lib, _other = seeded
    client, user, _password = signed_in(app, role, lib)
    ours = dump(lib, CARD)

    form = client.get(URL)
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and 'name="card"' in html and 'method="post"' in html
    shown = post(client, URL, {"card": CARD}, token_from=URL)
    fragment = client.post(URL, data={"card": CARD, "csrf_token": token_of(client, URL)},
                           headers={"HX-Request": "true"})

    page = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "<html" in page
    part = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in part and "reader-data" in part
    for text in (page, part):
        assert all(code in text for code in ours["codes"])
        assert "anna.kowalska@wp.pl" in text and "odbiera córka" in text and "Pobierz JSON" in text
        assert_none_of_the_others(text, app)
    download = post(client, f"{URL}.json", {"card": CARD}, token_from=URL)
    assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment;")
    assert CARD not in download.headers["Content-Disposition"]
    data = json.loads(download.get_data(as_text=True))
    assert {i["code"] for i in data["issuances"]} == ours["codes"]
    assert_none_of_the_others(download.get_data(as_text=True), app)
    # Each lookup logged, as this user, without the card.
    db.session.commit()
    logged = db.session.scalars(select(Event).where(Event.kind == "reader_data")).all()
    assert [json.loads(e.details)["form"] for e in logged] == ["page", "page", "json"]
    assert {e.actor for e in logged} == {f"staff:{user.username}"}
    assert all(CARD not in e.details for e in logged)


def test_the_page_says_nothing_stored_and_refuses_garbage(app, seeded, signed_in_desk):
    client = signed_in_desk(seeded[0])

    nothing = post(client, URL, {"card": "55555555"}, token_from=URL)
    garbage = post(client, URL, {"card": "<script>alert(1)</script>"}, token_from=URL)

    assert nothing.status_code == 200 and "O tej karcie nic nie jest zapisane" in nothing.get_data(as_text=True)
    assert garbage.status_code == 400 and "<script>alert" not in garbage.get_data(as_text=True)
    assert "To nie wygląda na numer karty" in garbage.get_data(as_text=True)


def test_another_library_s_staff_and_strangers_are_refused(app, seeded, signed_in_desk, signed_in_admin):
    _lib, other = seeded
    events = db.session.query(Event).count()
    for client in (signed_in_desk(other), signed_in_admin(other)):
        assert client.get(URL).status_code == 404
        own_page = "/desk/other/reader-data"
        for url in (URL, f"{URL}.json"):
            answer = post(client, url, {"card": CARD}, token_from=own_page)
            assert answer.status_code == 404 and "anna.kowalska" not in answer.get_data(as_text=True)
    anonymous = app.test_client()
    assert anonymous.get(URL).status_code == 302
    assert anonymous.post(URL, data={"card": CARD}).status_code in (302, 400)
    assert anonymous.post(URL, data={"card": CARD}, headers={"HX-Request": "true"}).status_code in (401, 400)
    db.session.commit()
    # Only the sign-ins were logged: no lookup.
    assert db.session.scalars(select(Event).where(Event.kind == "reader_data")).all() == []
    assert db.session.query(Event).count() >= events


def test_a_post_without_the_csrf_token_is_refused(app, seeded, signed_in_desk):
    client = signed_in_desk(seeded[0])

    answer = client.post(URL, data={"card": CARD})

    assert answer.status_code == 400 and "anna.kowalska" not in answer.get_data(as_text=True)
    db.session.commit()
    assert db.session.scalars(select(Event).where(Event.kind == "reader_data")).all() == []


def test_the_card_never_reaches_a_url(app, seeded, signed_in_admin):
    client = signed_in_admin(seeded[0])
    page = client.get(URL).get_data(as_text=True)

    assert 'hx-post="/desk/lib/reader-data"' in page and "hx-get" not in page
    # Reached from the desk and from the admin panel's menu.
    assert URL in client.get("/desk/lib/").get_data(as_text=True)
    log = client.get("/admin/lib/events")  # with a register import's list of facts in the log, too
    assert log.status_code == 200 and URL in log.get_data(as_text=True)
    shown = post(client, URL, {"card": CARD}, token_from=URL).get_data(as_text=True)
    assert f"card={CARD}" not in shown and f"/{CARD}" not in shown
