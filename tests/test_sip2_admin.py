"""The library system (SIP2) as an admin meets it: `kiosk sip2` and the panel's form
set the connection (the password sealed, never shown back), `kiosk check-card` and
the panel's connection test ask a real SIP2 server (pysip2, tests/sip2_peers.py)
about one card and say what a kiosk would, with the same reason `kiosk issue` gives.
Nothing of the answer is stored; no log line holds a card number, a PIN or the
password. On SQLite and PostgreSQL."""
from __future__ import annotations

import json
import logging
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import MetaData, func, select

from helpers import codes, csv_file, make_library, make_pool, post, signed_in, this_month, token_of
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.clock import local_day, utcnow
from kiosk.sip2 import close_thread_connections
from kiosk.storage.models import Event, Library, Sip2Setting
from kiosk.storage.secrets import unseal
from sip2_peers import INSTITUTION, Patron, silent_server, sip2_server

LOGIN, PASSWORD, WRONG_PASSWORD = "kodomat", "haslo-Sekret-9", "zle-Haslo-3"
PIN, WRONG_PIN = "Kq7pin", "Zx9pin"
NAME, EMAIL = "Zażółć Gęślą", "zazolc@example.pl"

READER = "29990010000017"  # valid, PIN, debt, birth date, name and e-mail
DENIED = "29990010000025"  # charge privileges denied (status position 0)
LOST = "29990010000033"  # card reported lost (4)
FINES = "29990010000041"  # excessive outstanding fines (10)
TOO_MANY = "29990010000058"  # too many items charged (5): limits loans, not codes
EXPIRED = "29990010000066"  # PA yesterday
LAST_DAY = "29990010000074"  # PA today
UNKNOWN = "29990019999999"  # not in the library system
REGISTERED = "29990020000015"  # in the imported card register only
CARDS = (READER, DENIED, LOST, FINES, TOO_MANY, EXPIRED, LAST_DAY, UNKNOWN, REGISTERED)
SECRETS = (*CARDS, PIN, WRONG_PIN, PASSWORD, WRONG_PASSWORD)
HTMX = {"HX-Request": "true"}


def status(*positions: int) -> str:
    """The 14 patron status flags, 'Y' at the given positions."""
    return "".join("Y" if position in positions else " " for position in range(14))


def patrons() -> dict[str, Patron]:
    today = local_day(utcnow())
    return {
        READER: Patron(pin=PIN, name=NAME, email=EMAIL, fee="2.50", expiry="20991231", birth="20100315"),
        DENIED: Patron(name="Jan Kowalski", status=status(0)),
        LOST: Patron(name="Jan Kowalski", status=status(4)),
        FINES: Patron(name="Jan Kowalski", status=status(10), fee="120.00"),
        TOO_MANY: Patron(name="Ewa Nowak", status=status(5), charged=40),
        EXPIRED: Patron(name="Ewa Nowak", expiry=f"{today - timedelta(days=1):%Y%m%d}"),
        LAST_DAY: Patron(name="Ewa Nowak", expiry=f"{today:%Y%m%d}"),
    }


@pytest.fixture(autouse=True)
def no_secret_is_ever_logged(caplog):
    """Every test: no log record (ours, pysip2's, Flask's, from any thread) holds a card
    number, a PIN or the SIP2 password. The records are read by phase: in a fixture's
    teardown caplog.text holds only the teardown's."""
    caplog.set_level(logging.DEBUG)
    yield
    close_thread_connections()
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = [record for phase in ("setup", "call") for record in caplog.get_records(phase)]
    logged = "\n".join(formatter.format(record) for record in records)
    assert not [secret for secret in SECRETS if secret in logged]


@pytest.fixture
def ils():
    """The library system: pysip2 serving patrons(), asking for a login."""
    with sip2_server(patrons(), login=(LOGIN, PASSWORD)) as server:
        yield server


@pytest.fixture
def library(app):
    library = make_library("lib")
    make_pool(library, codes("SIP", 20), this_month())
    return library


def kiosk(runner, *args):
    result = runner.invoke(main, list(args))
    db.session.remove()
    return result


