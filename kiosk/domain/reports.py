"""The monthly report as an XLSX workbook: what each library had in its pools and
how many codes it handed out, day by day, by channel and by kiosk; unique readers,
reprints and refusals by reason; and a last sheet listing every code handed out.

A consortium admin gets every library (with a summary sheet first); a library
admin gets one sheet, for their own library, and the list. Readers never appear
by number: no card numbers, no reader keys; the list shows only the card's last
four characters (••••1234). The figures are gathered in kiosk.domain.report_figures.
"""
from __future__ import annotations

import io
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.clock import month_window
from kiosk.domain.report_figures import REFUSALS, LibraryMonth, libraries_named, library_month
from kiosk.storage.models import Channel, Platform

DATE_FORMAT = "DD.MM.YYYY"
MOMENT_FORMAT = "DD.MM.YYYY HH:MM"
SUMMARY_TITLE = "Podsumowanie"
CODES_TITLE = "Wydane kody"
CODES_HEADERS = ("Biblioteka", "Wydano", "Kod", "Kanał", "Kiosk lub pracownik", "Karta", "Wycofany")
CHANNEL_WORDS = {Channel.KIOSK: "kiosk", Channel.DESK: "stanowisko", Channel.API: "API",
                 Channel.ONLINE: "formularz online"}
REFUSAL_WORDS = {
    "empty": "karta: brak numeru",
    "format": "karta: numer nie tej biblioteki",
    "check_digit": "karta: zła cyfra kontrolna",
    "unknown": "karta: spoza rejestru",
    "expired": "karta: wygasła",
    "blocked": "karta: zablokowana",
    "wrong_pin": "karta: zły PIN",
    "ils_unavailable": "system biblioteki nie odpowiedział",
    "not_yet": "zasady: jeszcze nie wydajemy",
    "too_young": "zasady: za młody czytelnik",
    "inactive": "zasady: brak wypożyczeń",
    "debt": "zasady: zadłużenie",
    "not_activated": "zasady: poprzedni kod nieaktywowany",
    "reserved": "zasady: rezerwa dla nowych czytelników",
    "online_reserved": "zasady: część puli dla zamówień online",
    "other_platform": "zasady: ma już kod innej platformy",
    "no_data": "zasady: brak danych o czytelniku",
    "card_refused": "karta: odrzucona (bez powodu)",
    "not_eligible": "zasady: odmowa (bez powodu)",
    "no_codes_left": "brak wolnych kodów",
    "no_pool": "brak puli",
    "service_ended": "usługa zakończona",
    "reprint_withheld": "kod nie pokazany ponownie (numer wpisany, nie zeskanowany)",
}
POOL_HEADERS = ("Platforma", "Ważna od", "Ważna do", "Plik", "Kodów", "Wydane", "Wycofane",
                "Zostało", "Przepadło")
DAY_HEADERS = ("Dzień", "Kiosk", "Stanowisko", "API", "Formularz online", "Razem")
SUMMARY_HEADERS = ("Biblioteka", "Skrót", "Kodów w pulach", "Wydane", "Wycofane", "Zostało",
                   "Przepadło", "Kiosk", "Stanowisko", "API", "Formularz online")
CHANNELS = (Channel.KIOSK, Channel.DESK, Channel.API, Channel.ONLINE)  # the order of the columns
# Text starting with these is taken for a formula (or mangled) by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_SHEET_TITLE = 31  # Excel's limit
BOLD = Font(bold=True)


# -- writing ------------------------------------------------------------------

def _put(sheet: Worksheet, row: int, column: int, value, *, bold: bool = False) -> None:
    """The one way a cell is written, so text can never become a formula.

    openpyxl turns any string starting with "=" into a formula; forcing the type
    back to string keeps a library or file name such as "=HYPERLINK(...)" as text,
    and quotePrefix keeps it text when someone edits the cell in Excel. Control
    characters, which XML cannot hold, are dropped: any name must make a report."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    elif isinstance(value, datetime) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # already in the library's time: a spreadsheet has no zones
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(FORMULA_STARTS):
            cell.quotePrefix = True
    elif isinstance(value, datetime):
        cell.number_format = MOMENT_FORMAT
    elif isinstance(value, date):
        cell.number_format = DATE_FORMAT
    if bold:
        cell.font = BOLD


def _put_row(sheet: Worksheet, row: int, values, *, bold: bool = False) -> None:
    for column, value in enumerate(values, start=1):
        _put(sheet, row, column, value, bold=bold)


def _fit_columns(sheet: Worksheet, first_row: int) -> None:
    """Widths from the longest value below first_row (titles above may overflow)."""
    widths: dict[int, int] = {}
    for row in sheet.iter_rows(min_row=first_row):
        for cell in row:
            if cell.value is not None:
                length = (16 if isinstance(cell.value, datetime) else 10) if isinstance(cell.value, date) \
                    else len(str(cell.value))
                widths[cell.column] = max(widths.get(cell.column, 0), length)
    for column, width in widths.items():
        sheet.column_dimensions[get_column_letter(column)].width = min(max(width + 2, 8), 60)


def _sheet_title(slug: str, taken: set[str]) -> str:
    """The slug cut to Excel's 31 characters, made unique (Excel ignores case)."""
    title, n = slug[:MAX_SHEET_TITLE], 1
    while title.casefold() in taken:
        n += 1
        suffix = f"~{n}"
        title = slug[:MAX_SHEET_TITLE - len(suffix)] + suffix
    taken.add(title.casefold())
    return title


