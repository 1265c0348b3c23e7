"""The admin panel's "Zasady wydawania": every rule in one form with its name in
words, saved all or nothing with each problem beside its field, when each
platform's next codes come, and a check of what a reader would get at a chosen
moment that writes nothing. Scoped like the other admin pages. On SQLite and
PostgreSQL."""
from __future__ import annotations

import json
from datetime import time

from sqlalchemy import func, select

from helpers import TEST, codes, make_library, make_pool, post, signed_in, warsaw, write
from kiosk.app.extensions import db
from kiosk.domain.events import EventKind
from kiosk.domain.rules import PlatformsRule, ReleaseDay, Rules, parse_changes, rules_for, save_rules
from kiosk.storage.models import Code, CodeStatus, Event, Issuance, RuleSet

JANUARY_2027 = (warsaw(2027, 1, 1).date(), warsaw(2027, 1, 31).date())  # 1st: a holiday, then a weekend
DECEMBER_2026 = (warsaw(2026, 12, 1).date(), warsaw(2026, 12, 31).date())
HTMX = {"HX-Request": "true"}
VALID = {"release_day": "first_working_day", "release_time": "10:00", "early_release": "off", "min_age": "13",
         "active_within_months": "", "max_debt": "5,50", "non_activation_wait": "", "first_timer_reserve": "10",
         "first_timer_until_day": "", "platforms_rule": "independent", "priority_until_day": ""}


def text_of(response) -> str:
    return response.get_data(as_text=True)


def set_rules(library, **changes) -> None:
    library_id, parsed = library.id, parse_changes(changes)
    write(lambda s: save_rules(s, library_id, parsed, TEST, warsaw(2026, 1, 1, 8)))


def stored() -> dict:
    """What a check must leave as it was: issuances, events, the codes' states."""
    db.session.commit()
    return {"issuances": db.session.scalar(select(func.count()).select_from(Issuance)),
            "events": db.session.scalar(select(func.count()).select_from(Event)),
            "free": db.session.scalar(select(func.count()).select_from(Code)
                                      .where(Code.status == CodeStatus.AVAILABLE.value))}


def rule_events() -> list[dict]:
    db.session.commit()
    return [json.loads(details) for details in db.session.scalars(
        select(Event.details).where(Event.kind == EventKind.RULES.value))]


def check(client, card: str, moment: str, platform: str = "legimi", headers: dict | None = None):
    return post(client, "/admin/aaa/rules/check", {"card": card, "moment": moment, "platform": platform},
                token_from="/admin/aaa/rules", headers=headers or {})


# -- the page and the form ----------------------------------------------------------------

def test_the_page_names_every_rule_in_words_and_says_they_are_off(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)

    page = text_of(admin.get("/admin/aaa/rules"))

    assert '<label for="rule-release_time">Godzina wydawania</label>' in page
    assert '<label for="rule-min_age">Najniższy wiek czytelnika (lata)</label>' in page
    assert "<code>min_age</code>" in page  # the --set name, small, beside the label
    assert "weekend, święto lub dzień zamknięcia przesuwa dzień" in page  # each rule's one-line help
    assert "<dt>Najniższy wiek czytelnika (lata)</dt><dd>wyłączona</dd>" in page
    assert "<dd>pierwszy dzień okresu ważności puli</dd>" in page
    assert "puste = zasada wyłączona" in page and 'type="time" value="00:00"' in page
    assert '<option value="first_working_day">pierwszy dzień roboczy miesiąca</option>' in page
    assert "Ta biblioteka nie ma puli kodów na ten ani na następne miesiące." in page
    assert 'href="/admin/aaa/rules"' in text_of(admin.get("/admin/aaa/settings"))  # in the panel's navigation


def test_saving_a_valid_set_changes_the_rules_logs_them_and_says_what_changed(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)

    answer = post(admin, "/admin/aaa/rules", VALID, token_from="/admin/aaa/rules")

    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/aaa/rules")
    db.session.commit()
    assert rules_for(db.session, library.id) == Rules(
        release_day=ReleaseDay.FIRST_WORKING_DAY, release_time=time(10, 0), min_age=13, max_debt_grosze=550,
        first_timer_reserve=10)
    assert [event["changed"] for event in rule_events()] == [{
        "release_day": ["window_start", "first_working_day"], "release_time": ["00:00", "10:00"],
        "min_age": ["off", "13"], "max_debt": ["off", "5.50"], "first_timer_reserve": ["off", "10"]}]
    page = text_of(admin.get("/admin/aaa/rules"))
    assert "Godzina wydawania: 00:00 → 10:00" in page
    assert "Największe dopuszczalne zadłużenie (zł): wyłączona → 5,50 zł" in page
    assert 'value="5,50"' in page and 'value="13"' in page

    post(admin, "/admin/aaa/rules", VALID, token_from="/admin/aaa/rules")
    assert "nic się nie zmieniło" in text_of(admin.get("/admin/aaa/rules"))
    assert len(rule_events()) == 1


