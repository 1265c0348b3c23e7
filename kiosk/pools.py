"""Pools of codes: reading the panel's spreadsheet, checking it against what is
already imported, storing it all or nothing, and counting what is left."""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

from sqlalchemy import case, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.clock import local_day, parse_date
from kiosk.events import record_event
from kiosk.models import Code, CodeStatus, Consortium, Library, Platform, Pool
from kiosk.spreadsheets import Cell, SpreadsheetError, cell_text, header_text, read_table

# Letters, digits and inner dashes, 6 to 64 characters.
CODE_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{4,62}[A-Za-z0-9]")
CODE_HEADERS = ("kod", "kody", "code", "codes", "voucher", "vouchery", "vouchers")
FROM_HEADERS = {"wazny od", "wazne od", "waznosc od", "wazny od dnia", "data od", "od",
                "valid from", "start", "poczatek"}
UNTIL_HEADERS = {"wazny do", "wazne do", "waznosc do", "wazny do dnia", "data do", "do",
                 "valid until", "valid to", "koniec", "data waznosci", "expires", "wygasa"}
HEADER_SEARCH_ROWS = 10
Window = tuple[date, date]


class ImportProblem(enum.StrEnum):
    """Why an import is refused; kiosk.messages turns each into a sentence."""

    NOT_SPREADSHEET = "not_spreadsheet"
    UNREADABLE = "unreadable"
    EMPTY = "empty"
    NO_CODE_COLUMN = "no_code_column"
    AMBIGUOUS_CODE_COLUMN = "ambiguous_code_column"
    BAD_CODE = "bad_code"
    BAD_DATE = "bad_date"
    DUPLICATE_IN_FILE = "duplicate_in_file"
    CODE_EXISTS = "code_exists"
    SAME_FILE = "same_file"
    NO_WINDOW = "no_window"
    WINDOW_REVERSED = "window_reversed"
    WINDOW_CONFLICT = "window_conflict"
    WINDOW_MIXED = "window_mixed"
    WINDOW_OVERLAP = "window_overlap"
    AFTER_SERVICE_END = "after_service_end"
    # The card registry's import (kiosk.registry) refuses with these too.
    NO_CARD_COLUMN = "no_card_column"
    BAD_CARD = "bad_card"
    DUPLICATE_CARD = "duplicate_card"


class ImportRefused(Exception):
    def __init__(self, problem: ImportProblem, **details):
        super().__init__(f"{problem.value} {details}")
        self.problem = problem
        self.details = details


@dataclass(frozen=True)
class ParsedPool:
    codes: list[str]
    rows: list[int]  # the spreadsheet row of each code, for messages
    file_window: Window | None
    file_until: date | None  # an end date alone, when the file has no start column
    code_column: str
    file_kind: str


@dataclass(frozen=True)
class ImportReport:
    library: str
    platform: str
    valid_from: date
    valid_until: date
    count: int
    filename: str
    sha256: str
    code_column: str
    dry_run: bool
    pool_id: int | None = None
    sample: list[str] = field(default_factory=list)


# -- reading the file ---------------------------------------------------------

def _is_code_header(cell: Cell) -> bool:
    text = header_text(cell)
    return text in CODE_HEADERS or text.startswith(("kod ", "code ", "kody "))


def _looks_like_code(text: str) -> bool:
    return bool(CODE_SHAPE.fullmatch(text))


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _find_code_header(rows: list[list[Cell]]) -> tuple[int, int] | None:
    """(row index, column index) of a code header in the first rows, if any."""
    for r, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        for c, cell in enumerate(row):
            if _is_code_header(cell):
                return r, c
    return None