def set_up(runner, port: int, *extra: str, password: str = PASSWORD):
    """`kiosk sip2` for "lib": this server, logging in, then `extra`."""
    done = kiosk(runner, "sip2", "--library", "lib", "--host", "127.0.0.1", "--port", str(port),
                 "--login", LOGIN, "--password", password, "--institution", INSTITUTION, "--timeout", "2", *extra)
    assert done.exit_code == 0, done.output
    return done


def check_card(runner, card: str, pin: str | None = None) -> dict:
    done = kiosk(runner, "check-card", "--library", "lib", "--card", card, "--json",
                 *(["--pin", pin] if pin is not None else []))
    answer = json.loads(done.output)
    assert done.exit_code == (0 if answer["accepted"] else 1)
    return answer


def issue(runner, card: str, pin: str | None = None) -> dict:
    done = kiosk(runner, "issue", "--library", "lib", "--card", card, "--json",
                 *(["--pin", pin] if pin is not None else []))
    return json.loads(done.output)


def same_verdict(runner, card: str, pin: str | None = None) -> dict:
    """check-card's answer, having checked that `kiosk issue` says the same of the card."""
    checked, issued = check_card(runner, card, pin), issue(runner, card, pin)
    assert issued["reason"] == checked["reason"], (checked, issued)
    assert (issued["status"] == "issued") == checked["accepted"], (checked, issued)
    return checked


def sip2_row() -> dict | None:
    db.session.commit()
    row = db.session.get(Sip2Setting, db.session.scalar(select(Library.id).where(Library.slug == "lib")))
    return None if row is None else {column.name: getattr(row, column.name) for column in Sip2Setting.__table__.c}


def stored() -> tuple:
    """What a refused change must leave as it was."""
    db.session.commit()
    return (sip2_row(), db.session.scalar(select(func.count()).select_from(Event)),
            db.session.scalar(select(Library.card_check).where(Library.slug == "lib")))


def sip2_events() -> list[dict]:
    db.session.commit()
    return [details for details in map(json.loads, db.session.scalars(
        select(Event.details).where(Event.kind == "settings").order_by(Event.id))) if details.get("scope") == "sip2"]


def everything_stored() -> str:
    """Every row of every table (found by reflection, alembic's too), as text; JSON
    cells also decoded, so nothing hides behind an escape."""
    db.session.commit()
    tables = MetaData()
    tables.reflect(bind=db.engine)
    cells = []
    with db.engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    cells.append(str(value))
                    if isinstance(value, str) and value[:1] in "{[":
                        try:
                            cells.append(json.dumps(json.loads(value), ensure_ascii=False))
                        except ValueError:
                            pass
    return "\n".join(cells)


def text_of(response) -> str:
    return response.get_data(as_text=True)


# -- `kiosk sip2`: the settings, the password sealed ---------------------------------------

def test_kiosk_sip2_makes_sip2_the_card_check_and_seals_the_password(app, runner, library, ils):
    assert library.card_check == "format"

    done = set_up(runner, ils.port, "--location", "Hol", "--on-failure", "registry", "--require-pin")

    assert PASSWORD not in done.output
    assert done.output == (f"SIP2 dla lib: 127.0.0.1:{ils.port}, utf-8, 2 s, bez odpowiedzi: registry, "
                           "PIN: tak.\n")
    row = sip2_row()
    assert {key: row[key] for key in ("host", "port", "tls", "ca_file", "login_user", "institution", "location",
                                      "encoding", "timeout_ms", "on_failure", "require_pin")} == {
        "host": "127.0.0.1", "port": ils.port, "tls": False, "ca_file": None, "login_user": LOGIN,
        "institution": INSTITUTION, "location": "Hol", "encoding": "utf-8", "timeout_ms": 2000,
        "on_failure": "registry", "require_pin": True}
    assert PASSWORD not in row["password_sealed"]
    assert unseal(app.config["READER_PEPPER"], row["password_sealed"]) == PASSWORD  # sealed, with the pepper
    assert db.session.scalar(select(Library.card_check).where(Library.slug == "lib")) == "sip2"
    (event,) = sip2_events()
    assert event["password"] == "changed" and event["card_check"] == "sip2" and event["port"] == ils.port
    assert PASSWORD not in everything_stored()


