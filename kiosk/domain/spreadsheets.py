"""Reading the first sheet of an XLSX, XLS or CSV file into rows of cell values,
with bounded work whatever the file says of itself.

The kind of file is told by its first bytes, not by its name: staff rename files,
and a renamed PDF must be refused as "not a spreadsheet", not crash a parser.

Limits (generous for a real pool of 100,000 codes, far below what hurts a server):
the file's size, the size of an XLSX unpacked, the rows that hold a value, the
columns of a row, the characters of a cell. XLSX is streamed (read-only mode) with
the sheet's declared dimensions ignored, so a small file that claims a million rows
by sixteen thousand columns costs nothing; CSV rows are read one at a time.
"""
from __future__ import annotations

import codecs
import csv
import io
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

from kiosk.domain.xlsx_shape import ShapeError, check_sheet, check_shared_strings

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound document

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # an XLSX's members, as the archive declares them
MAX_ROWS = 200_000
MAX_COLUMNS = 64
MAX_CELL_CHARS = 1_000
MAX_CELLS = 600_000  # 100,000 codes with their dates are 300,000
MAX_LINE_CHARS = MAX_COLUMNS * (MAX_CELL_CHARS + 3)
# The csv module keeps a field's characters until the field ends: a giant field must
# stop the reader, not fill the memory. Set once: the limit is the whole process's.
csv.field_size_limit(MAX_CELL_CHARS + 1)


@dataclass(frozen=True)
class Formula:
    """A cell that holds a formula: its value is not the file's own, so it is never
    read as a code, a card or a date."""

    text: str


Cell = str | int | float | date | datetime | bool | Formula | None


class SpreadsheetError(Exception):
    """The file cannot be read as a table. `kind` is 'not_spreadsheet',
    'unreadable', 'too_large', 'too_many_rows', 'too_many_columns' or
    'cell_too_long'; `details` say where and what the limit is."""

    def __init__(self, kind: str, detail: str = "", **details):
        super().__init__(detail or kind)
        self.kind = kind
        self.detail = detail
        self.details = details


@dataclass(frozen=True)
class Table:
    """Rows as the spreadsheet shows them; `rows[i]` is row number i + 1."""

    kind: str  # "xlsx", "xls" or "csv"
    rows: list[list[Cell]] = field(default_factory=list)