def _guess_code_column(rows: list[list[Cell]]) -> tuple[int, int]:
    """(first data row index, column) of the column whose values look like codes.

    A few leading cells that do not (a title, an unknown header) are skipped."""
    width = max((len(row) for row in rows), default=0)
    candidates: list[tuple[int, int, int]] = []  # (matching cells, column, start row)
    for c in range(width):
        cells = [(r, cell_text(row[c])) for r, row in enumerate(rows) if c < len(row)]
        cells = [(r, text) for r, text in cells if text]
        skipped = 0
        while skipped < min(3, len(cells)) and not _plausible_code(cells[skipped][1]):
            skipped += 1
        rest = cells[skipped:]
        matching = sum(1 for _, text in rest if _plausible_code(text))
        if rest and matching >= 0.8 * len(rest):
            candidates.append((matching, c, rest[0][0]))
    if not candidates:
        raise ImportRefused(ImportProblem.NO_CODE_COLUMN)
    candidates.sort(reverse=True)
    if len(candidates) > 1 and candidates[0][0] == candidates[1][0]:
        raise ImportRefused(
            ImportProblem.AMBIGUOUS_CODE_COLUMN,
            columns=[_column_letter(candidates[0][1]), _column_letter(candidates[1][1])],
        )
    _, column, start = candidates[0]
    return start, column


def _plausible_code(text: str) -> bool:
    # Without a header we also want a digit: a column of words is not codes.
    return _looks_like_code(text) and any(ch.isdigit() for ch in text)


def _window_columns(header_row: list[Cell]) -> tuple[int | None, int | None]:
    start = end = None
    for c, cell in enumerate(header_row):
        text = header_text(cell)
        if text in FROM_HEADERS and start is None:
            start = c
        elif text in UNTIL_HEADERS and end is None:
            end = c
    return start, end


def date_in(row: list[Cell], column: int | None, row_number: int) -> date | None:
    if column is None or column >= len(row) or row[column] in (None, ""):
        return None
    try:
        return parse_date(row[column])
    except ValueError:
        raise ImportRefused(ImportProblem.BAD_DATE, row=row_number, value=str(row[column]))


def parse_pool_file(data: bytes) -> ParsedPool:
    """The codes of a panel export, with the validity window where the file has one.

    Refuses (ImportRefused) anything it cannot read unambiguously."""
    try:
        table = read_table(data)
    except SpreadsheetError as exc:
        raise ImportRefused(ImportProblem(exc.kind), detail=exc.detail) from exc
    rows = table.rows
    if not any(str(cell).strip() for row in rows for cell in row if cell is not None):
        raise ImportRefused(ImportProblem.EMPTY)
    header = _find_code_header(rows)
    if header is not None:
        header_row, column = header
        start = header_row + 1
        from_col, until_col = _window_columns(rows[header_row])
        column_name = f"{cell_text(rows[header_row][column])} ({_column_letter(column)})"
    else:
        start, column = _guess_code_column(rows)
        from_col = until_col = None
        column_name = _column_letter(column)

    codes: list[str] = []
    numbers: list[int] = []
    first_seen: dict[str, int] = {}
    windows: set[Window] = set()
    untils: set[date] = set()
    for r in range(start, len(rows)):
        row, number = rows[r], r + 1
        text = cell_text(row[column]) if column < len(row) else ""
        if not text:
            continue
        if not _looks_like_code(text):
            raise ImportRefused(ImportProblem.BAD_CODE, row=number, value=text[:80])
        if text in first_seen:
            raise ImportRefused(
                ImportProblem.DUPLICATE_IN_FILE, row=number, code=text, first_row=first_seen[text]
            )
        first_seen[text] = number
        codes.append(text)
        numbers.append(number)
        valid_from, valid_until = date_in(row, from_col, number), date_in(row, until_col, number)
        if valid_from and valid_until:
            windows.add((valid_from, valid_until))
        elif valid_until:
            untils.add(valid_until)
        if len(windows) > 1 or len(untils) > 1:
            raise ImportRefused(ImportProblem.WINDOW_MIXED, row=number)
    if not codes:
        raise ImportRefused(ImportProblem.EMPTY)
    return ParsedPool(
        codes=codes,
        rows=numbers,
        file_window=next(iter(windows), None),
        file_until=next(iter(untils), None),
        code_column=column_name,
        file_kind=table.kind,
    )


