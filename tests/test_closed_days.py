"""A library's closed days: `kiosk closed-days` and the panel's page, each change
logged, another library's admin kept out, and the first working days they move."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from helpers import make_app, make_library, post, signed_in
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.clock import format_date, local_day, utcnow
from kiosk.domain.refusals import Problem
from kiosk.domain.working_days import (ClosedDayProblem, first_working_day_from, month_start, month_starts,
                                       public_holiday_name)
from kiosk.storage.models import ClosedDay, Event, Library
from kiosk.wording.days import why_moved
from kiosk.wording.messages import SENTENCES, describe, sentence_key

HTMX = {"HX-Request": "true"}
WEEKDAYS = ("poniedziałek", "wtorek", "środa", "czwartek", "piątek", "sobota", "niedziela")


def kiosk(runner, *args):
    result = runner.invoke(main, list(args))
    db.session.remove()  # as the command's process would end
    return result


def today() -> date:
    return local_day(utcnow())


def next_month_start() -> date:
    return (today().replace(day=1) + timedelta(days=32)).replace(day=1)


def stored(slug: str) -> list[date]:
    return sorted(db.session.scalars(select(ClosedDay.day).join(Library, Library.id == ClosedDay.library_id)
                                     .where(Library.slug == slug)))


def logged(kind: str) -> list[Event]:
    return list(db.session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Event))


# -- the command line ---------------------------------------------------------------------------------

def test_add_list_remove_at_the_command_line(app, runner):
    library_id = make_library("wola").id
    soon, later, past = today() + timedelta(days=40), today() + timedelta(days=9), today() - timedelta(days=3)

    added = [kiosk(runner, "closed-days", "--library", "wola", "--add", text)
             for text in (format_date(soon), later.isoformat(), format_date(past))]
    listed = kiosk(runner, "closed-days", "--library", "wola", "--list")
    removed = kiosk(runner, "closed-days", "--library", "wola", "--remove", format_date(soon))
    after = kiosk(runner, "closed-days", "--library", "wola", "--list")

    assert [result.exit_code for result in added] == [0, 0, 0], [result.output for result in added]
    assert f"Dodano dzień zamknięcia {format_date(soon)} ({WEEKDAYS[soon.weekday()]})." in added[0].output
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [f"{format_date(later)} {WEEKDAYS[later.weekday()]}",
                                          f"{format_date(soon)} {WEEKDAYS[soon.weekday()]}"]  # from today on
    assert removed.exit_code == 0 and f"Usunięto dzień zamknięcia {format_date(soon)}" in removed.output
    assert after.output.splitlines() == [f"{format_date(later)} {WEEKDAYS[later.weekday()]}"]
    assert stored("wola") == [past, later]
    assert [json.loads(e.details)["day"] for e in logged("closed_day_added")] == [
        soon.isoformat(), later.isoformat(), past.isoformat()]
    assert [json.loads(e.details)["day"] for e in logged("closed_day_removed")] == [soon.isoformat()]
    assert all(e.actor.startswith("cli") and e.library_id == library_id for e in logged("closed_day_added"))


def test_the_command_line_refuses_with_the_sentence_and_exit_1(app, runner):
    library = make_library("wola")
    day = today() + timedelta(days=20)
    kiosk(runner, "closed-days", "--library", "wola", "--add", format_date(day))
    before = event_count()

    twice = kiosk(runner, "closed-days", "--library", "wola", "--add", day.isoformat())
    not_closed = kiosk(runner, "closed-days", "--library", "wola", "--remove", format_date(day + timedelta(days=1)))

    assert twice.exit_code == 1 and f"Dzień {format_date(day)} jest już dniem zamknięcia." in twice.output
    assert not_closed.exit_code == 1
    assert f"Dzień {format_date(day + timedelta(days=1))} nie jest dniem zamknięcia." in not_closed.output
    assert stored("wola") == [day] and event_count() == before


@pytest.mark.parametrize("args", [
    [],  # none of the three
    ["--list", "--add", "01.06.2027"],
    ["--add", "01.06.2027", "--remove", "02.06.2027"],
    ["--add", "jutro"],
    ["--add", "31.02.2027"],
    ["--remove", "0001-01-01"],
], ids=["none", "list-and-add", "add-and-remove", "not-a-date", "no-such-day", "ancient"])
def test_bad_usage_exits_2_and_changes_nothing(app, runner, args):
    library = make_library("wola")
    before = event_count()

    result = kiosk(runner, "closed-days", "--library", "wola", *args)

    assert result.exit_code == 2, result.output
    assert stored("wola") == [] and event_count() == before


def test_an_unknown_library_is_bad_usage(app, runner):
    make_library("wola")
    result = kiosk(runner, "closed-days", "--library", "mokotow", "--list")
    assert result.exit_code == 2 and "wola" in result.output


def test_an_empty_list_says_so(app, runner):
    make_library("wola")
    result = kiosk(runner, "closed-days", "--library", "wola", "--list")
    assert result.exit_code == 0 and f"Brak dni zamknięcia od {format_date(today())}." in result.output


# -- the panel ------------------------------------------------------------------------------------------

def page_of(client, url: str = "/admin/aaa/closed-days") -> str:
    answer = client.get(url)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_the_page_is_linked_from_the_admin_navigation_and_shows_twelve_months(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)

    settings = page_of(admin, "/admin/aaa/settings")
    page = page_of(admin)

    assert 'href="/admin/aaa/closed-days"' in settings
    assert "<h1>Dni zamknięcia — Biblioteka aaa</h1>" in page and 'type="date"' in page
    assert "Nie ma zaplanowanych dni zamknięcia." in page
    table = page.split('id="month-starts"')[1].split("</table>")[0]
    assert table.count("<tr>") == 13  # the header and 12 months
    starts = month_starts(today(), 13)
    starts = starts[1:13] if starts[0].day < today() else starts[:12]
    for start in starts:
        assert format_date(start.day) in table
        for holiday in start.holidays:
            assert f"{public_holiday_name(holiday)} ({format_date(holiday)})" in table


def test_add_and_remove_without_javascript_post_redirect_get(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    day = today() + timedelta(days=15)

    added = post(admin, "/admin/aaa/closed-days", {"day": day.isoformat()}, token_from="/admin/aaa/closed-days")
    shown = page_of(admin)
    removed = post(admin, "/admin/aaa/closed-days/remove", {"day": day.isoformat()},
                   token_from="/admin/aaa/closed-days")
    after = page_of(admin)

    assert added.status_code == 302 and added.headers["Location"].endswith("/admin/aaa/closed-days")
    assert f"Dodano dzień zamknięcia {format_date(day)}." in shown
    assert f'name="day" value="{day.isoformat()}"' in shown  # its remove button
    assert removed.status_code == 302
    assert f"Usunięto dzień zamknięcia {format_date(day)}." in after
    assert f'name="day" value="{day.isoformat()}"' not in after
    assert stored("aaa") == []
    assert [e.actor for e in logged("closed_day_added") + logged("closed_day_removed")] == [
        "staff:library-admin-aaa"] * 2


def test_htmx_swaps_the_list_and_shows_the_first_working_day_moved(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    first = first_working_day_from(next_month_start())
    following = first_working_day_from(first + timedelta(days=1))

    added = post(admin, "/admin/aaa/closed-days", {"day": format_date(first)}, token_from="/admin/aaa/closed-days",
                 headers=HTMX)
    fragment = added.get_data(as_text=True)
    removed = post(admin, "/admin/aaa/closed-days/remove", {"day": first.isoformat()},
                   token_from="/admin/aaa/closed-days", headers=HTMX)

    assert added.status_code == 200 and "<html" not in fragment and "<h1>" not in fragment
    assert f"Dodano dzień zamknięcia {format_date(first)}." in fragment
    assert f"{format_date(following)}, {WEEKDAYS[following.weekday()]}" in fragment
    assert f"dzień zamknięcia biblioteki: {format_date(first)}" in fragment
    assert removed.status_code == 200 and "<html" not in removed.get_data(as_text=True)
    assert "Nie ma zaplanowanych dni zamknięcia." in removed.get_data(as_text=True)
    assert stored("aaa") == []


def test_adding_twice_or_removing_what_is_open_is_refused_with_the_sentence(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    day = today() + timedelta(days=3)
    post(admin, "/admin/aaa/closed-days", {"day": day.isoformat()}, token_from="/admin/aaa/closed-days")
    before = event_count()

    twice = post(admin, "/admin/aaa/closed-days", {"day": day.isoformat()}, token_from="/admin/aaa/closed-days",
                 headers=HTMX)
    plain = post(admin, "/admin/aaa/closed-days", {"day": day.isoformat()}, token_from="/admin/aaa/closed-days")
    open_day = post(admin, "/admin/aaa/closed-days/remove", {"day": (day + timedelta(days=1)).isoformat()},
                    token_from="/admin/aaa/closed-days", headers=HTMX)

    assert twice.status_code == 400 and "<html" not in twice.get_data(as_text=True)
    assert f"Dzień {format_date(day)} jest już dniem zamknięcia." in twice.get_data(as_text=True)
    assert plain.status_code == 400 and "<h1>Dni zamknięcia" in plain.get_data(as_text=True)
    assert 'class="alert"' in plain.get_data(as_text=True)
    assert open_day.status_code == 400
    assert f"Dzień {format_date(day + timedelta(days=1))} nie jest dniem zamknięcia." in open_day.get_data(
        as_text=True)
    assert stored("aaa") == [day] and event_count() == before


@pytest.mark.parametrize("value, said", [
    ("jutro", "„jutro” nie jest datą (DD.MM.RRRR)."),
    ("0001-01-01", "„0001-01-01” nie jest datą (DD.MM.RRRR)."),
    ("2027-02-30", "„2027-02-30” nie jest datą (DD.MM.RRRR)."),
    ("", "Podaj dzień (DD.MM.RRRR)."),
])
def test_a_garbage_date_is_a_clear_400_and_changes_nothing(app, signed_in_admin, value, said):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    before = event_count()

    for url in ("/admin/aaa/closed-days", "/admin/aaa/closed-days/remove"):
        for headers in (HTMX, {}):
            answer = post(admin, url, {"day": value}, token_from="/admin/aaa/closed-days", headers=headers)
            assert answer.status_code == 400, (url, headers)
            assert said in answer.get_data(as_text=True)
    assert stored("aaa") == [] and event_count() == before


def test_another_library_s_admin_and_desk_staff_are_kept_out(app, signed_in_admin, signed_in_desk):
    library, other = make_library("aaa"), make_library("bbb")
    day = today() + timedelta(days=5)
    post(signed_in_admin(library), "/admin/aaa/closed-days", {"day": day.isoformat()},
         token_from="/admin/aaa/closed-days")
    stranger, desk = signed_in_admin(other), signed_in_desk(library)
    before = event_count()

    answers = [
        stranger.get("/admin/aaa/closed-days"),
        post(stranger, "/admin/aaa/closed-days", {"day": (day + timedelta(days=1)).isoformat()},
             token_from="/admin/bbb/closed-days"),
        post(stranger, "/admin/aaa/closed-days/remove", {"day": day.isoformat()}, token_from="/admin/bbb/closed-days",
             headers=HTMX),
    ]
    desk_answer = desk.get("/admin/aaa/closed-days")

    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert desk_answer.status_code == 403
    assert stored("aaa") == [day] and stored("bbb") == [] and event_count() == before
    assert f'value="{day.isoformat()}"' not in page_of(stranger, "/admin/bbb/closed-days")


def test_a_consortium_admin_may_manage_any_library(app):
    library = make_library("aaa")
    consortium, _user, _password = signed_in(app, "consortium_admin")
    day = today() + timedelta(days=7)

    answer = post(consortium, "/admin/aaa/closed-days", {"day": day.isoformat()},
                  token_from="/admin/aaa/closed-days")

    assert answer.status_code == 302 and stored("aaa") == [day]


# -- the words ----------------------------------------------------------------------------------------

@pytest.fixture
def wording_app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
    with app.test_request_context():
        yield app


def test_every_closed_day_problem_has_a_sentence(wording_app):
    assert [reason for reason in ClosedDayProblem if sentence_key(reason) not in SENTENCES] == []
    with force_locale("pl"):
        assert describe(Problem(ClosedDayProblem.ALREADY_CLOSED, {"day": date(2027, 5, 3)})) == \
            "Dzień 03.05.2027 jest już dniem zamknięcia."
        assert describe(Problem(ClosedDayProblem.NOT_CLOSED, {"day": date(2027, 5, 3)})) == \
            "Dzień 03.05.2027 nie jest dniem zamknięcia."


def test_a_holiday_is_named_in_the_reader_s_language(wording_app):
    may = month_start(date(2027, 5, 1))
    with force_locale("pl"):
        assert why_moved(may) == "Święto Narodowe Trzeciego Maja (03.05.2027)"
    with force_locale("en"):
        assert why_moved(may) == "National Day of the Third of May (03.05.2027)"
    with force_locale("uk"):
        assert why_moved(may) == "Національне свято Третього Травня (03.05.2027)"
    with force_locale("pl"):
        assert why_moved(month_start(date(2027, 8, 1))) == ""  # a weekend alone
        assert why_moved(month_start(date(2026, 11, 1), {date(2026, 11, 2)})) == \
            "dzień zamknięcia biblioteki: 02.11.2026"
