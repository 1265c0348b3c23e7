"""The platform's list of activated codes: read like a pool file, the listed codes
of this library and platform marked, others counted as not found without saying
whose they are; the panel's page and the command. On SQLite and PostgreSQL."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from helpers import (TEST, codes, csv_file, import_file, legimi, make_library, make_pool, panel_file, post,
                     signed_in, this_month, write, xls_file, xlsx_file)
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.activations import import_activations, prepare_activations
from kiosk.domain.clock import utcnow
from kiosk.domain.pool_files import ImportProblem, ImportRefused
from kiosk.storage.models import ActivationImport, Code, Event, Platform
from kiosk.wording.messages import describe_refusal

OURS, THEIRS = codes("AKT", 4), codes("OBC", 2)
MADE_UP = "ZZZ999999"


@pytest.fixture
def libraries(app):
    """Library aaa with four Legimi codes, bbb with two."""
    aaa, bbb = make_library("aaa"), make_library("bbb")
    make_pool(aaa, OURS, this_month())
    make_pool(bbb, THEIRS, this_month())
    return aaa, bbb


def platform(slug: str) -> Platform:
    """A platform by slug; PostgreSQL's tests start from Legimi alone, so others are added."""
    found = db.session.scalar(select(Platform).where(Platform.slug == slug))
    if found is None:
        found = Platform(slug=slug, name=slug.upper(), activation_url=f"https://{slug}.example/kod")
        db.session.add(found)
        db.session.commit()
    return found


def mark(library, data: bytes, *, on: Platform | None = None, now: datetime | None = None,
         filename: str = "aktywacje.xlsx"):
    """The list imported as the panel and the CLI do: read, then one unit of work."""
    prepared = prepare_activations(data)
    library_id, platform_id, moment = library.id, (on or legimi()).id, now or utcnow()
    return write(lambda s: import_activations(s, library_id=library_id, platform_id=platform_id, prepared=prepared,
                                              filename=filename, actor=TEST, now=moment))


def state(value: str) -> tuple[bool, date | None]:
    """(marked, activated on) of a stored code."""
    db.session.expire_all()
    code = db.session.scalar(select(Code).where(Code.value == value))
    return code.activation_marked_at is not None, code.activated_on


def stored() -> dict[str, int]:
    """What an import changes, to show a refused one left nothing behind."""
    db.session.expire_all()
    return {
        "marked": db.session.scalar(select(func.count()).select_from(Code)
                                    .where(Code.activation_marked_at.is_not(None))),
        "imports": db.session.scalar(select(func.count()).select_from(ActivationImport)),
        "events": db.session.scalar(select(func.count()).select_from(Event)
                                    .where(Event.kind == "import_activations")),
    }


# -- reading and marking ---------------------------------------------------------------------

def test_a_list_without_dates_marks_every_listed_code(app, libraries):
    aaa, _bbb = libraries
    moment = datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc)  # 1 February in Warsaw

    report = mark(aaa, xlsx_file([["Kod"], [OURS[0]], [OURS[1]]]), now=moment)

    assert (report.marked, report.already, report.not_found, report.skipped) == (2, 0, 0, 0)
    assert report.date_column is None and report.code_column == "Kod (A)"
    assert state(OURS[0]) == (True, None) and state(OURS[2]) == (False, None)
    row = db.session.scalar(select(ActivationImport))
    assert (row.library_id, row.platform_id, row.as_of, row.marked, row.source_filename) == (
        aaa.id, legimi().id, date(2026, 2, 1), 2, "aktywacje.xlsx")
    assert stored()["events"] == 1


def test_a_code_is_marked_at_the_import_s_moment_to_the_microsecond(app, libraries):
    aaa, _bbb = libraries
    moment = datetime(2026, 1, 31, 23, 30, 15, 123456, tzinfo=timezone.utc)

    mark(aaa, csv_file([["Kod", "Data aktywacji"], [OURS[3], "2026-01-20"]]), now=moment, filename="a.csv")

    db.session.expire_all()
    code = db.session.scalar(select(Code).where(Code.value == OURS[3]))
    assert (code.activation_marked_at, code.activated_on) == (moment, date(2026, 1, 20))


def test_a_date_column_gives_the_day_and_a_blank_date_is_not_activated(app, libraries):
    aaa, _bbb = libraries
    data = xlsx_file([
        ["Lista kodów"],
        ["Kod", "Data aktywacji"],
        [OURS[0], datetime(2026, 1, 14, 12, 33)],
        [OURS[1], "15.01.2026"],
        [OURS[2], None],
    ])

    report = mark(aaa, data)

    assert (report.marked, report.skipped, report.date_column) == (2, 1, "Data aktywacji")
    assert state(OURS[0]) == (True, date(2026, 1, 14)) and state(OURS[1]) == (True, date(2026, 1, 15))
    assert state(OURS[2]) == (False, None)