def resolve_window(parsed: ParsedPool, given: Window | None) -> Window:
    """The file's window where it has one, else the one given; never both differing."""
    if given and given[1] < given[0]:
        raise ImportRefused(ImportProblem.WINDOW_REVERSED, valid_from=given[0], valid_until=given[1])
    window = parsed.file_window
    if window and given and window != given:
        raise ImportRefused(ImportProblem.WINDOW_CONFLICT, file_window=window, given=given)
    if parsed.file_until and given and parsed.file_until != given[1]:
        raise ImportRefused(
            ImportProblem.WINDOW_CONFLICT, file_window=(None, parsed.file_until), given=given
        )
    window = window or given
    if window is None:
        raise ImportRefused(ImportProblem.NO_WINDOW, file_until=parsed.file_until)
    if window[1] < window[0]:
        raise ImportRefused(ImportProblem.WINDOW_REVERSED, valid_from=window[0], valid_until=window[1])
    return window


# -- checking against the database and storing --------------------------------

def _pool_details(pool: Pool, library: Library) -> dict:
    """What a refusal may say of an earlier pool: everything for the library's own,
    nothing for another library's (its files and staff are not this admin's)."""
    if pool.library_id != library.id:
        return {"other_library": True}
    return {
        "filename": pool.source_filename,
        "library": pool.library.slug,
        "imported_at": pool.imported_at,
        "imported_by": pool.imported_by,
        "valid_from": pool.valid_from,
        "valid_until": pool.valid_until,
    }


def _check_against_database(
    session: Session, library: Library, platform: Platform, parsed: ParsedPool, window: Window, sha256: str
) -> None:
    # One import per library at a time (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    # serialises): two overlapping windows could otherwise both pass the check below.
    session.execute(select(Library.id).where(Library.id == library.id).with_for_update())
    earlier = session.scalar(
        select(Pool).where(Pool.platform_id == platform.id, Pool.source_sha256 == sha256)
    )
    if earlier is not None:
        raise ImportRefused(ImportProblem.SAME_FILE, **_pool_details(earlier, library))

    row_of = dict(zip(parsed.codes, parsed.rows))
    for chunk in _chunks(parsed.codes, 500):
        existing = session.execute(
            select(Code.value, Pool)
            .join(Pool, Code.pool_id == Pool.id)
            .where(Code.platform_id == platform.id, Code.value.in_(chunk))
            .limit(1)
        ).first()
        if existing is not None:
            value, pool = existing
            raise ImportRefused(
                ImportProblem.CODE_EXISTS, code=value, row=row_of[value], **_pool_details(pool, library)
            )

    overlapping = session.scalar(
        select(Pool).where(
            Pool.library_id == library.id,
            Pool.platform_id == platform.id,
            Pool.valid_from <= window[1],
            Pool.valid_until >= window[0],
            # The same window again is a top-up of that month's pool: allowed.
            ~((Pool.valid_from == window[0]) & (Pool.valid_until == window[1])),
        ).limit(1)
    )
    if overlapping is not None:
        raise ImportRefused(ImportProblem.WINDOW_OVERLAP, **_pool_details(overlapping, library))

    consortium = session.scalar(select(Consortium).limit(1))
    if consortium and consortium.service_end and window[0] > consortium.service_end:
        raise ImportRefused(ImportProblem.AFTER_SERVICE_END, service_end=consortium.service_end)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def import_pool(
    session: Session,
    *,
    library: Library,
    platform: Platform,
    data: bytes,
    filename: str,
    window: Window | None,
    actor: str,
    now: datetime,
    dry_run: bool = False,
) -> ImportReport:
    """Import one panel file as a pool, all or nothing. Raises ImportRefused."""
    parsed = parse_pool_file(data)
    resolved = resolve_window(parsed, window)
    sha256 = hashlib.sha256(data).hexdigest()
    _check_against_database(session, library, platform, parsed, resolved, sha256)
    report = ImportReport(
        library=library.slug,
        platform=platform.slug,
        valid_from=resolved[0],
        valid_until=resolved[1],
        count=len(parsed.codes),
        filename=filename,
        sha256=sha256,
        code_column=parsed.code_column,
        dry_run=dry_run,
        sample=parsed.codes[:3],
    )
    if dry_run:
        session.rollback()
        return report
    pool = Pool(
        library_id=library.id,
        platform_id=platform.id,
        valid_from=resolved[0],
        valid_until=resolved[1],
        code_count=len(parsed.codes),
        source_filename=filename,
        source_sha256=sha256,
        imported_by=actor,
        imported_at=now,
    )
    session.add(pool)
    try:
        session.flush()
        session.execute(
            insert(Code),
            [{"pool_id": pool.id, "platform_id": platform.id, "value": code,
              "status": CodeStatus.AVAILABLE.value} for code in parsed.codes],
        )
        record_event(session, kind="import", actor=actor, library_id=library.id, now=now,
                     pool_id=pool.id, filename=filename, sha256=sha256, count=len(parsed.codes),
                     valid_from=resolved[0], valid_until=resolved[1])
        session.commit()
    except IntegrityError:
        # Another import of the same codes or file won the race: say which.
        session.rollback()
        _check_against_database(session, library, platform, parsed, resolved, sha256)
        raise
    return dataclasses.replace(report, pool_id=pool.id)