def test_bad_values_are_refused_beside_their_fields_and_nothing_is_saved(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    typed = {**VALID, "min_age": "abc", "release_time": "25:00", "max_debt": "-1"}

    answer = post(admin, "/admin/aaa/rules", typed, token_from="/admin/aaa/rules")

    page = text_of(answer)
    assert answer.status_code == 400
    assert 'id="rule-release_time-error" class="field-error">Godzina wydawania: „25:00” to nie jest godzina (GG:MM).' \
        in page
    assert ('id="rule-min_age-error" class="field-error">Najniższy wiek czytelnika (lata): „abc” — podaj liczbę '
            'całkowitą od 1 do 120 albo zostaw pole puste.') in page
    assert ('id="rule-max_debt-error" class="field-error">Największe dopuszczalne zadłużenie (zł): „-1” to nie jest '
            'kwota od 0 do 100000 zł (np. 5,50).') in page
    assert "Nic nie zapisano." in page and 'aria-invalid="true"' in page
    # The form keeps what the admin typed, the good values too.
    assert 'value="abc"' in page and 'value="25:00"' in page and 'value="-1"' in page and 'value="10"' in page
    assert '<option value="first_working_day" selected>' in page
    db.session.commit()
    assert rules_for(db.session, library.id) == Rules()
    assert db.session.get(RuleSet, library.id) is None and rule_events() == []


def test_another_library_s_admin_and_a_desk_user_can_neither_see_nor_change_the_rules(
        app, signed_in_admin, signed_in_desk):
    library, other = make_library("aaa"), make_library("bbb")
    make_pool(library, codes("AAA", 2), JANUARY_2027)
    theirs, desk = signed_in_admin(other), signed_in_desk(library)
    chief, _user, _password = signed_in(app, "consortium_admin")
    before = stored()

    for client, status, token_from in ((theirs, 404, "/admin/bbb/rules"), (desk, 403, "/desk/aaa/")):
        assert client.get("/admin/aaa/rules").status_code == status
        assert post(client, "/admin/aaa/rules", VALID, token_from=token_from).status_code == status
        assert post(client, "/admin/aaa/rules/check", {"card": "12345678", "moment": "2027-01-04T10:00",
                                                       "platform": "legimi"}, token_from=token_from).status_code \
            == status

    assert rules_for(db.session, library.id) == Rules() and stored() == before
    assert chief.get("/admin/aaa/rules").status_code == 200  # the consortium admin serves every library


# -- when the next codes come ------------------------------------------------------------

def test_each_platform_says_when_its_codes_come_on_the_working_day(app, signed_in_admin, monkeypatch):
    library = make_library("aaa")
    make_pool(library, codes("DEC", 2), DECEMBER_2026)
    make_pool(library, codes("JAN", 2), JANUARY_2027)
    set_rules(library, release_day="first_working_day", release_time="10:00")
    monkeypatch.setattr("kiosk.web.admin.rules.utcnow", lambda: warsaw(2026, 12, 20, 12))
    admin = signed_in_admin(library)

    page = text_of(admin.get("/admin/aaa/rules"))

    assert "<dt>Legimi</dt>" in page
    assert "Kody na grudzień wydawane teraz, od 01.12.2026 10:00." in page
    # 1 January is a holiday, 2 and 3 January a weekend.
    assert "Kody na styczeń od poniedziałku 04.01.2027 o 10:00. (Pula jest ważna od 01.01.2027.)" in page
    assert 'value="2026-12-20T12:00"' in page  # the check's moment: now, in Warsaw


# -- the check: what a reader would get, nothing written -------------------------------------

def test_the_check_says_not_yet_before_the_release_and_a_code_after_and_writes_nothing(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("JAN", 3), JANUARY_2027)
    set_rules(library, release_day="first_working_day", release_time="10:00")
    admin = signed_in_admin(library)
    before = stored()

    early, on_time = check(admin, "12345678", "2027-01-04T09:59"), check(admin, "12345678", "2027-01-04T10:00")
    saturday = check(admin, "12345678", "02.01.2027 12:00")

    assert early.status_code == on_time.status_code == saturday.status_code == 200
    assert "Gdyby ten czytelnik przyszedł 04.01.2027 09:59 po kod Legimi" in text_of(early)
    assert "Kody na styczeń od poniedziałku 04.01.2027 o 10:00. Przyjdź wtedy z kartą biblioteczną." in text_of(early)
    assert "Kody na styczeń od poniedziałku 04.01.2027 o 10:00." in text_of(saturday)
    assert "Czytelnik dostałby nowy kod (aktywacja do 31.01.2027)." in text_of(on_time)
    assert "JAN000001" not in text_of(on_time)  # a code not handed out is not shown
    for answer in (early, on_time, saturday):
        assert "nic nie zapisano" in text_of(answer)
        assert "12345678" not in text_of(answer)  # the card is never shown back
    assert stored() == before
    assert db.session.scalar(select(Code.status).where(Code.value == "JAN000001")) == CodeStatus.AVAILABLE.value
    # The same reader checked again still gets a new code: nothing of the first check stayed.
    assert "Czytelnik dostałby nowy kod" in text_of(check(admin, "12345678", "2027-01-20T10:00"))


def test_the_check_follows_every_rule_and_the_card_check(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("JAN", 3), JANUARY_2027)
    set_rules(library, min_age="13", platforms_rule=PlatformsRule.INDEPENDENT.value)
    admin = signed_in_admin(library)

    no_data = check(admin, "12345678", "2027-01-10T12:00")
    refused = check(admin, "1", "2027-01-10T12:00")

    assert "Brak danych do sprawdzenia zasad: data urodzenia." in text_of(no_data)
    assert "Karta odrzucona: To nie wygląda na numer karty tej biblioteki." in text_of(refused)


def test_a_bad_moment_or_platform_is_a_400_with_words_and_nothing_runs(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("JAN", 3), JANUARY_2027)
    admin = signed_in_admin(library)
    before = stored()

    for moment in ("0001-01-01T00:00", "9999-12-31T10:00", "jutro", "2027-02-30T10:00", "x" * 400):
        answer = check(admin, "12345678", moment)
        assert answer.status_code == 400, moment
        assert "to nie jest data i godzina z lat 2000–2100" in text_of(answer), moment
    unknown = check(admin, "12345678", "2027-01-10T12:00", platform="nope")

    assert unknown.status_code == 400 and "Wybierz platformę z listy." in text_of(unknown)
    assert stored() == before


# -- htmx: the fragment; a plain request: the page ------------------------------------------

def test_htmx_gets_the_fragment_and_a_plain_request_the_whole_page(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("JAN", 3), JANUARY_2027)
    admin = signed_in_admin(library)

    saved = post(admin, "/admin/aaa/rules", VALID, token_from="/admin/aaa/rules", headers=HTMX)
    refused = post(admin, "/admin/aaa/rules", {**VALID, "release_time": "25:00"}, token_from="/admin/aaa/rules",
                   headers=HTMX)
    checked = check(admin, "12345678", "2027-01-04T10:00", headers=HTMX)
    plain = check(admin, "12345678", "2027-01-04T10:00")

    assert saved.status_code == 200 and text_of(saved).startswith('<section id="rules-form"')
    assert "Zapisano zasady wydawania. Zmiany: Dzień wydawania" in text_of(saved)
    # The summary above the form is swapped too, so it shows the rules just saved.
    assert '<section id="rules-now" class="panel" aria-labelledby="rules-now-heading" hx-swap-oob="true">' \
        in text_of(saved)
    assert "<dd>pierwszy dzień roboczy miesiąca</dd>" in text_of(saved)
    assert refused.status_code == 400 and text_of(refused).startswith('<section id="rules-form"')
    assert "hx-swap-oob" not in text_of(refused)
    # The rules just saved ask for a birth date, which this library's register does not give.
    assert text_of(checked).startswith('<section id="rules-check"')
    assert "Brak danych do sprawdzenia zasad: data urodzenia." in text_of(checked)
    for fragment in (saved, refused, checked):
        assert "<html" not in text_of(fragment)
    assert "<html" in text_of(plain) and "Brak danych do sprawdzenia zasad" in text_of(plain)
    assert '<form method="post" action="/admin/aaa/rules/check"' in text_of(plain)  # the card goes in the body