def test_changing_other_fields_keeps_the_password_and_an_empty_login_removes_it(app, runner, library, ils):
    set_up(runner, ils.port)
    sealed = sip2_row()["password_sealed"]

    kept = kiosk(runner, "sip2", "--library", "lib", "--timeout", "1.5", "--location", "Czytelnia")

    assert kept.exit_code == 0 and PASSWORD not in kept.output
    assert sip2_row()["password_sealed"] == sealed and sip2_row()["timeout_ms"] == 1500
    assert "password" not in sip2_events()[-1]
    assert check_card(runner, READER)["accepted"] is True  # still logs in with the saved password
    assert ils.requests[:2] == ["93", "99"]

    renamed = kiosk(runner, "sip2", "--library", "lib", "--login", "kodomat2")  # a new user: the password again
    assert renamed.exit_code == 1 and "podaj hasło ponownie" in renamed.output
    assert sip2_row()["password_sealed"] == sealed and sip2_row()["login_user"] == LOGIN

    removed = kiosk(runner, "sip2", "--library", "lib", "--login", "")

    assert removed.exit_code == 0 and "bez zmian" not in removed.output
    row = sip2_row()
    assert (row["login_user"], row["password_sealed"]) == (None, None)
    assert sip2_events()[-1]["password"] == "removed"
    with sip2_server(patrons()) as open_server:  # a server that binds by address: no login asked
        assert kiosk(runner, "sip2", "--library", "lib", "--port", str(open_server.port)).exit_code == 0
        assert check_card(runner, READER)["accepted"] is True
        assert "93" not in open_server.requests


REFUSED = [
    (["--port", "0"], "Port musi być liczbą od 1 do 65535."),
    (["--port", "70000"], "Port musi być liczbą od 1 do 65535."),
    (["--timeout", "0"], "Czas oczekiwania musi wynosić od 0,5 do 30 sekund."),
    (["--timeout", "100"], "Czas oczekiwania musi wynosić od"),
    (["--tls", "--ca-file", "/nonexistent/ca.pem"], "Nie ma pliku certyfikatu CA „/nonexistent/ca.pem” na serwerze"),
    (["--login", "ktos"], "Podaj hasło użytkownika SIP2 (najwyżej 100 znaków, bez znaku „|”)."),
    (["--institution", "KODO|MAT"], "Identyfikator instytucji: najwyżej 100 znaków, bez znaku „|”."),
    # "Łódź" cannot travel in cp850: the sentence names the field and the encoding.
    (["--institution", "Łódź", "--encoding", "cp850"], "„Identyfikator instytucji” ma znaki, których kodowanie "
                                                       "cp850 nie zapisze"),
]


def test_refused_settings_exit_1_with_the_sentence_and_save_nothing(app, runner, library, ils):
    before = stored()
    assert before[0] is None
    for args, sentence in REFUSED:  # a first set-up: nothing is made
        refused = kiosk(runner, "sip2", "--library", "lib", "--host", "127.0.0.1", "--port", str(ils.port), *args)
        assert refused.exit_code == 1 and sentence in refused.output, (args, refused.output)
        assert stored() == before, args
    assert sip2_events() == []

    kiosk(runner, "sip2", "--library", "lib", "--host", "127.0.0.1", "--port", str(ils.port))  # no login
    before = stored()
    for args, sentence in REFUSED:  # a change: the saved settings stay
        refused = kiosk(runner, "sip2", "--library", "lib", *args)
        assert refused.exit_code == 1 and sentence in refused.output, (args, refused.output)
        assert stored() == before, args
    # The encoding is one of click's choices: refused before anything runs, the value named.
    unknown = kiosk(runner, "sip2", "--library", "lib", "--encoding", "latin2")
    assert unknown.exit_code == 2 and "latin2" in unknown.output and stored() == before


def test_a_new_library_cannot_start_with_sip2_before_its_connection_is_set(app, runner):
    refused = kiosk(runner, "add-library", "nowa", "--name", "Nowa", "--card-check", "sip2")

    assert refused.exit_code == 1 and "Najpierw ustaw połączenie SIP2" in refused.output
    assert db.session.scalar(select(Library.id).where(Library.slug == "nowa")) is None