# -- what is left -------------------------------------------------------------

@dataclass(frozen=True)
class PoolSummary:
    pool_id: int
    library: str
    platform: str
    valid_from: date
    valid_until: date
    total: int
    issued: int
    void: int
    left: int
    expired: int
    source_filename: str
    imported_at: datetime

    def as_json(self) -> dict:
        data = dict(self.__dict__)
        for key in ("valid_from", "valid_until", "imported_at"):
            data[key] = data[key].isoformat()
        return data


def pool_summaries(session: Session, now: datetime, library_id: int | None = None) -> list[PoolSummary]:
    """Counts per pool. Codes not issued by the end of the window are expired:
    derived from today's date, never stored, so no nightly job can be missed."""
    counts = (
        select(
            Code.pool_id,
            func.sum(case((Code.status == CodeStatus.AVAILABLE.value, 1), else_=0)).label("available"),
            func.sum(case((Code.status == CodeStatus.ISSUED.value, 1), else_=0)).label("issued"),
            func.sum(case((Code.status == CodeStatus.VOID.value, 1), else_=0)).label("void"),
        )
        .group_by(Code.pool_id)
        .subquery()
    )
    query = (
        select(Pool, Library, Platform, counts.c.available, counts.c.issued, counts.c.void)
        .join(Library, Pool.library_id == Library.id)
        .join(Platform, Pool.platform_id == Platform.id)
        .join(counts, counts.c.pool_id == Pool.id)
        .order_by(Library.slug, Pool.valid_from, Pool.imported_at, Pool.id)
    )
    if library_id is not None:
        query = query.where(Pool.library_id == library_id)
    summaries = []
    for pool, library, platform, available, issued, void in session.execute(query):
        over = local_day(now, library.timezone) > pool.valid_until
        summaries.append(PoolSummary(
            pool_id=pool.id,
            library=library.slug,
            platform=platform.slug,
            valid_from=pool.valid_from,
            valid_until=pool.valid_until,
            total=pool.code_count,
            issued=int(issued),
            void=int(void),
            left=0 if over else int(available),
            expired=int(available) if over else 0,
            source_filename=pool.source_filename,
            imported_at=pool.imported_at,
        ))
    return summaries
