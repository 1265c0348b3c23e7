"""The monthly report as an XLSX workbook: what each library had in its pools and
how many codes it handed out, day by day and by channel.

A consortium admin gets every library (with a summary sheet first); a library
admin gets one sheet, for their own library. Readers never appear: no card
numbers, no reader keys, only counts.
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.clock import local_day, month_window
from kiosk.storage.models import Channel, Issuance, Library, Platform
from kiosk.domain.pools import PoolSummary, pool_summaries

DATE_FORMAT = "DD.MM.YYYY"
SUMMARY_TITLE = "Podsumowanie"
POOL_HEADERS = ("Platforma", "Ważna od", "Ważna do", "Plik", "Kodów", "Wydane", "Wycofane",
                "Zostało", "Przepadło")
DAY_HEADERS = ("Dzień", "Kiosk", "Stanowisko", "API", "Razem")
SUMMARY_HEADERS = ("Biblioteka", "Skrót", "Kodów w pulach", "Wydane", "Wycofane", "Zostało",
                   "Przepadło", "Kiosk", "Stanowisko", "API")
CHANNELS = (Channel.KIOSK, Channel.DESK, Channel.API)  # the order of the columns
# Text starting with these is taken for a formula (or mangled) by spreadsheet programs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_SHEET_TITLE = 31  # Excel's limit
BOLD = Font(bold=True)


@dataclass(frozen=True)
class LibraryMonth:
    """One library's figures for the month, shared by its sheet and the summary."""

    library: Library
    pools: list[PoolSummary]
    days: dict[date, Counter]  # every day of the month -> issuances per channel

    def pool_total(self, field: str) -> int:
        return sum(getattr(pool, field) for pool in self.pools)

    def channel_total(self, channel: Channel) -> int:
        return sum(counts[channel] for counts in self.days.values())


# -- gathering ----------------------------------------------------------------

def _libraries(session: Session, library_ids: list[int] | None) -> list[Library]:
    query = select(Library).order_by(Library.slug)
    if library_ids is not None:
        query = query.where(Library.id.in_(library_ids))
    libraries = list(session.scalars(query))
    missing = set(library_ids or ()) - {library.id for library in libraries}
    if missing:
        # A wrong id must not quietly give an empty report that looks like "no issuances".
        raise LookupError(f"no library with id {sorted(missing)}")
    return libraries


def _utc_bounds(first: date, last: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local days first..last: the month ends at the
    library's midnight, not UTC's."""
    zone = ZoneInfo(tz_name)
    start = datetime.combine(first, time.min, zone)
    end = datetime.combine(last + timedelta(days=1), time.min, zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def issuances_per_day(session: Session, library: Library, first: date, last: date) -> dict[date, Counter]:
    """Issuances per local day and channel, voided ones included (they were handed out).

    Only (issued_at, channel) of one library's month is fetched and bucketed here:
    grouping by a local date in SQL differs between SQLite and PostgreSQL."""
    start, end = _utc_bounds(first, last, library.timezone)
    rows = session.execute(
        select(Issuance.issued_at, Issuance.channel)
        .where(Issuance.library_id == library.id, Issuance.issued_at >= start, Issuance.issued_at < end)
    )
    days = {first + timedelta(days=n): Counter() for n in range((last - first).days + 1)}
    for issued_at, channel in rows:
        days[local_day(issued_at, library.timezone)][Channel(channel)] += 1
    return days


def _library_month(session: Session, library: Library, first: date, last: date,
                   now: datetime) -> LibraryMonth:
    pools = [pool for pool in pool_summaries(session, now, library_id=library.id)
             if pool.valid_from <= last and pool.valid_until >= first]
    return LibraryMonth(library, pools, issuances_per_day(session, library, first, last))


# -- writing ------------------------------------------------------------------

def _put(sheet: Worksheet, row: int, column: int, value, *, bold: bool = False) -> None:
    """The one way a cell is written, so text can never become a formula.

    openpyxl turns any string starting with "=" into a formula; forcing the type
    back to string keeps a library or file name such as "=HYPERLINK(...)" as text,
    and quotePrefix keeps it text when someone edits the cell in Excel. Control
    characters, which XML cannot hold, are dropped: any name must make a report."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(FORMULA_STARTS):
            cell.quotePrefix = True
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
                length = 10 if isinstance(cell.value, date) else len(str(cell.value))
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
    _fit_columns(sheet, first_row=4)


def _summary_row(figures: LibraryMonth) -> list[int]:
    """The numeric columns of one library's summary row."""
    pools = [figures.pool_total(field) for field in ("total", "issued", "void", "left", "expired")]
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
    library and a "Razem" row; then each library has a sheet named by its slug."""
    first, last = month_window(year, month)
    libraries = _libraries(session, library_ids)
    months = [_library_month(session, library, first, last, now) for library in libraries]
    platform_names = {slug: name for slug, name in session.execute(select(Platform.slug, Platform.name))}

    book = Workbook()
    book.remove(book.active)
    taken: set[str] = set()
    if len(months) != 1:  # also for no library at all: a workbook needs a sheet
        _write_summary_sheet(book.create_sheet(_sheet_title(SUMMARY_TITLE, taken)), months)
    for figures in months:
        sheet = book.create_sheet(_sheet_title(figures.library.slug, taken))
        _write_library_sheet(sheet, figures, f"{month:02d}.{year}", platform_names)

    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