# -- `kiosk check-card`: what the library system says, as `kiosk issue` reads it ------------

def test_check_card_says_what_the_library_system_knows_of_a_valid_card(app, runner, library, ils):
    set_up(runner, ils.port)

    answer = same_verdict(runner, READER)

    assert answer["accepted"] is True and answer["reason"] is None and answer["source"] == "sip2"
    assert {key: answer["facts"][key] for key in ("valid", "blocked", "flags", "expiry", "debt", "birth_date")} == {
        "valid": True, "blocked": False, "flags": [], "expiry": "2099-12-31", "debt": "2.50",
        "birth_date": "2010-03-15"}
    assert isinstance(answer["ms"], float) and answer["ms"] > 0
    assert NAME not in json.dumps(answer, ensure_ascii=False) and EMAIL not in json.dumps(answer)
    text = kiosk(runner, "check-card", "--library", "lib", "--card", READER).output
    assert "Karta przyjęta." in text and "Zadłużenie: 2,50 zł" in text and "Data urodzenia: 15.03.2010" in text
    assert re.search(r"Sprawdzenie trwało \d+ ms\.", text)


@pytest.mark.parametrize("card, pin, reason", [
    (UNKNOWN, None, "unknown"),
    (DENIED, None, "blocked"),
    (LOST, None, "blocked"),
    (FINES, None, "blocked"),
    (TOO_MANY, None, None),
    (EXPIRED, None, "expired"),
    (LAST_DAY, None, None),
    (READER, WRONG_PIN, "wrong_pin"),
    (READER, PIN, None),
    (UNKNOWN, PIN, "wrong_pin"),  # with a PIN an unknown card reads as a wrong PIN: no probing
], ids=["unknown", "charge-denied", "lost", "fines", "too-many-charged", "expired-yesterday", "expires-today",
        "wrong-pin", "right-pin", "unknown-with-pin"])
def test_check_card_and_issue_give_the_same_reason(app, runner, library, ils, card, pin, reason):
    set_up(runner, ils.port)

    answer = same_verdict(runner, card, pin)

    assert answer["reason"] == reason and answer["accepted"] is (reason is None)
    assert answer["source"] == "sip2"
    assert answer["facts"]["blocked"] is (reason == "blocked")
    if pin is not None and reason is None:
        assert answer["facts"]["pin"] is True
    assert card not in "\n".join(db.session.scalars(select(Event.details)))  # the refusal is logged, not the card


def test_a_refused_login_is_ils_unavailable(app, runner, library, ils):
    set_up(runner, ils.port, password=WRONG_PASSWORD)

    answer = same_verdict(runner, READER)

    assert answer["reason"] == "ils_unavailable" and answer["facts"] == {"error": "login_refused"}
    said = kiosk(runner, "check-card", "--library", "lib", "--card", READER).output
    assert "serwer odrzucił logowanie" in said and WRONG_PASSWORD not in said
    assert "63" not in ils.requests  # nothing asked about a card without a login


def test_a_silent_server_is_ils_unavailable_within_the_timeout(app, runner, library, caplog):
    with silent_server() as silent:
        set_up(runner, silent.port, "--timeout", "1")
        started = time.monotonic()
        answer = check_card(runner, READER)
        took = time.monotonic() - started
        issued = issue(runner, READER)

    assert answer["reason"] == issued["reason"] == "ils_unavailable"
    assert answer["facts"] == {"error": "timeout"}
    # Bounded by the 1 s timeout, with room for a loaded CI machine; the command also starts an app.
    assert 900 <= answer["ms"] < 2500
    assert 0.9 <= took < 4.0
    # Said in the log, without the card: and the log check of every test is not blind.
    assert any(record.name == "kiosk.library_system" and "did not answer" in record.getMessage()
               for record in caplog.records)


