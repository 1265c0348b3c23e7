"""Importing a month's pool from the panel's XLSX, XLS or CSV: all or nothing,
every refusal named, nothing stored after a refusal."""
import io
import re
import threading
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from helpers import (import_file, issue, legimi, post, this_month, token_of, write, codes, counts, csv_file, make_library,
                     make_pool, panel_file, warsaw, xls_file, xlsx_file)
from kiosk.domain.clock import format_date, utcnow
from kiosk.domain.issuing import Outcome
from kiosk.app.extensions import db
from kiosk.domain.consortium import consortium
from kiosk.wording.messages import describe_refusal
from kiosk.storage.models import Code, Event, Pool
from kiosk.domain.pool_files import ImportProblem, ImportRefused

JANUARY = (date(2020, 1, 2), date(2020, 1, 31))
FEBRUARY = (date(2020, 2, 1), date(2020, 2, 29))


def run_import(library, data, window=None, filename="kody.xlsx", dry_run=False):
    return import_file(library, data, window=window, filename=filename, now=warsaw(2020, 1, 1, 9),
                       dry_run=dry_run)


def refused(library, data, window=None, filename="kody.xlsx") -> ImportRefused:
    before = counts()
    with pytest.raises(ImportRefused) as caught:
        run_import(library, data, window, filename)
    db.session.rollback()
    assert counts() == before, "a refused import must leave nothing behind"
    assert describe_refusal(caught.value)  # every refusal has a sentence
    return caught.value


def test_xlsx_with_its_window_in_the_file(app):
    library = make_library()
    data = panel_file(codes("JAN", 5), JANUARY)

    report = run_import(library, data)

    assert (report.count, report.valid_from, report.valid_until) == (5, *JANUARY)
    pool = db.session.get(Pool, report.pool_id)
    assert pool.source_filename == "kody.xlsx" and len(pool.source_sha256) == 64
    stored = db.session.scalars(select(Code.value).order_by(Code.id)).all()
    assert stored == codes("JAN", 5)
    event = db.session.scalar(select(Event).where(Event.kind == "import"))
    assert "kody.xlsx" in event.details


def test_legacy_xls_the_format_the_seed_names(app):
    library = make_library()
    data = xls_file([["Kod", "Ważny od", "Ważny do"]] + [[c, *FEBRUARY] for c in codes("FEB", 4)])

    report = run_import(library, data, filename="luty.xls")

    assert (report.count, report.valid_from, report.valid_until) == (4, *FEBRUARY)


def test_csv_from_polish_windows_with_semicolons(app):
    library = make_library()
    rows = [["Lp.", "Kod dostępu", "Ważny od", "Ważny do"]]
    rows += [[n, c, "02.01.2020", "31.01.2020"] for n, c in enumerate(codes("CSV", 3), 1)]

    report = run_import(library, csv_file(rows, encoding="cp1250"), filename="kody.csv")

    assert (report.count, report.valid_from, report.valid_until) == (3, *JANUARY)
    assert report.code_column.startswith("Kod dostępu")


def test_code_column_found_by_the_shape_of_its_values(app):
    library = make_library()
    rows = [["Zestawienie kodów", None]] + [[n, c] for n, c in enumerate(codes("SHP", 6), 1)]

    report = run_import(library, xlsx_file(rows), window=JANUARY)

    assert report.count == 6 and report.code_column == "B"
    assert db.session.scalar(select(Code.value).limit(1)).startswith("SHP")


def test_window_from_the_arguments_when_the_file_has_none(app):
    library = make_library()

    report = run_import(library, panel_file(codes("ARG", 2)), window=FEBRUARY)

    assert (report.valid_from, report.valid_until) == FEBRUARY


def test_dry_run_stores_nothing(app):
    library = make_library()
    before = counts()

    report = run_import(library, panel_file(codes("DRY", 3), JANUARY), dry_run=True)

    assert report.count == 3 and report.pool_id is None
    assert counts() == before


