"""Reading a pool file from the platform's panel: its codes, the column they are
in, the validity window where the file gives one. Pure: no database, so it runs
before any transaction opens."""
from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import date

from kiosk.domain.clock import parse_date
from kiosk.domain.refusals import Refused
from kiosk.domain.spreadsheets import Cell, Formula, SpreadsheetError, Table, cell_text, header_text, read_table

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
    """Why an import is refused; kiosk.wording.messages turns each into a sentence."""

    NOT_SPREADSHEET = "not_spreadsheet"
    UNREADABLE = "unreadable"
    TOO_LARGE = "too_large"
    TOO_MANY_ROWS = "too_many_rows"
    TOO_MANY_COLUMNS = "too_many_columns"
    CELL_TOO_LONG = "cell_too_long"
    TOO_MANY_CELLS = "too_many_cells"
    FORMULA = "formula"
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
    # The card registry's import (kiosk.domain.registry) refuses with these too.
    NO_CARD_COLUMN = "no_card_column"
    BAD_CARD = "bad_card"
    DUPLICATE_CARD = "duplicate_card"
    BAD_DEBT = "bad_debt"
    NEGATIVE_DEBT = "negative_debt"
    # A platform's list of activated codes (kiosk.domain.activations).
    NONE_OF_LIBRARY = "none_of_library"


class ImportRefused(Refused):
    @property
    def problem(self) -> ImportProblem:
        return self.reason


@dataclass(frozen=True)
class ParsedPool:
    codes: list[str]
    rows: list[int]  # the spreadsheet row of each code, for messages
    file_window: Window | None
    file_until: date | None  # an end date alone, when the file has no start column
    code_column: str
    file_kind: str


# -- reading the file ---------------------------------------------------------

def _is_code_header(cell: Cell) -> bool:
    text = header_text(cell)
    return text in CODE_HEADERS or text.startswith(("kod ", "code ", "kody "))


def looks_like_code(text: str) -> bool:
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
    return looks_like_code(text) and any(ch.isdigit() for ch in text)


def _window_columns(header_row: list[Cell]) -> tuple[int | None, int | None]:
    start = end = None
    for c, cell in enumerate(header_row):
        text = header_text(cell)
        if text in FROM_HEADERS and start is None:
            start = c
        elif text in UNTIL_HEADERS and end is None:
            end = c
    return start, end


def refused_file(exc: SpreadsheetError) -> ImportRefused:
    return ImportRefused(ImportProblem(exc.kind), detail=exc.detail, **exc.details)


def formula_at(row: list[Cell], column: int | None, row_number: int) -> None:
    if column is not None and column < len(row) and isinstance(row[column], Formula):
        raise ImportRefused(ImportProblem.FORMULA, row=row_number)


def text_at(row: list[Cell], column: int, row_number: int) -> str:
    """A cell's text; a formula never calculated is refused with its row."""
    cell = row[column] if column < len(row) else None
    if isinstance(cell, Formula):
        raise ImportRefused(ImportProblem.FORMULA, row=row_number)
    return cell_text(cell)


def date_in(row: list[Cell], column: int | None, row_number: int, any_year: bool = False) -> date | None:
    formula_at(row, column, row_number)
    if column is None or column >= len(row) or row[column] in (None, ""):
        return None
    try:
        return parse_date(row[column], any_year=any_year)
    except ValueError:
        raise ImportRefused(ImportProblem.BAD_DATE, row=row_number, value=str(row[column]))


def read_spreadsheet(data: bytes) -> Table:
    """The file's first sheet; refuses (ImportRefused) a file that is not one, or holds no value."""
    try:
        table = read_table(data)
    except SpreadsheetError as exc:
        raise refused_file(exc) from exc
    if not any(str(cell).strip() for row in table.rows for cell in row if cell is not None):
        raise ImportRefused(ImportProblem.EMPTY)
    return table


@dataclass(frozen=True)
class CodeColumn:
    """Where a file's codes are: found by a header, or else by the shape of the values."""

    column: int
    start: int  # index of the first row after the header (or of the first code)
    header_row: int | None  # index of the header's row, when there is one
    name: str  # for people: "Kod (A)", or the letter alone


def find_code_column(rows: list[list[Cell]]) -> CodeColumn:
    """The code column of a panel's file; raises ImportRefused when there is none, or two."""
    header = _find_code_header(rows)
    if header is not None:
        header_row, column = header
        return CodeColumn(column, header_row + 1, header_row,
                          f"{cell_text(rows[header_row][column])} ({_column_letter(column)})")
    start, column = _guess_code_column(rows)
    return CodeColumn(column, start, None, _column_letter(column))


def parse_pool_file(data: bytes) -> ParsedPool:
    """The codes of a panel export, with the validity window where the file has one.

    Refuses (ImportRefused) anything it cannot read unambiguously."""
    table = read_spreadsheet(data)
    rows = table.rows
    found = find_code_column(rows)
    start, column, column_name = found.start, found.column, found.name
    from_col, until_col = _window_columns(rows[found.header_row]) if found.header_row is not None else (None, None)

    first_seen: dict[str, int] = {}  # each code and its row, in the file's order
    windows: set[Window] = set()
    untils: set[date] = set()
    dated = from_col is not None or until_col is not None
    for r in range(start, len(rows)):
        row, number = rows[r], r + 1
        text = text_at(row, column, number)
        if not text:
            continue
        if not looks_like_code(text):
            raise ImportRefused(ImportProblem.BAD_CODE, row=number, value=text[:80])
        if text in first_seen:
            raise ImportRefused(
                ImportProblem.DUPLICATE_IN_FILE, row=number, code=text, first_row=first_seen[text]
            )
        first_seen[text] = number
        if not dated:  # no window columns: nothing more to read in the row
            continue
        valid_from, valid_until = date_in(row, from_col, number), date_in(row, until_col, number)
        if valid_from and valid_until:
            windows.add((valid_from, valid_until))
        elif valid_until:
            untils.add(valid_until)
        if len(windows) > 1 or len(untils) > 1:
            raise ImportRefused(ImportProblem.WINDOW_MIXED, row=number)
    if not first_seen:
        raise ImportRefused(ImportProblem.EMPTY)
    return ParsedPool(
        codes=list(first_seen),
        rows=list(first_seen.values()),
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


@dataclass(frozen=True)
class PreparedPool:
    """A file read and its window settled: what an import stores, or a preview shows."""

    codes: list[str]
    rows: list[int]
    valid_from: date
    valid_until: date
    code_column: str
    filename: str
    sha256: str

    @property
    def window(self) -> Window:
        return self.valid_from, self.valid_until


def prepare_pool(data: bytes, filename: str, window: Window | None) -> PreparedPool:
    """Reads the file and settles its window; raises ImportRefused."""
    parsed = parse_pool_file(data)
    valid_from, valid_until = resolve_window(parsed, window)
    return PreparedPool(codes=parsed.codes, rows=parsed.rows, valid_from=valid_from, valid_until=valid_until,
                        code_column=parsed.code_column, filename=filename,
                        sha256=hashlib.sha256(data).hexdigest())