def test_with_on_failure_registry_the_card_register_decides_when_the_server_is_silent(app, runner, library,
                                                                                     tmp_path):
    register = tmp_path / "karty.csv"
    register.write_bytes(csv_file([["karta"], [REGISTERED]]))
    with silent_server() as silent:
        set_up(runner, silent.port, "--timeout", "0.5", "--on-failure", "registry")
        imported = kiosk(runner, "import-cards", str(register), "--library", "lib")
        assert imported.exit_code == 0 and "sprawdza tylko format" not in imported.output

        known = same_verdict(runner, REGISTERED)
        stranger = same_verdict(runner, UNKNOWN)
        with_pin = same_verdict(runner, REGISTERED, PIN)

    assert (known["accepted"], known["source"], known["facts"]["library_system"]) == (True, "registry", "timeout")
    assert (stranger["reason"], stranger["source"]) == ("unknown", "registry")
    # The register knows no PINs: a reader who gave one is not let through on it.
    assert with_pin["reason"] == "ils_unavailable"


# -- the panel: the form, the connection test -----------------------------------------------

def sip2_form(server_port: int, **changes) -> dict:
    return {"host": "127.0.0.1", "port": str(server_port), "login_user": LOGIN, "password": PASSWORD,
            "institution": INSTITUTION, "location": "", "encoding": "utf-8", "timeout": "2",
            "on_failure": "refuse", **changes}


def save(admin, server_port: int, **changes):
    """The panel's SIP2 form of "lib", posted with these changes."""
    return post(admin, "/admin/lib/sip2", sip2_form(server_port, **changes), token_from="/admin/lib/settings")


def test_the_panel_saves_the_connection_and_never_shows_the_password(app, library, signed_in_admin, runner, ils):
    admin = signed_in_admin(library)

    saved = save(admin, ils.port, require_pin="1")

    assert saved.status_code == 302 and saved.headers["Location"].endswith("/admin/lib/settings#sip2")
    row = sip2_row()
    assert (row["login_user"], row["require_pin"], row["timeout_ms"]) == (LOGIN, True, 2000)
    assert PASSWORD not in row["password_sealed"]
    page = text_of(admin.get("/admin/lib/settings"))
    assert "Karty są teraz sprawdzane przez SIP2." in page and "Hasło jest zapisane" in page
    assert PASSWORD not in page and row["password_sealed"] not in page
    assert f'name="port" type="number" min="1" max="65535" value="{ils.port}"' in page
    assert '<option value="sip2" selected>' in page

    again = save(admin, ils.port, password="", timeout="1.5")  # the field left empty

    assert again.status_code == 302
    assert sip2_row()["password_sealed"] == row["password_sealed"] and sip2_row()["timeout_ms"] == 1500
    assert [event.get("password") for event in sip2_events()] == ["changed", None]
    assert check_card(runner, READER)["accepted"] is True  # logs in with the saved password
    page = text_of(admin.get("/admin/lib/settings"))
    assert PASSWORD not in page and "Hasło jest zapisane" in page


def test_a_refused_form_answers_400_with_the_sentences_and_saves_nothing(app, library, signed_in_admin, ils):
    admin = signed_in_admin(library)
    before = stored()

    refused = save(admin, ils.port, port="0", encoding="latin2", timeout="0", institution="A|B", password="")

    page = text_of(refused)
    assert refused.status_code == 400
    for sentence in ("Port musi być liczbą od 1 do 65535.", "Nieznane kodowanie „latin2”.",
                     "Czas oczekiwania musi wynosić od",
                     "Identyfikator instytucji: najwyżej 100 znaków, bez znaku „|”.",
                     "Podaj hasło użytkownika SIP2"):
        assert f'<p class="alert" role="alert">{sentence}' in page, sentence
    assert stored() == before
    # What was typed comes back to be corrected (a first set-up loses nothing), the password never.
    assert 'name="host" value="127.0.0.1"' in page and 'value="A|B"' in page and 'value="0"' in page
    typed_password = text_of(save(admin, ils.port, port="0"))
    assert PASSWORD not in typed_password


def check(client, card: str, pin: str = "", headers: dict | None = None):
    return post(client, "/admin/lib/sip2/check", {"card": card, "pin": pin}, token_from="/admin/lib/settings",
                headers=headers or {})