def test_same_window_again_is_a_top_up_pool(app):
    library = make_library()
    run_import(library, panel_file(codes("ONE", 2), JANUARY), filename="a.xlsx")

    report = run_import(library, panel_file(codes("TWO", 2), JANUARY), filename="b.xlsx")

    assert report.count == 2


# -- refusals: each names the problem, and nothing is stored ------------------

def test_refuses_a_file_that_is_not_a_spreadsheet(app):
    library = make_library()
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\x00\x01\x02"

    assert refused(library, pdf, JANUARY).problem is ImportProblem.NOT_SPREADSHEET
    assert refused(library, b"PK\x03\x04" + b"\x00" * 40, JANUARY).problem in (
        ImportProblem.UNREADABLE, ImportProblem.NOT_SPREADSHEET)


def test_refuses_a_zip_that_is_not_a_workbook(app):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.txt", "not a workbook")
    library = make_library()

    assert refused(library, buffer.getvalue(), JANUARY).problem is ImportProblem.NOT_SPREADSHEET


def test_refuses_a_damaged_xls(app):
    library = make_library()
    data = xls_file([["Kod"], ["ABC123456"]])

    assert refused(library, data[:600], JANUARY).problem is ImportProblem.UNREADABLE


def test_refuses_an_empty_file(app):
    library = make_library()

    assert refused(library, b"", JANUARY).problem is ImportProblem.EMPTY
    assert refused(library, b"\n\n", JANUARY).problem is ImportProblem.EMPTY
    assert refused(library, xlsx_file([["Kod"]]), JANUARY).problem is ImportProblem.EMPTY


def test_refuses_a_file_without_anything_like_codes(app):
    library = make_library()
    data = xlsx_file([["Imię", "Nazwisko"], ["Jan", "Kowalski"], ["Anna", "Nowak"]])

    assert refused(library, data, JANUARY).problem is ImportProblem.NO_CODE_COLUMN


def test_refuses_to_guess_between_two_code_like_columns(app):
    library = make_library()
    data = xlsx_file([[a, b] for a, b in zip(codes("AAA", 3), codes("BBB", 3))])

    refusal = refused(library, data, JANUARY)
    assert refusal.problem is ImportProblem.AMBIGUOUS_CODE_COLUMN
    assert refusal.details["columns"] == ["B", "A"] or refusal.details["columns"] == ["A", "B"]


def test_refuses_a_bad_code_and_names_its_row(app):
    library = make_library()
    data = panel_file(["GOOD00001", "bad code!", "GOOD00003"])

    refusal = refused(library, data, JANUARY)
    assert refusal.problem is ImportProblem.BAD_CODE
    assert refusal.details["row"] == 3
    assert "Wiersz 3" in describe_refusal(refusal)


def test_refuses_duplicate_codes_within_the_file(app):
    library = make_library()
    data = panel_file(["DUP000001", "DUP000002", "DUP000001"])

    refusal = refused(library, data, JANUARY)
    assert refusal.problem is ImportProblem.DUPLICATE_IN_FILE
    assert (refusal.details["row"], refusal.details["first_row"]) == (4, 2)


def test_refuses_codes_already_in_a_pool_of_the_platform_even_of_another_library(app):
    first = make_library("first")
    second = make_library("second")
    make_pool(first, codes("SAME", 3), JANUARY, filename="styczen.xlsx")

    refusal = refused(second, panel_file(["NEW0000001", "SAME000002"]), FEBRUARY)
    own = refused(first, panel_file(["SAME000003"]), FEBRUARY)

    assert refusal.problem is ImportProblem.CODE_EXISTS
    assert refusal.details["code"] == "SAME000002" and refusal.details["row"] == 3
    # Another library's file, staff and dates are not this library's business.
    assert "innej biblioteki" in describe_refusal(refusal)
    assert "styczen.xlsx" not in describe_refusal(refusal)
    assert "styczen.xlsx" in describe_refusal(own)


def test_refuses_the_same_file_twice(app):
    library = make_library()
    data = panel_file(codes("TWICE", 3), JANUARY)
    run_import(library, data, filename="styczen.xlsx")

    refusal = refused(library, data, filename="kopia.xlsx")
    assert refusal.problem is ImportProblem.SAME_FILE
    assert refusal.details["filename"] == "styczen.xlsx"


