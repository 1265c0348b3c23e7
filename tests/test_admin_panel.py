"""The admin panel as an admin sees it: next month's pools, the report's default
month and its new figures, the event log in words (kinds, codes, slips, paging),
settings in words, generated passwords and their change at the first sign-in.
On SQLite and PostgreSQL."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from helpers import (codes, login, make_library, make_pool, new_kiosk, post, signed_in, this_month,
                     warsaw, write)
from kiosk.app.extensions import db
from kiosk.domain.accounts import PASSWORD_ALPHABET, create_user, new_password
from kiosk.domain.actors import Actor
from kiosk.domain.clock import month_window, utcnow
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.issuing import issue_code
from kiosk.domain.reports import monthly_report
from kiosk.storage.models import Channel, Library, StaffUser
from kiosk.wording.names import EVENT_NAMES, pattern_example

JANUARY_2020 = (warsaw(2020, 1, 1).date(), warsaw(2020, 1, 31).date())
# 0/O/o, 1/l/I, 5/S and the rest, and the small letter of a capital that looks the same (m/M…)
LOOK_ALIKES = "0OoQD1lIij|!5Ss2Zz8B6Gb9gqUuVvYyCcKmpwx"


def next_month() -> tuple:
    first, _last = this_month()
    return month_window(*(first + timedelta(days=32)).timetuple()[:2])


def previous_month() -> tuple:
    first, _last = this_month()
    return month_window(*(first - timedelta(days=1)).timetuple()[:2])


def text_of(response) -> str:
    return response.get_data(as_text=True)


def issue_as(app, library: str, card: str, at: datetime, actor: Actor, channel: Channel = Channel.KIOSK,
             show_reprint: bool = True):
    return write(lambda s: issue_code(s, library_slug=library, card_number=card, channel=channel, actor=actor,
                                      now=at, pepper=app.config["READER_PEPPER"], show_reprint=show_reprint))


# -- 22: the dashboard -----------------------------------------------------------------------

def test_dashboard_shows_next_month_s_pool(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("NOW", 3), this_month(), filename="teraz.xlsx")
    admin = signed_in_admin(library)
    label = next_month()[0].strftime("%m.%Y")

    before = text_of(admin.get("/admin/aaa/"))
    make_pool(library, codes("NEXT", 4), next_month(), filename="nastepny.xlsx")
    after = text_of(admin.get("/admin/aaa/"))

    assert f"Legimi: nie ma jeszcze puli na {label}." in before and "nastepny.xlsx" not in before
    assert f"Legimi: pula na {label} jest gotowa." in after
    assert "nastepny.xlsx" in after and "teraz.xlsx" in after


def test_a_first_month_s_report_defaults_to_this_month(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("NOW", 3), this_month())
    admin = signed_in_admin(library)
    month_field = re.compile(r'id="report-month" name="month" type="month" value="([0-9-]+)"')

    first_month = month_field.search(text_of(admin.get("/admin/aaa/"))).group(1)
    make_pool(library, codes("OLD", 3), previous_month(), filename="stary.xlsx")
    later = month_field.search(text_of(admin.get("/admin/aaa/"))).group(1)

    assert first_month == this_month()[0].strftime("%Y-%m")
    assert later == previous_month()[0].strftime("%Y-%m")


# -- 23: the report ---------------------------------------------------------------------------

def test_report_has_reprints_refusals_kiosks_readers_and_every_code(app):
    library = make_library("lib")
    make_pool(library, codes("JAN", 3), JANUARY_2020)
    hall = new_kiosk(library, name="Hol").kiosk.id
    upstairs = new_kiosk(library, name="Piętro").kiosk.id
    desk_user = write(lambda s: create_user(s, username="ola", role="desk", library_id=library.id,
                                            actor=Actor.system("test"), now=utcnow()))[0]
    at_desk = Actor.staff(desk_user.id, "ola")
    first = issue_as(app, "lib", "00001001", warsaw(2020, 1, 10, 9, 5), Actor.kiosk(hall))
    issue_as(app, "lib", "00001001", warsaw(2020, 1, 10, 9, 6), Actor.kiosk(hall))  # a reprint
    issue_as(app, "lib", "00001001", warsaw(2020, 1, 11, 9), Actor.kiosk(upstairs), show_reprint=False)
    issue_as(app, "lib", "00002002", warsaw(2020, 1, 12, 10), Actor.kiosk(upstairs))
    issue_as(app, "lib", "ABC", warsaw(2020, 1, 12, 11), Actor.kiosk(hall))  # too short: format
    issue_as(app, "lib", "3003", warsaw(2020, 1, 13, 12), at_desk, Channel.DESK)  # no card hint
    issue_as(app, "lib", "00004004", warsaw(2020, 1, 14, 12), at_desk, Channel.DESK)  # no codes left
    issue_as(app, "lib", "00001001", warsaw(2020, 2, 1, 12), Actor.kiosk(hall))  # February: no pool
    db.session.commit()

    data = monthly_report(db.session, year=2020, month=1, library_ids=[library.id], now=warsaw(2020, 2, 10))
    book = load_workbook(io.BytesIO(data))
    sheet = [tuple(cell.value for cell in row) for row in book["lib"].iter_rows()]
    listed = [tuple(cell.value for cell in row) for row in book["Wydane kody"].iter_rows()]

    def value(label):
        return next(row[1] for row in sheet if row[0] == label)

    assert book.sheetnames == ["lib", "Wydane kody"]
    assert value("Czytelnicy (bez powtórzeń)") == 3 and value("Ponowne wydruki") == 1
    assert value("karta: numer nie tej biblioteki") == 1 and value("brak wolnych kodów") == 1
    assert value("kod nie pokazany ponownie (numer wpisany, nie zeskanowany)") == 1
    assert value("brak puli") == 0 and value("karta: zablokowana") == 0  # February's refusal is not January's
    assert value("Hol") == 1 and value("Piętro") == 1
    assert listed == [
        ("Biblioteka", "Wydano", "Kod", "Kanał", "Kiosk lub pracownik", "Karta", "Wycofany"),
        ("lib", datetime(2020, 1, 10, 9, 5), first.code, "kiosk", "Hol", "••••1001", None),
        ("lib", datetime(2020, 1, 12, 10), listed[2][2], "kiosk", "Piętro", "••••2002", None),
        ("lib", datetime(2020, 1, 13, 12), listed[3][2], "stanowisko", "ola", "—", None),
    ]
    assert book["Wydane kody"]["B2"].number_format == "DD.MM.YYYY HH:MM"


def test_the_list_of_codes_stays_text_and_free_of_control_characters(app):
    library = make_library("lib")
    make_pool(library, codes("JAN", 1), JANUARY_2020)
    kiosk_id = new_kiosk(library, name='=HYPERLINK("http://x","Hol")\x07').kiosk.id
    issue_as(app, "lib", "00001001", warsaw(2020, 1, 10, 9), Actor.kiosk(kiosk_id))
    db.session.commit()

    book = load_workbook(io.BytesIO(monthly_report(db.session, year=2020, month=1, library_ids=None,
                                                   now=warsaw(2020, 2, 10))))
    row = book["Wydane kody"][2]

    assert (row[4].value, row[4].data_type) == ('=HYPERLINK("http://x","Hol")', "s")
    assert row[4].quotePrefix


# -- 24: the event log ----------------------------------------------------------------------------

def test_event_kinds_are_named_in_polish_english_and_ukrainian(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("EV", 3), this_month())
    issue_as(app, "aaa", "00001001", utcnow(), Actor.system("test"))
    admin = signed_in_admin(library)

    polish = text_of(admin.get("/admin/aaa/events"))
    admin.get("/language/en")
    english = text_of(admin.get("/admin/aaa/events"))
    admin.get("/language/uk")
    ukrainian = text_of(admin.get("/admin/aaa/events"))

    assert set(EVENT_NAMES) == set(EventKind)
    assert "<td>wydanie kodu</td>" in polish and "<td>code issued</td>" in english
    assert "<td>видача коду</td>" in ukrainian
    assert "<td>issue</td>" not in polish + english + ukrainian


def test_details_name_the_code_and_the_slip_and_the_log_filters_by_code(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("EV", 3), this_month())
    mine = issue_as(app, "aaa", "00001001", utcnow(), Actor.system("test"))
    issue_as(app, "aaa", "00001001", utcnow(), Actor.system("test"))  # a reprint of the same slip
    other = issue_as(app, "aaa", "00002002", utcnow(), Actor.system("test"))
    admin = signed_in_admin(library)
    slip = f"S{mine.issuance_id:06d}"

    everything = text_of(admin.get("/admin/aaa/events"))
    by_code = text_of(admin.get(f"/admin/aaa/events?code={mine.code.lower()}"))
    unknown = text_of(admin.get("/admin/aaa/events?code=NO-SUCH-CODE"))

    assert f"{mine.code} ({slip})" in everything and other.code in everything
    assert "issuance_id" not in everything and "code_id" not in everything
    assert by_code.count("<td>wydanie kodu</td>") == 1 and by_code.count("<td>ponowny wydruk</td>") == 1
    assert other.code not in by_code and "<td>nowe konto</td>" not in by_code
    assert "Brak zdarzeń" in unknown


def test_the_log_pages_past_200_rows_keeping_the_filters(app, signed_in_admin):
    library = make_library("aaa")
    library_id, start = library.id, utcnow() - timedelta(hours=10)

    def log(s):
        for n in range(450):
            record_event(s, kind=EventKind.SETTINGS, actor=Actor.system("test"), library_id=library_id,
                         now=start + timedelta(seconds=n), n=n)
    write(log)
    admin = signed_in_admin(library)

    first = text_of(admin.get("/admin/aaa/events?kind=settings"))
    older = re.search(r'id="older" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = text_of(admin.get(older))
    third_link = re.search(r'id="older" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    third = text_of(admin.get(third_link))

    assert "kind=settings" in older and "page=2" in older and "page=3" in third_link
    assert [page.count("<td>zmiana ustawień</td>") for page in (first, second, third)] == [200, 200, 50]
    assert "n: 449" in first and "n: 249" in second and "n: 0" in third
    assert 'id="newer"' not in first and 'id="newer"' in third and 'id="older"' not in third


# -- 25: values in words -------------------------------------------------------------------------------

def test_settings_users_and_kiosks_say_values_in_words(app, signed_in_admin):
    app.config["PRINTERS"] = ["escpos-tcp:192.168.1.50", "cups:desk"]
    library = make_library("aaa")
    new_kiosk(library, printer="cups:desk", name="Hol")
    admin = signed_in_admin(library)

    settings = text_of(admin.get("/admin/aaa/settings"))
    kiosks = text_of(admin.get("/admin/aaa/kiosks"))
    users = text_of(admin.get("/admin/aaa/users"))

    for words in ("tylko format numeru", "rejestr kart z systemu bibliotecznego", "drukarka przeglądarki",
                  "drukarka paragonów w sieci 192.168.1.50", "CUPS: kolejka desk", "Luhn (mod 10)",
                  "Przykład numeru, który ten wzorzec przyjmie: AB12CD34"):
        assert words in settings, words
    assert ">format<" not in settings and ">registry<" not in settings and ">browser<" not in settings
    assert "CUPS: kolejka desk" in kiosks and "drukarka paragonów w sieci 192.168.1.50" in kiosks
    assert ">cups:desk<" not in kiosks
    assert "administrator biblioteki" in users and ">library_admin<" not in users


def test_the_card_pattern_comes_with_an_example_or_says_it_has_none(app, signed_in_admin):
    library = make_library("aaa", card_pattern=r"\d{10}")
    admin = signed_in_admin(library)
    digits = text_of(admin.get("/admin/aaa/settings"))
    db.session.get(Library, library.id).card_pattern = "[^\\x00-\\x7f]{4}"  # no ASCII: nothing to show
    db.session.commit()
    none = text_of(admin.get("/admin/aaa/settings"))

    assert "Przykład numeru, który ten wzorzec przyjmie: 1234567890" in digits
    assert "Nie umiem podać przykładu numeru" in none


@pytest.mark.parametrize("pattern, check_digit, example", [
    (None, None, "AB12CD34"), (r"[A-Z0-9]{4,32}", None, "AB12CD34"), (r"\d{10}", None, "1234567890"),
    (r"\d{10}", "luhn", "1234567897"), (r"\d{13}", "ean", "1234567890128"), (r"[A-Z]{2}\d{6}", None, "AB345678"),
    (r"29\d{8}", None, "2934567890"), ("(?i)x(?=y)", None, None), ("[^\\x00-\\x7f]+", None, None),
])
def test_pattern_examples(pattern, check_digit, example):
    assert pattern_example(pattern, check_digit) == example


# -- 26: passwords ---------------------------------------------------------------------------------------

def test_generated_passwords_have_no_look_alikes_and_are_strong():
    passwords = [new_password() for _ in range(3000)]

    assert len(set(passwords)) == len(passwords)
    assert not set("".join(passwords)) & set(LOOK_ALIKES)
    assert set("".join(passwords)) == set(PASSWORD_ALPHABET)
    for password in passwords:
        assert len(password) >= 12
        assert re.search("[A-Z]", password) and re.search("[a-z]", password) and re.search("[0-9]", password)


def test_a_new_user_changes_the_generated_password_first(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    added = post(admin, "/admin/aaa/users", {"username": "ola", "role": "library_admin"},
                 token_from="/admin/aaa/users")
    password = re.search(r'<span class="mono">([^<]+)</span>', text_of(added)).group(1)
    ola = app.test_client()

    signed = login(ola, "ola", password)
    desk, panel = ola.get("/desk/aaa/"), ola.get("/admin/aaa/")
    fragment = ola.get("/desk/aaa/", headers={"HX-Request": "true"})
    form = text_of(ola.get("/account/password"))
    changed = post(ola, "/account/password", {"current": password, "new": "a-password-of-my-own"},
                   token_from="/account/password")

    assert signed.headers["Location"].endswith("/account/password")
    assert desk.status_code == panel.status_code == 302
    assert desk.headers["Location"].endswith("/account/password") and panel.headers["Location"].endswith(
        "/account/password")
    assert fragment.headers.get("HX-Redirect", "").endswith("/account/password")
    assert "Ustaw własne hasło, zanim zaczniesz pracę" in form
    assert changed.status_code == 302 and changed.headers["Location"].endswith("/desk/aaa/")
    assert ola.get("/desk/aaa/").status_code == 200 and ola.get("/admin/aaa/").status_code == 200
    assert not db.session.scalar(select(StaffUser).where(StaffUser.username == "ola")).must_change_password


def test_a_password_reset_by_an_admin_must_be_changed_too(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    ola, user, _old = signed_in(app, "desk", library, username="ola")
    assert ola.get("/desk/aaa/").status_code == 200  # made without the flag, as the test helpers do

    reset = post(admin, f"/admin/aaa/users/{user.id}", {"action": "reset"}, token_from="/admin/aaa/users")
    password = re.search(r'id="reset-user">[^<]*<span class="mono">([^<]+)</span>', text_of(reset)).group(1)
    again = app.test_client()

    assert login(again, "ola", password).headers["Location"].endswith("/account/password")
    assert again.get("/desk/aaa/").headers["Location"].endswith("/account/password")
    assert ola.get("/desk/aaa/").status_code == 302  # the old session ended


def test_the_demo_admin_changes_the_printed_password_first(app, tmp_path):
    from kiosk.cli.demo import DEMO_ADMIN, demo_admin_password, seed_demo

    seed_demo(db.session, instance=tmp_path, now=utcnow())
    password = demo_admin_password(db.session, now=utcnow())
    client = app.test_client()

    signed = login(client, DEMO_ADMIN, password)
    blocked = client.get("/admin/demo/")
    changed = post(client, "/account/password", {"current": password, "new": "my-own-demo-password"},
                   token_from="/account/password")

    assert signed.headers["Location"].endswith("/account/password")
    assert blocked.headers["Location"].endswith("/account/password")
    assert changed.headers["Location"].endswith("/desk/demo/")
    assert client.get("/admin/demo/").status_code == 200
