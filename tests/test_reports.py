"""The monthly XLSX report, read back as a user would open it, on SQLite and PostgreSQL."""
import io
import re
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from helpers import codes, issue, make_library, make_pool, warsaw
from kiosk.app.extensions import db
from kiosk.storage.models import Channel, CodeStatus, Issuance
from kiosk.domain.reports import monthly_report

DECEMBER_2019 = (date(2019, 12, 1), date(2019, 12, 31))
JANUARY_2020 = (date(2020, 1, 1), date(2020, 1, 31))
FEBRUARY_2020 = (date(2020, 2, 1), date(2020, 2, 29))
AFTER_JANUARY = warsaw(2020, 2, 10, 12)


def report(library_ids=None, year=2020, month=1, now=AFTER_JANUARY):
    db.session.commit()  # what the test changed through the session must be visible
    data = monthly_report(db.session, year=year, month=month, library_ids=library_ids, now=now)
    return data, load_workbook(io.BytesIO(data))


def rows(sheet) -> list[tuple]:
    return [tuple(cell.value for cell in row) for row in sheet.iter_rows()]


def table_below(sheet, header: str) -> list[tuple]:
    """The rows under the header row whose first cell is `header`, up to a blank row,
    as wide as that header row."""
    all_rows = rows(sheet)
    start = next(n for n, row in enumerate(all_rows) if row[0] == header)
    width = sum(value is not None for value in all_rows[start])
    table = []
    for row in all_rows[start + 1:]:
        if row[0] is None:
            break
        table.append(row[:width])
    return table


def days(sheet) -> dict[date, tuple]:
    """Day -> (Kiosk, Stanowisko, API, Formularz online, Razem), from the day-by-day table."""
    return {row[0].date(): row[1:] for row in table_below(sheet, "Dzień") if row[0] != "Razem"}


def void(issuance_code: str) -> None:
    """A faulty code withdrawn after it was handed out."""
    issuance = next(i for i in db.session.scalars(select(Issuance)) if i.code.value == issuance_code)
    issuance.code.status = CodeStatus.VOID.value
    issuance.voided_at = warsaw(2020, 1, 20, 9)
    db.session.commit()


def test_summary_has_a_row_per_library_and_a_total(app):
    alfa, beta = make_library("alfa"), make_library("beta")
    make_pool(alfa, codes("AJ", 5), JANUARY_2020)
    make_pool(alfa, codes("AF", 5), FEBRUARY_2020)  # outside the month: not counted
    make_pool(beta, codes("BJ", 3), JANUARY_2020)
    issue(app, "1001", warsaw(2020, 1, 10, 9), library="alfa")
    faulty = issue(app, "1002", warsaw(2020, 1, 10, 10), library="alfa")
    issue(app, "1003", warsaw(2020, 1, 11, 9), library="alfa", channel=Channel.DESK)
    issue(app, "1001", warsaw(2020, 2, 3, 9), library="alfa")  # February: not counted
    issue(app, "2001", warsaw(2020, 1, 15, 9), library="beta", channel=Channel.API)
    issue(app, "2002", warsaw(2020, 1, 16, 9), library="beta", channel=Channel.ONLINE)
    void(faulty.code)

    _, book = report()

    assert book.sheetnames == ["Podsumowanie", "alfa", "beta", "Wydane kody"]
    assert rows(book["Podsumowanie"]) == [
        ("Biblioteka", "Skrót", "Kodów w pulach", "Wydane", "Wycofane", "Zostało", "Przepadło",
         "Kiosk", "Stanowisko", "API", "Formularz online"),
        ("Biblioteka alfa", "alfa", 5, 2, 1, 0, 2, 2, 1, 0, 0),
        ("Biblioteka beta", "beta", 3, 2, 0, 0, 1, 0, 0, 1, 1),
        ("Razem", None, 8, 4, 1, 0, 3, 2, 1, 1, 1),
    ]
    assert book["Podsumowanie"]["C4"].data_type == "n"  # a number, not a SUM() formula
    # The voided code was handed out on the 10th, so that day still counts it.
    assert days(book["alfa"])[date(2020, 1, 10)] == (2, 0, 0, 0, 2)
    assert days(book["alfa"])[date(2020, 1, 11)] == (0, 1, 0, 0, 1)


def test_library_sheet_lists_the_months_pools_with_their_counts(app):
    library = make_library("alfa")
    make_pool(library, codes("DEC", 2), DECEMBER_2019, filename="grudzien.xlsx")
    make_pool(library, codes("JAN", 4), JANUARY_2020, filename="styczen.xlsx")
    issue(app, "1001", warsaw(2020, 1, 5, 9), library="alfa")

    _, book = report(now=warsaw(2020, 1, 20, 12))

    sheet = book["alfa"]
    assert sheet["A1"].value == "Biblioteka alfa"
    assert sheet["A1"].font.bold
    assert sheet["A2"].value == "Miesiąc: 01.2020"
    assert table_below(sheet, "Platforma") == [
        ("Legimi", datetime(2020, 1, 1), datetime(2020, 1, 31), "styczen.xlsx", 4, 1, 0, 3, 0),
    ]