def test_refuses_a_file_without_a_window_when_none_is_given(app):
    library = make_library()

    assert refused(library, panel_file(codes("NOW", 2))).problem is ImportProblem.NO_WINDOW


def test_refuses_a_window_that_ends_before_it_starts(app):
    library = make_library()
    backwards = (date(2020, 1, 31), date(2020, 1, 2))

    assert refused(library, panel_file(codes("REV", 2)), backwards).problem is ImportProblem.WINDOW_REVERSED
    assert refused(library, panel_file(codes("REV", 2), backwards)).problem is ImportProblem.WINDOW_REVERSED


def test_refuses_a_window_given_that_differs_from_the_file(app):
    library = make_library()

    refusal = refused(library, panel_file(codes("CON", 2), JANUARY), FEBRUARY)
    assert refusal.problem is ImportProblem.WINDOW_CONFLICT


def test_refuses_rows_with_different_windows(app):
    library = make_library()
    data = xlsx_file([["Kod", "Ważny od", "Ważny do"], ["MIX000001", *JANUARY], ["MIX000002", *FEBRUARY]])

    refusal = refused(library, data)
    assert (refusal.problem, refusal.details["row"]) == (ImportProblem.WINDOW_MIXED, 3)


def test_refuses_a_date_it_cannot_read(app):
    library = make_library()
    data = xlsx_file([["Kod", "Ważny od", "Ważny do"], ["DAT000001", "jutro", "31.01.2020"]])

    refusal = refused(library, data)
    assert (refusal.problem, refusal.details["row"]) == (ImportProblem.BAD_DATE, 2)


def test_refuses_a_window_overlapping_another_pool_of_the_library(app):
    library = make_library()
    make_pool(library, codes("JAN", 2), JANUARY)

    refusal = refused(library, panel_file(codes("LAP", 2)), (date(2020, 1, 15), date(2020, 2, 14)))
    assert refusal.problem is ImportProblem.WINDOW_OVERLAP


def test_refuses_a_window_after_the_service_end(app):
    write(lambda s: setattr(consortium(s), "service_end", date(2021, 1, 2)))
    library = make_library()

    refusal = refused(library, panel_file(codes("END", 2)), (date(2021, 2, 1), date(2021, 2, 28)))
    assert refusal.problem is ImportProblem.AFTER_SERVICE_END


def test_the_first_code_of_the_file_already_stored_is_named(app):
    library = make_library()
    make_pool(library, codes("OLD", 5), JANUARY, filename="styczen.xlsx")
    data = panel_file(["NEW0000001", "OLD000004", "NEW0000002", "OLD000002"])

    refusal = refused(library, data, FEBRUARY)

    assert refusal.problem is ImportProblem.CODE_EXISTS
    assert (refusal.details["code"], refusal.details["row"]) == ("OLD000004", 3)
    assert refusal.details["filename"] == "styczen.xlsx"


def test_a_code_already_stored_is_named_before_a_window_that_overlaps(app):
    library = make_library()
    make_pool(library, codes("JAN", 2), JANUARY)

    refusal = refused(library, panel_file(["LAP0000001", "JAN000002"]), (date(2020, 1, 15), date(2020, 2, 14)))

    assert refusal.problem is ImportProblem.CODE_EXISTS and refusal.details["row"] == 3


def test_the_codes_are_stored_in_the_file_s_order_as_available(app):
    library = make_library()
    values = ["ZZZ0000001", "AAA0000002", "MMM0000003"]

    run_import(library, panel_file(values), JANUARY)

    stored = db.session.execute(select(Code.value, Code.status, Code.platform_id).order_by(Code.id)).all()
    assert [row.value for row in stored] == values
    assert {(row.status, row.platform_id) for row in stored} == {("available", legimi().id)}