def test_a_csv_and_an_xls_with_english_or_polish_date_headers(app, libraries):
    aaa, _bbb = libraries
    csv_list = csv_file([["code", "activation date"], [OURS[0], "2026-01-03 10:00:00"], [OURS[1], ""]])
    xls_list = xls_file([["Kod", "Aktywowano"], [OURS[2], date(2026, 1, 5)], [OURS[3], ""]])

    first, second = mark(aaa, csv_list, filename="a.csv"), mark(aaa, xls_list, filename="a.xls")

    assert (first.marked, first.skipped, second.marked, second.skipped) == (1, 1, 1, 1)
    assert [state(code) for code in OURS] == [(True, date(2026, 1, 3)), (False, None),
                                              (True, date(2026, 1, 5)), (False, None)]


def test_a_list_without_a_header_is_found_by_the_shape_of_its_codes(app, libraries):
    aaa, _bbb = libraries

    report = mark(aaa, csv_file([[OURS[0]], [OURS[1]]]))

    assert report.marked == 2 and report.code_column == "A"


def test_another_library_s_code_is_not_marked_and_counts_as_not_found(app, libraries):
    aaa, _bbb = libraries

    report = mark(aaa, xlsx_file([["Kod"], [OURS[0]], [THEIRS[0]], [MADE_UP]]))

    assert (report.marked, report.not_found) == (1, 2)
    assert set(report.not_found_sample) == {THEIRS[0], MADE_UP}
    assert state(OURS[0]) == (True, None) and state(THEIRS[0]) == (False, None)


def test_a_list_of_only_another_library_s_codes_is_refused_as_a_made_up_one_is(app, libraries):
    aaa, _bbb = libraries
    before = stored()

    with pytest.raises(ImportRefused) as theirs:
        mark(aaa, xlsx_file([["Kod"], [THEIRS[0]], [THEIRS[1]]]))
    with pytest.raises(ImportRefused) as made_up:
        mark(aaa, xlsx_file([["Kod"], [MADE_UP], ["ZZZ999998"]]))

    assert theirs.value.reason is ImportProblem.NONE_OF_LIBRARY
    assert describe_refusal(theirs.value) == describe_refusal(made_up.value)
    assert stored() == before and state(THEIRS[0]) == (False, None)


def test_the_same_list_twice_marks_nothing_new(app, libraries):
    aaa, _bbb = libraries
    data = xlsx_file([["Kod"], [OURS[0]], [OURS[1]]])
    mark(aaa, data)
    first_marked = db.session.scalar(select(Code.activation_marked_at).where(Code.value == OURS[0]))

    again = mark(aaa, data)

    assert (again.marked, again.already, again.not_found) == (0, 2, 0)
    assert db.session.scalar(select(Code.activation_marked_at).where(Code.value == OURS[0])) == first_marked
    assert stored()["imports"] == 2
    # A later list with days gives the day to a code marked without one.
    dated = mark(aaa, xlsx_file([["Kod", "Data aktywacji"], [OURS[0], date(2026, 1, 9)], [OURS[2], "10.01.2026"]]))
    assert (dated.marked, dated.already) == (1, 1)
    assert state(OURS[0]) == (True, date(2026, 1, 9)) and state(OURS[2]) == (True, date(2026, 1, 10))


def test_a_list_is_for_one_platform(app, libraries):
    aaa, _bbb = libraries
    empik = platform("empik-go")
    import_file(aaa, panel_file(codes("EMP", 2)), window=this_month(), platform=empik, filename="empik.xlsx")

    with pytest.raises(ImportRefused) as wrong:
        mark(aaa, xlsx_file([["Kod"], [OURS[0]]]), on=empik)
    right = mark(aaa, xlsx_file([["Kod"], [OURS[0]], ["EMP000001"]]), on=empik)

    assert wrong.value.reason is ImportProblem.NONE_OF_LIBRARY and empik.name in describe_refusal(wrong.value)
    assert (right.marked, right.not_found, right.platform) == (1, 1, "empik-go")
    assert state("EMP000001") == (True, None) and state(OURS[0]) == (False, None)


@pytest.mark.parametrize("data, problem, row", [
    (b"%PDF-1.4\x00\x01\x02 not a sheet", ImportProblem.NOT_SPREADSHEET, None),
    (b"", ImportProblem.EMPTY, None),
    (csv_file([["Kod", "Data aktywacji"], [OURS[0], "2026-01-02"], [OURS[1], "wczoraj"]]), ImportProblem.BAD_DATE,
     3),
    (csv_file([["Kod"], [OURS[0]], ["to nie kod!"]]), ImportProblem.BAD_CODE, 3),
    (csv_file([["Nazwa", "Opis"], ["książka", "dobra"]]), ImportProblem.NO_CODE_COLUMN, None),
])
def test_a_file_it_cannot_read_is_refused_with_a_clear_sentence_and_changes_nothing(app, libraries, data, problem,
                                                                                    row):
    aaa, _bbb = libraries
    before = stored()

    with pytest.raises(ImportRefused) as refused:
        mark(aaa, data)

    assert refused.value.reason is problem and refused.value.details.get("row") == row
    assert describe_refusal(refused.value).strip()
    assert stored() == before


# -- the command ------------------------------------------------------------------------------