def test_days_split_at_midnight_in_warsaw(app):
    library = make_library()
    for window, prefix in ((DECEMBER_2019, "DEC"), (JANUARY_2020, "JAN"), (FEBRUARY_2020, "FEB")):
        make_pool(library, codes(prefix, 3), window)
    issue(app, "1001", warsaw(2019, 12, 31, 23, 30))  # 22:30 UTC: still December
    issue(app, "1002", warsaw(2020, 1, 1, 0, 30))     # 31.12 23:30 UTC, yet 1 January
    issue(app, "1003", warsaw(2020, 1, 31, 23, 30))   # 22:30 UTC: 31 January
    issue(app, "1004", warsaw(2020, 2, 1, 0, 30))     # 31.01 23:30 UTC, yet February

    _, january = report()
    _, february = report(month=2, now=warsaw(2020, 3, 1, 12))

    january_days = days(january["lib"])
    assert len(january_days) == 31
    assert january_days[date(2020, 1, 1)] == (1, 0, 0, 0, 1)
    assert january_days[date(2020, 1, 31)] == (1, 0, 0, 0, 1)
    assert sum(day[-1] for day in january_days.values()) == 2
    assert table_below(january["lib"], "Dzień")[-1] == ("Razem", 2, 0, 0, 0, 2)
    february_days = days(february["lib"])
    assert len(february_days) == 29
    assert february_days[date(2020, 2, 1)] == (1, 0, 0, 0, 1)
    assert sum(day[-1] for day in february_days.values()) == 1


def test_library_admin_gets_only_their_own_library(app):
    alfa, beta = make_library("alfa"), make_library("beta")
    make_pool(alfa, codes("AJ", 2), JANUARY_2020)
    make_pool(beta, codes("BJ", 2), JANUARY_2020)
    issue(app, "1001", warsaw(2020, 1, 10, 9), library="alfa")

    _, book = report(library_ids=[beta.id])

    assert book.sheetnames == ["beta", "Wydane kody"]
    texts = [str(value) for row in rows(book["beta"]) for value in row if value is not None]
    assert not any("alfa" in text for text in texts)
    assert table_below(book["beta"], "Dzień")[-1] == ("Razem", 0, 0, 0, 0, 0)


def test_unknown_library_is_refused_not_reported_empty(app):
    make_library("alfa")

    with pytest.raises(LookupError):
        report(library_ids=[999])


def test_dates_are_date_cells_shown_as_dd_mm_yyyy(app):
    library = make_library()
    make_pool(library, codes("JAN", 2), JANUARY_2020)

    _, book = report()

    sheet = book["lib"]
    pool_row = next(row for row in sheet.iter_rows() if row[0].value == "Legimi")
    first_day = next(row for row in sheet.iter_rows() if row[0].value == datetime(2020, 1, 1))
    for cell in (pool_row[1], pool_row[2], first_day[0]):
        assert cell.is_date
        assert cell.number_format == "DD.MM.YYYY"
    assert pool_row[2].value == datetime(2020, 1, 31)


def test_formula_like_names_come_back_as_text(app):
    hostile = '=HYPERLINK("http://x","klik")'
    library = make_library("alfa")
    library.name = hostile
    make_library("beta").name = "@SUM(1)"
    db.session.commit()
    make_pool(library, codes("JAN", 2), JANUARY_2020, filename="+cmd.xlsx")

    data, book = report()

    summary = book["Podsumowanie"]
    assert (summary["A2"].value, summary["A2"].data_type) == (hostile, "s")
    assert (summary["A3"].value, summary["A3"].data_type) == ("@SUM(1)", "s")
    sheet = book["alfa"]
    assert (sheet["A1"].value, sheet["A1"].data_type) == (hostile, "s")
    filename = next(row[3] for row in sheet.iter_rows() if row[0].value == "Legimi")
    assert (filename.value, filename.data_type) == ("+cmd.xlsx", "s")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheets = [name for name in archive.namelist() if re.fullmatch(r"xl/worksheets/.*\.xml", name)]
        assert len(sheets) == 4  # the summary, two libraries, the list of codes
        for name in sheets:
            assert not re.search(rb"<f[\s>/]", archive.read(name)), name


def test_no_card_numbers_or_reader_keys_in_the_report(app):
    library = make_library()
    make_pool(library, codes("JAN", 2), JANUARY_2020)
    issue(app, "98765432", warsaw(2020, 1, 10, 9))
    reader_key = db.session.scalar(select(Issuance.reader_key))

    data, book = report()

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"98765432" not in everything
    assert reader_key.encode() not in everything


def test_long_slugs_make_short_unique_sheet_titles(app):
    make_library("a" * 31 + "-one")
    make_library("a" * 31 + "-two")

    _, book = report()

    assert book.sheetnames == ["Podsumowanie", "a" * 31, "a" * 29 + "~2", "Wydane kody"]