def test_two_imports_of_one_code_at_once_store_it_once(app):
    """Both pass the checks before either commits; the unique index settles it, and
    the loser is refused with the code, its row and the other library named."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from kiosk.domain.actors import Actor
    from kiosk.domain.pool_files import prepare_pool
    from kiosk.domain.pools import import_pool
    from kiosk.storage.database import configure_engine, run_in_transaction

    libraries = [make_library("first").id, make_library("second").id]
    platform_id, url = legimi().id, app.config["SQLALCHEMY_DATABASE_URI"]
    files = [prepare_pool(("Kod\n" + "\n".join(codes(prefix, 20_000) + ["SHARED0001"])).encode(), f"{prefix}.csv",
                          JANUARY) for prefix in ("ONE", "TWO")]
    db.session.commit()
    start, outcomes = threading.Barrier(2), []

    def run(library_id, prepared):
        engine = configure_engine(create_engine(url))
        session = Session(engine)
        try:
            start.wait()
            outcomes.append(run_in_transaction(session, lambda s: import_pool(
                s, library_id=library_id, platform_id=platform_id, prepared=prepared, actor=Actor.system("test"),
                now=warsaw(2020, 1, 1, 9))))
        except ImportRefused as refusal:
            outcomes.append(refusal)
        finally:
            session.close()
            engine.dispose()

    threads = [threading.Thread(target=run, args=pair) for pair in zip(libraries, files)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    refusals = [o for o in outcomes if isinstance(o, ImportRefused)]
    assert len(outcomes) == 2 and len(refusals) == 1
    assert refusals[0].problem is ImportProblem.CODE_EXISTS
    assert refusals[0].details == {"code": "SHARED0001", "row": 20_002, "other_library": True}
    assert counts()["pools"] == 1 and counts()["codes"] == 20_001


# -- a big import beside a kiosk ------------------------------------------------------------

def panel_csv(values: list[str], window: tuple[date, date]) -> bytes:
    """A panel's CSV export: a number, the code and its window on every row."""
    start, end = format_date(window[0]), format_date(window[1])
    lines = ["Lp.;Kod;Ważny od;Ważny do"] + [f"{n};{v};{start};{end}" for n, v in enumerate(values, 1)]
    return "\n".join(lines).encode()


def previewed(client, slug: str, data: bytes) -> str:
    """The token of the panel's preview of the file."""
    page = client.post(f"/admin/{slug}/import", data={
        "file": (io.BytesIO(data), "kody.csv"), "month": "",
        "csrf_token": token_of(client, f"/admin/{slug}/import")}, content_type="multipart/form-data")
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    return re.search(r'name="token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def test_an_issue_during_a_panel_import_waits_less_than_a_second(app, signed_in_admin):
    """The import's write transaction holds SQLite's write lock: the file is read
    before it, and the codes go in with one statement, so a kiosk of another
    library is served at once."""
    month = this_month()
    make_pool(make_library("lib"), codes("OWN", 400), month)
    admin = signed_in_admin(make_library("big"))
    token = previewed(admin, "big", panel_csv([f"BIG{n:09d}" for n in range(100_000)], month))
    answers: list = []

    def confirm():
        with app.app_context():
            answers.append(post(admin, "/admin/big/import/confirm", {"token": token}, token_from="/admin/big/import"))

    importing = threading.Thread(target=confirm)
    importing.start()
    waits, outcomes = [], set()
    while importing.is_alive():  # one reader after another, for as long as the import lasts
        started = time.perf_counter()
        outcomes.add(issue(app, f"{70_000_000 + len(waits)}", utcnow()).outcome)
        waits.append(time.perf_counter() - started)
        time.sleep(0.02)
    importing.join()

    assert answers[0].status_code == 302, answers[0].get_data(as_text=True)[:500]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Code)) == 100_400
    # Queued behind the import's transaction, an issue would wait for the whole insert of
    # 100,000 codes (seconds). What it may wait is the GIL while this same process
    # parses the file: up to about a second on a slow, shared machine.
    assert max(waits) < 2.0, f"an issue waited {max(waits):.2f} s: {[round(w, 2) for w in waits]}"
    assert outcomes == {Outcome.ISSUED} and len(waits) >= 3