def test_the_connection_test_answers_the_verdict_its_time_and_the_facts(app, library, signed_in_admin, ils):
    admin = signed_in_admin(library)
    assert 'id="sip2-card"' not in text_of(admin.get("/admin/lib/settings"))  # nothing to test before a set-up
    save(admin, ils.port)
    settings = text_of(admin.get("/admin/lib/settings"))
    assert re.search(r'<form method="post" action="/admin/lib/sip2/check"[^>]*hx-post="/admin/lib/sip2/check"',
                     settings)

    fragment = check(admin, READER, PIN, HTMX)
    whole = check(admin, READER, PIN)

    assert fragment.status_code == whole.status_code == 200
    part = text_of(fragment)
    assert part.startswith('<div id="sip2-check" role="status">') and "<h1>" not in part
    assert "<h1>" in text_of(whole) and '<div id="sip2-check" role="status">' in text_of(whole)
    for answer in (part, text_of(whole)):
        assert "Karta przyjęta." in answer and re.search(r"Sprawdzenie trwało \d+ ms\.", answer)
        assert "<dt>PIN poprawny</dt><dd>tak</dd>" in answer and "<dt>Zadłużenie</dt><dd>2,50 zł</dd>" in answer
        assert "<dt>Data urodzenia</dt><dd>15.03.2010</dd>" in answer
        assert "<dt>Ważna do</dt><dd>31.12.2099</dd>" in answer
        assert PIN not in answer and READER not in answer and NAME not in answer and EMAIL not in answer
    for response in (fragment, whole):  # the card went in the body; no header puts it in a URL
        assert not {"Location", "HX-Push-Url", "HX-Replace-Url", "HX-Redirect"} & set(response.headers.keys())
    # A card in a URL is not taken: the check is POST only.
    assert admin.get(f"/admin/lib/sip2/check?card={READER}").status_code == 405

    wrong = text_of(check(admin, READER, WRONG_PIN, HTMX))
    blocked = text_of(check(admin, FINES, headers=HTMX))
    assert "Karta odrzucona: Numer karty albo PIN się nie zgadza." in wrong and WRONG_PIN not in wrong
    assert "Karta odrzucona: Karta jest zablokowana." in blocked
    assert "<dt>Zablokowana</dt><dd>tak (za wysokie kary)</dd>" in blocked
    assert "<dt>Zadłużenie</dt><dd>120,00 zł</dd>" in blocked


def test_a_silent_library_system_is_named_in_the_connection_test(app, library, signed_in_admin):
    admin = signed_in_admin(library)
    with silent_server() as silent:
        save(admin, silent.port, login_user="", password="", timeout="0.5")
        answer = text_of(check(admin, READER, headers=HTMX))

    assert "Karta odrzucona: Nie możemy teraz sprawdzić Twojej karty w systemie biblioteki." in answer
    assert "<dt>System biblioteki</dt><dd>serwer nie odpowiedział na czas</dd>" in answer


def test_another_library_s_admin_gets_404_and_its_library_system_is_not_asked(app, library, signed_in_admin, ils):
    ours = signed_in_admin(library)
    save(ours, ils.port)
    stranger = signed_in_admin(make_library("bbb"))
    desk, _user, _password = signed_in(app, "desk", library)
    token, desk_token = token_of(stranger, "/admin/bbb/settings"), token_of(desk, "/desk/lib/")
    before, asked = stored(), len(ils.requests)

    attempts = [stranger.post("/admin/lib/sip2", data={**sip2_form(1), "csrf_token": token}),
                stranger.post("/admin/lib/sip2/check", data={"card": READER, "pin": PIN, "csrf_token": token}),
                stranger.get("/admin/lib/settings")]
    from_desk = [desk.post("/admin/lib/sip2", data={**sip2_form(1), "csrf_token": desk_token}),
                 desk.post("/admin/lib/sip2/check", data={"card": READER, "csrf_token": desk_token})]

    assert [attempt.status_code for attempt in attempts] == [404, 404, 404]
    assert [attempt.status_code for attempt in from_desk] == [403, 403]
    assert stored() == before and len(ils.requests) == asked