def read_table(data: bytes) -> Table:
    if len(data) > MAX_FILE_BYTES:
        raise SpreadsheetError("too_large", limit_mb=MAX_FILE_BYTES // (1024 * 1024))
    if data.startswith(XLSX_MAGIC):
        return Table("xlsx", _bounded(_xlsx_rows(data)))
    if data.startswith(XLS_MAGIC):
        return Table("xls", _bounded(_xls_rows(data)))
    return Table("csv", _bounded(_csv_rows(data)))


def _bounded(rows: Iterable[list[Cell]]) -> list[list[Cell]]:
    """The rows up to the last one with a value, each without its trailing empty
    cells; refuses a file past the limits as soon as it gets there."""
    kept: list[list[Cell]] = []
    blank = 0  # empty rows seen since the last kept one, added only if a value follows
    cells = 0
    for number, raw in enumerate(rows, start=1):
        row = list(raw)
        while row and (row[-1] is None or row[-1] == ""):
            row.pop()
        if not row:
            blank += 1
            continue
        if number > MAX_ROWS:
            raise SpreadsheetError("too_many_rows", limit=MAX_ROWS)
        if len(row) > MAX_COLUMNS:
            raise SpreadsheetError("too_many_columns", row=number, limit=MAX_COLUMNS)
        for cell in row:
            if isinstance(cell, str) and len(cell) > MAX_CELL_CHARS:
                raise SpreadsheetError("cell_too_long", row=number, limit=MAX_CELL_CHARS)
        cells += len(row)
        if cells > MAX_CELLS:
            raise SpreadsheetError("too_many_cells", limit=MAX_CELLS)
        if blank:
            kept.extend([] for _ in range(blank))
            blank = 0
        kept.append(row)
    return kept


def _xlsx_rows(data: bytes) -> Iterable[list[Cell]]:
    from openpyxl import load_workbook

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:
        raise SpreadsheetError("unreadable", str(exc)) from exc
    if "xl/workbook.xml" not in {member.filename for member in members}:
        raise SpreadsheetError("not_spreadsheet", "a ZIP archive, but not an Excel workbook")
    if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
        raise SpreadsheetError("too_large", limit_mb=MAX_FILE_BYTES // (1024 * 1024))
    try:
        check_shared_strings(archive, MAX_CELLS)
        # A formula comes as the value Excel last calculated; one that never was is
        # marked by the first pass, so it is refused rather than read as empty.
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        uncalculated = check_sheet(archive, sheet._worksheet_path, MAX_ROWS, MAX_COLUMNS, MAX_CELL_CHARS,
                                   MAX_CELLS)
    except ShapeError as exc:
        raise SpreadsheetError(exc.kind, **exc.details) from None
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise SpreadsheetError("unreadable", str(exc)) from exc
    formulas: dict[int, set[int]] = {}
    for row_number, column in uncalculated:
        formulas.setdefault(row_number, set()).add(column)
    try:
        sheet.reset_dimensions()  # never trust the sheet's own claim of its size
        for number, row in enumerate(sheet.iter_rows(), start=1):
            values = [cell.value for cell in row]
            for column in formulas.get(number, ()):
                if column <= len(values):
                    values[column - 1] = Formula("")
                else:
                    values += [None] * (column - 1 - len(values)) + [Formula("")]
            yield values
    except SpreadsheetError:
        raise
    except Exception as exc:
        raise SpreadsheetError("unreadable", str(exc)) from exc
    finally:
        book.close()


def _xls_rows(data: bytes) -> Iterable[list[Cell]]:
    import xlrd

    try:
        # Ragged rows: a row is only as long as its last cell, not the sheet's widest.
        book = xlrd.open_workbook(file_contents=data, on_demand=True, ragged_rows=True)
        sheet = book.sheet_by_index(0)
    except Exception as exc:
        raise SpreadsheetError("unreadable", str(exc)) from exc
    if sheet.nrows > MAX_ROWS:
        raise SpreadsheetError("too_many_rows", limit=MAX_ROWS)
    for index in range(sheet.nrows):
        row: list[Cell] = []
        for cell in sheet.row(index):
            if cell.ctype == xlrd.XL_CELL_DATE:
                row.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
            elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                row.append(None)
            else:
                row.append(cell.value)
        yield row


def _decode_text(data: bytes) -> str:
    # Excel's "Unicode text" is UTF-16 with a byte-order mark.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SpreadsheetError("not_spreadsheet", "not text in UTF-16") from None
    if b"\x00" in data[:4096]:
        raise SpreadsheetError("not_spreadsheet", "binary data")
    # UTF-8 first (with or without BOM); Polish Windows exports are often CP1250.
    for encoding in ("utf-8-sig", "cp1250"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text):
            return text
    raise SpreadsheetError("not_spreadsheet", "not text in UTF-8 or Windows-1250")


def _looks_like_text(text: str) -> bool:
    sample = text[:4096]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t")
    return control == 0


def _csv_rows(data: bytes) -> Iterable[list[Cell]]:
    text = _decode_text(data)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # one column, or too little to guess from
    # Lines from a split, not io.StringIO: StringIO keeps four bytes a character.
    lines = text.split("\n")
    # A line longer than any row of the limits (one giant row, no line breaks) is
    # refused before the csv module builds it.
    if max(map(len, lines)) > MAX_LINE_CHARS:
        row = next(number for number, line in enumerate(lines, start=1) if len(line) > MAX_LINE_CHARS)
        raise SpreadsheetError("too_many_columns", row=row, limit=MAX_COLUMNS)
    reader = csv.reader((line + "\n" for line in lines), dialect)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise SpreadsheetError("cell_too_long", row=reader.line_num, limit=MAX_CELL_CHARS) from None
            raise SpreadsheetError("unreadable", str(exc)) from exc
        yield row


def header_text(cell: Cell) -> str:
    """A header (or a yes/no cell) folded for matching: lower case, no accents."""
    if isinstance(cell, Formula):
        return ""
    # "ł" has no decomposition: without this, "Zadłużenie" would fold to "zaduzenie"
    # and never meet an export that writes "Zadluzenie".
    text = str(cell or "").replace("ł", "l").replace("Ł", "L")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(text.lower().replace(":", " ").split())


def cell_text(cell: Cell) -> str:
    """A cell as text; whole numbers Excel stored as floats lose the '.0'."""
    if type(cell) is str:  # most cells, every cell of a CSV: the quick way first
        return cell.strip()
    if cell is None or isinstance(cell, (date, datetime, bool, Formula)):
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()
