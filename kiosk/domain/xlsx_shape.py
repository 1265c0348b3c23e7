"""A first, cheap pass over an XLSX's own XML, before openpyxl reads it.

openpyxl trusts a sheet: it loads every shared string, builds a whole row before
anyone can look at it, and walks every row number up to the last one the sheet
names. A few kilobytes can say "row 999,999,999,999" or "one row of seven million
cells". This pass streams the XML element by element, keeping almost nothing, and
refuses such a file before openpyxl sees it. It also notes the formulas that have
no calculated value, which must not be read as empty cells.
"""
from __future__ import annotations

import re
import zipfile
from xml.etree.ElementTree import iterparse

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
EXCEL_ROWS = 1_048_576
MAX_COLUMN_INDEX = 256  # column IV: a panel export has a handful of columns
MAX_SHARED_CHARS = 16_000_000
_REFERENCE = re.compile(r"([A-Z]{1,3})(\d+)")


class ShapeError(Exception):
    def __init__(self, kind: str, **details):
        super().__init__(kind)
        self.kind = kind
        self.details = details


def column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    return index


def check_shared_strings(archive: zipfile.ZipFile, max_cells: int) -> None:
    if "xl/sharedStrings.xml" not in archive.namelist():
        return
    count = chars = 0
    root = None
    for event, element in iterparse(archive.open("xl/sharedStrings.xml"), events=("start", "end")):
        if event == "start":
            root = root if root is not None else element
            continue
        if element.tag == NS + "t":
            chars += len(element.text or "")
        elif element.tag == NS + "si":
            count += 1
            root.remove(element)  # keep nothing of the strings already counted
        if count > max_cells or chars > MAX_SHARED_CHARS:
            raise ShapeError("too_many_cells", limit=max_cells)


def check_sheet(archive: zipfile.ZipFile, path: str, max_rows: int, max_columns: int,
                max_cell_chars: int, max_cells: int) -> set[tuple[int, int]]:
    """Refuses a sheet past the limits; the (row, column) of every formula without a
    calculated value."""
    uncalculated: set[tuple[int, int]] = set()
    row_number = column = cells = 0
    has_value = False
    sheet_data = None
    for event, element in iterparse(archive.open(path.lstrip("/")), events=("start", "end")):
        tag = element.tag
        if event == "start":
            if tag == NS + "sheetData":
                sheet_data = element
            elif tag == NS + "row":
                row_number = int(element.get("r") or row_number + 1)
                column, has_value = 0, False
                if row_number > EXCEL_ROWS:
                    raise ShapeError("too_many_rows", limit=max_rows)
            continue
        if tag == NS + "c":
            found = _REFERENCE.fullmatch(element.get("r") or "")
            column = column_index(found.group(1)) if found else column + 1
            cells += 1
            if column > MAX_COLUMN_INDEX:
                raise ShapeError("too_many_columns", row=row_number, limit=max_columns)
            if cells > max_cells:
                raise ShapeError("too_many_cells", limit=max_cells)
            value = element.find(NS + "v")
            inline = element.find(NS + "is")
            if (value is not None and value.text) or inline is not None:
                has_value = True
                text = value.text if value is not None else "".join(inline.itertext())
                if text and len(text) > max_cell_chars:
                    raise ShapeError("cell_too_long", row=row_number, limit=max_cell_chars)
            if element.find(NS + "f") is not None and not (value is not None and value.text):
                uncalculated.add((row_number, column))
            element.clear()
        elif tag == NS + "row":
            if has_value and row_number > max_rows:
                raise ShapeError("too_many_rows", limit=max_rows)
            if sheet_data is not None:
                sheet_data.remove(element)  # keep nothing of the rows already seen
    return uncalculated