def test_choosing_sip2_in_the_settings_before_the_connection_is_refused(app, library, signed_in_admin, ils):
    admin = signed_in_admin(library)
    general = {"name": "Biblioteka lib", "slip_header": "", "card_check": "sip2", "card_pattern": "",
               "check_digit": "", "low_pool_percent": "10", "kiosk_idle_seconds": "60", "desk_printer": "browser"}
    before = stored()

    refused = post(admin, "/admin/lib/settings", general, token_from="/admin/lib/settings")

    assert refused.status_code == 400
    assert "Najpierw ustaw połączenie SIP2 (formularz „System biblioteki (SIP2)” poniżej" in text_of(refused)
    assert stored() == before
    save(admin, ils.port)
    assert post(admin, "/admin/lib/settings", {**general, "card_check": "registry"},
                token_from="/admin/lib/settings").status_code == 302
    assert post(admin, "/admin/lib/settings", general, token_from="/admin/lib/settings").status_code == 302
    assert stored()[2] == "sip2"  # with the connection set, sip2 can be chosen again


# -- nothing of the answer is kept ---------------------------------------------------------

def test_nothing_the_library_system_says_of_a_reader_is_stored(app, runner, library, signed_in_admin,
                                                                signed_in_desk, enrolled_kiosk, ils):
    admin = signed_in_admin(library)
    save(admin, ils.port)
    kiosk_browser, _enrolment = enrolled_kiosk(library)
    desk = signed_in_desk(library)

    assert check_card(runner, READER, PIN)["accepted"] is True
    assert "Karta przyjęta." in text_of(check(admin, READER, PIN, HTMX))
    scanned = post(kiosk_browser, "/kiosk/scan", {"card": READER, "entry": "scan"}, token_from="/kiosk/")
    issued = post(desk, "/desk/lib/issue", {"card": READER}, token_from="/desk/lib/")
    refused = post(desk, "/desk/lib/issue", {"card": FINES}, token_from="/desk/lib/")

    assert scanned.status_code == issued.status_code == refused.status_code == 200
    assert ils.requests.count("63") == 5  # every channel asked
    everything = everything_stored()
    assert "SIP000001" in everything  # the dump holds what was issued
    for kept in (NAME, "Zażółć", "Gęślą", EMAIL, "Jan Kowalski", "120.00", PIN, PASSWORD):
        assert kept not in everything, kept
    events = "\n".join(db.session.scalars(select(Event.details)))
    assert READER not in events and FINES not in events
    assert READER not in everything and FINES not in everything


def test_a_new_server_or_user_needs_the_password_typed_again(app, runner, library, ils):
    """The saved password goes only where it was set: moved to another host or port,
    or given another user, it is asked again, or an admin could read it off a server
    of their own."""
    set_up(runner, ils.port)
    before = stored()
    with silent_server() as elsewhere:
        for args in (["--port", str(elsewhere.port)], ["--host", "localhost"], ["--login", "ktos-inny"]):
            refused = kiosk(runner, "sip2", "--library", "lib", *args)
            assert refused.exit_code == 1 and "podaj hasło ponownie" in refused.output, (args, refused.output)
            assert stored() == before, args
        assert elsewhere.connections == 0
        moved = kiosk(runner, "sip2", "--library", "lib", "--port", str(elsewhere.port), "--password", "nowe-Haslo-1")
    assert moved.exit_code == 0
    # Anything else may change without the password: it stays.
    kiosk(runner, "sip2", "--library", "lib", "--port", str(ils.port), "--password", PASSWORD)
    assert kiosk(runner, "sip2", "--library", "lib", "--timeout", "2,5").exit_code == 0
    assert check_card(runner, READER)["accepted"] is True


def test_a_new_encoding_needs_the_password_again_and_a_host_must_be_a_name(app, runner, library, ils):
    set_up(runner, ils.port)
    before = stored()
    recoded = kiosk(runner, "sip2", "--library", "lib", "--encoding", "cp850")
    assert recoded.exit_code == 1 and "podaj hasło ponownie" in recoded.output and stored() == before
    for host in ("koha..wola.pl", "a" * 64 + ".pl", "http://koha"):
        typo = kiosk(runner, "sip2", "--library", "lib", "--host", host, "--password", PASSWORD)
        assert typo.exit_code == 1 and "Podaj adres serwera SIP2" in typo.output, host
    assert stored() == before