def _write_library_sheet(sheet: Worksheet, figures: LibraryMonth, month: str,
                         platform_names: dict[str, str]) -> None:
    _put(sheet, 1, 1, figures.library.name, bold=True)
    _put(sheet, 2, 1, f"Miesiąc: {month}")

    _put(sheet, 4, 1, "Pule kodów", bold=True)
    _put_row(sheet, 5, POOL_HEADERS, bold=True)
    row = 6
    for pool in figures.pools:
        _put_row(sheet, row, (platform_names.get(pool.platform, pool.platform), pool.valid_from,
                              pool.valid_until, pool.source_filename, pool.total, pool.issued,
                              pool.void, pool.left, pool.expired))
        row += 1
    if not figures.pools:
        _put(sheet, row, 1, "Brak pul w tym miesiącu")
        row += 1

    row += 1
    _put(sheet, row, 1, "Wydania dzień po dniu", bold=True)
    _put_row(sheet, row + 1, DAY_HEADERS, bold=True)
    row += 2
    for day, counts in figures.days.items():
        per_channel = [counts[channel] for channel in CHANNELS]
        _put_row(sheet, row, (day, *per_channel, sum(per_channel)))
        row += 1
    per_channel = [figures.channel_total(channel) for channel in CHANNELS]
    _put_row(sheet, row, ("Razem", *per_channel, sum(per_channel)), bold=True)
    row = _write_more(sheet, row + 2, figures)
    _fit_columns(sheet, first_row=4)


def _write_more(sheet: Worksheet, row: int, figures: LibraryMonth) -> int:
    """Readers, reprints, refusals by reason and issues per kiosk, from `row` on."""
    _put(sheet, row, 1, "Czytelnicy i wydruki", bold=True)
    _put_row(sheet, row + 1, ("Czytelnicy (bez powtórzeń)", figures.unique_readers))
    _put_row(sheet, row + 2, ("Ponowne wydruki", figures.reprints))
    row += 4
    _put(sheet, row, 1, "Odmowy", bold=True)
    _put_row(sheet, row + 1, ("Powód", "Ile razy"), bold=True)
    row += 2
    for reason in (*REFUSALS, *sorted(set(figures.refusals) - set(REFUSALS))):
        _put_row(sheet, row, (REFUSAL_WORDS.get(reason, reason), figures.refusals.get(reason, 0)))
        row += 1
    _put_row(sheet, row, ("Razem", sum(figures.refusals.values())), bold=True)
    row += 2
    _put(sheet, row, 1, "Wydania według kiosku", bold=True)
    _put_row(sheet, row + 1, ("Kiosk", "Wydane"), bold=True)
    row += 2
    for name, count in figures.per_kiosk:
        _put_row(sheet, row, (name, count))
        row += 1
    if not figures.per_kiosk:
        _put(sheet, row, 1, "Brak kiosków")
        row += 1
    return row


def _write_codes_sheet(sheet: Worksheet, months: list[LibraryMonth]) -> None:
    """Every code handed out in the month: when (the library's time), the code, the
    channel in words, the kiosk or staff member, the card masked."""
    _put_row(sheet, 1, CODES_HEADERS, bold=True)
    row = 2
    for figures in months:
        for issued in figures.codes:
            _put_row(sheet, row, (figures.library.slug, issued.issued_at, issued.code,
                                  CHANNEL_WORDS.get(issued.channel, issued.channel), issued.by, issued.masked_card,
                                  "tak" if issued.voided else ""))
            row += 1
    if row == 2:
        _put(sheet, 2, 1, "Brak wydanych kodów w tym miesiącu")
    _fit_columns(sheet, first_row=1)


def _summary_row(figures: LibraryMonth) -> list[int]:
    """The numeric columns of one library's summary row."""
    pools = [figures.pool_total(name) for name in ("total", "issued", "void", "left", "expired")]
    return pools + [figures.channel_total(channel) for channel in CHANNELS]


def _write_summary_sheet(sheet: Worksheet, months: list[LibraryMonth]) -> None:
    _put_row(sheet, 1, SUMMARY_HEADERS, bold=True)
    rows = [_summary_row(figures) for figures in months]
    for n, (figures, numbers) in enumerate(zip(months, rows), start=2):
        _put_row(sheet, n, (figures.library.name, figures.library.slug, *numbers))
    # Plain numbers, not SUM() formulas: the file must hold no formulas at all.
    totals = [sum(column) for column in zip(*rows)] if rows else [0] * (len(SUMMARY_HEADERS) - 2)
    _put_row(sheet, len(rows) + 2, ("Razem", "", *totals), bold=True)
    _fit_columns(sheet, first_row=1)


def monthly_report(session: Session, *, year: int, month: int, library_ids: list[int] | None,
                   now: datetime) -> bytes:
    """The XLSX report for a calendar month; library_ids=None means every library.

    With more than one library the first sheet, "Podsumowanie", has a row per
    library and a "Razem" row; then each library has a sheet named by its slug;
    the last, "Wydane kody", lists every code handed out."""
    first, last = month_window(year, month)
    libraries = libraries_named(session, library_ids)
    months = [library_month(session, library, first, last, now) for library in libraries]
    platform_names = {slug: name for slug, name in session.execute(select(Platform.slug, Platform.name))}

    book = Workbook()
    book.remove(book.active)
    taken: set[str] = set()
    if len(months) != 1:  # also for no library at all: a workbook needs a sheet
        _write_summary_sheet(book.create_sheet(_sheet_title(SUMMARY_TITLE, taken)), months)
    for figures in months:
        sheet = book.create_sheet(_sheet_title(figures.library.slug, taken))
        _write_library_sheet(sheet, figures, f"{month:02d}.{year}", platform_names)
    _write_codes_sheet(book.create_sheet(_sheet_title(CODES_TITLE, taken)), months)

    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
