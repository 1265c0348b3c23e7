"""Which codes readers activated, from the list a platform's panel gives: read
(prepare_activations) before the transaction that marks them (import_activations)
opens, with the same limits as a pool file.

The list names activated codes, with the day of activation or without. A listed
code of this library's pools of that platform is marked; any other counts as not
found, made up or another library's alike, so an admin never learns what another
library holds. Importing the same list again marks nothing new."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.clock import local_day
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.pool_files import (ImportProblem, ImportRefused, date_in, find_code_column, looks_like_code,
                                     read_spreadsheet, text_at)
from kiosk.domain.spreadsheets import Cell, cell_text, header_text
from kiosk.storage.bulk import listed, update_rows
from kiosk.storage.models import ActivationImport, Code, Library, Platform

DATE_HEADERS = {header_text(name) for name in (
    "Data aktywacji", "Aktywowano", "Aktywowany", "Data aktywowania", "Data wykorzystania", "Wykorzystano",
    "activated", "activated at", "activated on", "activation date", "date activated")}
NOT_FOUND_SHOWN = 5  # codes not found named to the admin, to check the file by


@dataclass(frozen=True)
class PreparedActivations:
    activated: dict[str, date | None]  # code -> the day it was activated on, where the list says
    skipped: int  # codes listed with a blank activation day: not activated (yet)
    code_column: str
    date_column: str | None  # None: every listed code counts as activated


@dataclass(frozen=True)
class ActivationReport:
    library: str
    platform: str
    platform_name: str
    filename: str
    as_of: date
    marked: int  # marked now
    already: int  # marked by an earlier import
    not_found: int  # not in this library's pools of the platform
    skipped: int
    code_column: str
    date_column: str | None
    not_found_sample: list[str] = field(default_factory=list)


def _date_column(header_row: list[Cell]) -> tuple[int, str] | None:
    for index, cell in enumerate(header_row):
        if header_text(cell) in DATE_HEADERS:
            return index, cell_text(cell)
    return None


def prepare_activations(data: bytes) -> PreparedActivations:
    """The platform's list read and checked; raises ImportRefused."""
    rows = read_spreadsheet(data).rows
    found = find_code_column(rows)
    dates = _date_column(rows[found.header_row]) if found.header_row is not None else None
    activated: dict[str, date | None] = {}
    blank: set[str] = set()
    for index in range(found.start, len(rows)):
        row, number = rows[index], index + 1
        code = text_at(row, found.column, number)
        if not code:
            continue
        if not looks_like_code(code):
            raise ImportRefused(ImportProblem.BAD_CODE, row=number, value=code[:80])
        day = date_in(row, dates[0], number) if dates else None
        if dates and day is None:
            blank.add(code)
            continue
        # Listed twice: the first day it was activated on.
        earlier = activated.get(code)
        activated[code] = min(earlier, day) if earlier and day else earlier or day
    if not activated and not blank:
        raise ImportRefused(ImportProblem.EMPTY)
    return PreparedActivations(activated=activated, skipped=len(blank - activated.keys()),
                               code_column=found.name, date_column=dates[1] if dates else None)


def _ours(session: Session, library: Library, platform: Platform,
          listed_codes: list[str]) -> dict[str, tuple[int, bool, bool]]:
    """The listed codes of the library's pools of the platform: code -> (its id,
    marked before, with a day). One query for the whole list, each code looked up in
    the unique index (kiosk.domain.pools finds codes already stored the same way)."""
    source, params = listed(session, "listed", listed_codes)
    found = session.execute(text(
        "SELECT listed.key, codes.id, codes.activation_marked_at IS NOT NULL, codes.activated_on IS NOT NULL "
        f"FROM {source} CROSS JOIN codes JOIN pools ON pools.id = codes.pool_id "
        "WHERE codes.platform_id = :platform AND codes.value = listed.value AND pools.library_id = :library"),
        {**params, "platform": platform.id, "library": library.id})
    return {listed_codes[key]: (code_id, bool(marked), bool(dated)) for key, code_id, marked, dated in found}


def import_activations(session: Session, *, library_id: int, platform_id: int, prepared: PreparedActivations,
                       filename: str, actor: Actor, now: datetime) -> ActivationReport:
    """Mark the listed codes of the library's pools of the platform as activated
    (inside a unit of work); raises ImportRefused when none of them is the library's."""
    # One import per library at a time (as pools do): the counts stay true.
    # FOR NO KEY UPDATE: other imports wait, but not the kiosks, whose inserts need a
    # key-share lock on the library row for their foreign keys.
    library = session.scalar(select(Library).where(Library.id == library_id).with_for_update(key_share=True))
    platform = session.get(Platform, platform_id)
    ours = _ours(session, library, platform, list(prepared.activated))
    if prepared.activated and not ours:
        # A wrong file, platform or library: marking nothing would still say "nothing was activated".
        raise ImportRefused(ImportProblem.NONE_OF_LIBRARY, platform=platform.name)

    marked_now, days_now = [], []  # (id, marked at, day); (id, day): an earlier list had no days
    for value, (code_id, marked, dated) in ours.items():
        day = prepared.activated[value]
        if not marked:
            marked_now.append((code_id, now, day))
        elif not dated and day is not None:
            days_now.append((code_id, day))
    # In bulk: 100,000 codes through the ORM held the write lock for seconds.
    update_rows(session, Code.__table__, ("activation_marked_at", "activated_on"), marked_now)
    update_rows(session, Code.__table__, ("activated_on",), days_now)
    marked, already = len(marked_now), len(ours) - len(marked_now)

    as_of = local_day(now, library.timezone)
    not_found = [value for value in prepared.activated if value not in ours]
    session.add(ActivationImport(library_id=library.id, platform_id=platform.id, as_of=as_of, marked=marked,
                                 source_filename=filename, imported_by=actor.label, imported_at=now))
    report = ActivationReport(library=library.slug, platform=platform.slug, platform_name=platform.name,
                              filename=filename, as_of=as_of, marked=marked, already=already,
                              not_found=len(not_found), skipped=prepared.skipped, code_column=prepared.code_column,
                              date_column=prepared.date_column, not_found_sample=not_found[:NOT_FOUND_SHOWN])
    record_event(session, kind=EventKind.IMPORT_ACTIVATIONS, actor=actor, library_id=library.id, now=now,
                 platform=platform.slug, filename=filename, as_of=as_of, marked=marked, already=already,
                 not_found=len(not_found), skipped=prepared.skipped)
    return report


@dataclass(frozen=True)
class ActivationImportRow:
    as_of: date
    platform: str  # its name
    marked: int
    filename: str
    imported_by: str
    imported_at: datetime


def recent_activation_imports(session: Session, library_id: int, limit: int = 10) -> list[ActivationImportRow]:
    """The library's latest activation imports, newest first."""
    rows = session.execute(
        select(ActivationImport, Platform.name)
        .join(Platform, ActivationImport.platform_id == Platform.id)
        .where(ActivationImport.library_id == library_id)
        .order_by(ActivationImport.imported_at.desc(), ActivationImport.id.desc())
        .limit(limit))
    return [ActivationImportRow(as_of=row.as_of, platform=name, marked=row.marked, filename=row.source_filename,
                                imported_by=row.imported_by, imported_at=row.imported_at) for row, name in rows]
