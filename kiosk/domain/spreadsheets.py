"""Reading the first sheet of an XLSX, XLS or CSV file into rows of cell values.

The kind of file is told by its first bytes, not by its name: staff rename files,
and a renamed PDF must be refused as "not a spreadsheet", not crash a parser.
"""
from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date, datetime

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound document

Cell = str | int | float | date | datetime | bool | None


class SpreadsheetError(Exception):
    """The file cannot be read as a table. `kind` is 'not_spreadsheet' or 'unreadable'."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(detail or kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Table:
    """Rows as the spreadsheet shows them; `rows[i]` is row number i + 1."""

    kind: str  # "xlsx", "xls" or "csv"
    rows: list[list[Cell]]


def read_table(data: bytes) -> Table:
    if data.startswith(XLSX_MAGIC):
        return Table("xlsx", _read_xlsx(data))
    if data.startswith(XLS_MAGIC):
        return Table("xls", _read_xls(data))
    return Table("csv", _read_csv(data))


def _read_xlsx(data: bytes) -> list[list[Cell]]:
    from openpyxl import load_workbook

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if "xl/workbook.xml" not in archive.namelist():
            raise SpreadsheetError("not_spreadsheet", "a ZIP archive, but not an Excel workbook")
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SpreadsheetError:
        raise
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise SpreadsheetError("unreadable", str(exc)) from exc
    try:
        sheet = book.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    except Exception as exc:
        raise SpreadsheetError("unreadable", str(exc)) from exc
    finally:
        book.close()


def _read_xls(data: bytes) -> list[list[Cell]]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data)
        sheet = book.sheet_by_index(0)
    except Exception as exc:
        raise SpreadsheetError("unreadable", str(exc)) from exc
    rows = []
    for index in range(sheet.nrows):
        row: list[Cell] = []
        for cell in sheet.row(index):
            if cell.ctype == xlrd.XL_CELL_DATE:
                row.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
            elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                row.append(None)
            else:
                row.append(cell.value)
        rows.append(row)
    return rows


def _decode_text(data: bytes) -> str:
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


def _read_csv(data: bytes) -> list[list[Cell]]:
    text = _decode_text(data)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # one column, or too little to guess from
    try:
        return [list(row) for row in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as exc:
        raise SpreadsheetError("unreadable", str(exc)) from exc


def header_text(cell: Cell) -> str:
    """A header (or a yes/no cell) folded for matching: lower case, no accents."""
    text = unicodedata.normalize("NFKD", str(cell or "")).encode("ascii", "ignore").decode()
    return " ".join(text.lower().replace(":", " ").split())


def cell_text(cell: Cell) -> str:
    """A cell as text; whole numbers Excel stored as floats lose the '.0'."""
    if cell is None or isinstance(cell, (date, datetime, bool)):
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()