def kiosk(runner, *args):
    result = runner.invoke(main, list(args))
    db.session.remove()  # as the command's process would end
    return result


def test_the_command_says_what_it_marked_and_exits_0_or_1(app, libraries, runner, tmp_path):
    good, garbage, theirs = tmp_path / "a.xlsx", tmp_path / "b.xlsx", tmp_path / "c.csv"
    good.write_bytes(xlsx_file([["Kod"], [OURS[0]], [THEIRS[0]]]))
    garbage.write_bytes(b"\x00\x01 nie arkusz")
    theirs.write_bytes(csv_file([["Kod"], [THEIRS[0]]]))

    done = kiosk(runner, "import-activations", str(good), "--library", "aaa")
    refused = kiosk(runner, "import-activations", str(garbage), "--library", "aaa")
    none_ours = kiosk(runner, "import-activations", str(theirs), "--library", "aaa", "--platform", "legimi")
    no_platform = kiosk(runner, "import-activations", str(good), "--library", "aaa", "--platform", "nie-ma")

    assert done.exit_code == 0, done.output
    assert done.output.count("\n") == 1 and "nowo oznaczone kody: 1" in done.output
    assert "spoza pul tej biblioteki: 1" in done.output
    assert refused.exit_code == 1 and "To nie jest arkusz" in refused.output
    assert none_ours.exit_code == 1 and "Nic nie zapisano" in none_ours.output
    assert no_platform.exit_code == 2 and "nie-ma" in no_platform.output
    assert state(OURS[0]) == (True, None) and stored()["imports"] == 1


# -- the panel --------------------------------------------------------------------------------

def upload(client, data: bytes, platform_slug: str = "legimi", slug: str = "aaa", **kwargs):
    return post(client, f"/admin/{slug}/activations",
                {"platform": platform_slug, "file": (io.BytesIO(data), "aktywacje.xlsx")},
                token_from=f"/admin/{slug}/activations", content_type="multipart/form-data", **kwargs)


def test_the_page_is_linked_and_an_upload_marks_and_lists_the_import(app, libraries, signed_in_admin):
    aaa, _bbb = libraries
    client = signed_in_admin(aaa)

    page = client.get("/admin/aaa/activations")
    plain = upload(client, xlsx_file([["Kod"], [OURS[0]], [MADE_UP]]))
    fragment = upload(client, xlsx_file([["Kod"], [OURS[0]], [OURS[1]]]), headers={"HX-Request": "true"})

    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Aktywacje kodów" in text and 'value="legimi"' in text
    assert 'href="/admin/aaa/activations"' in client.get("/admin/aaa/import").get_data(as_text=True)
    assert plain.status_code == 200 and "nowo oznaczone kody: 1" in plain.get_data(as_text=True)
    assert MADE_UP in plain.get_data(as_text=True)
    answer = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<h1>" not in answer
    assert "nowo oznaczone kody: 1, oznaczone już wcześniej: 1" in answer
    assert answer.count("aktywacje.xlsx</td>") == 2  # both imports in the latest ones
    assert state(OURS[0]) == (True, None) and state(OURS[1]) == (True, None)


def test_the_panel_refuses_garbage_and_an_unknown_platform_and_changes_nothing(app, libraries, signed_in_admin):
    aaa, _bbb = libraries
    client = signed_in_admin(aaa)
    before = stored()

    garbage = upload(client, b"\x00\x01\x02 nie arkusz")
    unknown = upload(client, xlsx_file([["Kod"], [OURS[0]]]), platform_slug="nie-ma")
    no_file = post(client, "/admin/aaa/activations", {"platform": "legimi"}, token_from="/admin/aaa/activations",
                   content_type="multipart/form-data")

    assert garbage.status_code == 400 and "To nie jest arkusz" in garbage.get_data(as_text=True)
    assert unknown.status_code == 400 and "Nie ma platformy „nie-ma”" in unknown.get_data(as_text=True)
    assert no_file.status_code == 400 and 'class="alert"' in no_file.get_data(as_text=True)
    assert stored() == before


def test_only_the_library_s_own_admins_reach_its_page(app, libraries, signed_in_admin, signed_in_desk):
    aaa, bbb = libraries
    other_admin, desk = signed_in_admin(bbb), signed_in_desk(aaa)
    consortium, _user, _password = signed_in(app, "consortium_admin")
    before = stored()

    answers = [
        other_admin.get("/admin/aaa/activations"),
        # with a valid form token, from the other admin's own page
        post(other_admin, "/admin/aaa/activations",
              {"platform": "legimi", "file": (io.BytesIO(xlsx_file([["Kod"], [OURS[0]]])), "a.xlsx")},
              token_from="/admin/bbb/activations", content_type="multipart/form-data"),
        desk.get("/admin/aaa/activations"),
    ]
    assert [a.status_code for a in answers] == [404, 404, 403]
    assert state(OURS[0]) == (False, None) and stored() == before

    by_consortium = upload(consortium, xlsx_file([["Kod"], [OURS[1]]]))

    assert by_consortium.status_code == 200 and state(OURS[1]) == (True, None)
