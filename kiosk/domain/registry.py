"""The registry of valid cards, imported from the library system's export.

An export is a snapshot: an import replaces the library's whole registry, all or
nothing. Card numbers are stored only as reader keys. The file is read
(prepare_cards) before the transaction that stores it (import_cards) opens."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.cards import check_format
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.pool_files import ImportProblem, ImportRefused, date_in, refused_file, text_at
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.domain.spreadsheets import SpreadsheetError, cell_text, header_text, read_table
from kiosk.storage.models import CardRecord, Library

CARD_HEADERS = {"karta", "numer karty", "nr karty", "karta czytelnika", "card", "card number",
                "barcode", "kod kreskowy"}
EXPIRY_HEADERS = {"wazna do", "wazny do", "data waznosci", "waznosc", "expires", "expiry",
                  "valid until"}
BLOCKED_HEADERS = {"zablokowana", "blokada", "zablokowany", "blocked"}
TRUE_WORDS = {"1", "tak", "t", "x", "yes", "y", "true", "prawda"}


@dataclass(frozen=True)
class CardImportReport:
    library: str
    count: int
    blocked: int
    with_expiry: int


def _is_yes(cell) -> bool:
    # XLS gives numbers as floats (1.0) and XLSX may give booleans.
    if isinstance(cell, bool):
        return cell
    return header_text(cell_text(cell)) in TRUE_WORDS


def _columns(header: list) -> tuple[int | None, int | None, int | None]:
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        text = header_text(cell)
        for name, names in (("card", CARD_HEADERS), ("expiry", EXPIRY_HEADERS),
                            ("blocked", BLOCKED_HEADERS)):
            if text in names:
                found.setdefault(name, index)
    return found.get("card"), found.get("expiry"), found.get("blocked")


@dataclass(frozen=True)
class PreparedCards:
    records: list[dict]  # reader_key, expires_on, blocked

    @property
    def blocked(self) -> int:
        return sum(1 for r in self.records if r["blocked"])

    @property
    def with_expiry(self) -> int:
        return sum(1 for r in self.records if r["expires_on"])


def prepare_cards(data: bytes, *, card_pattern: str | None, check_digit: str | None, pepper: str) -> PreparedCards:
    """The registry file read and checked; raises ImportRefused."""
    try:
        rows = read_table(data).rows
    except SpreadsheetError as exc:
        raise refused_file(exc) from exc
    if not rows:
        raise ImportRefused(ImportProblem.EMPTY)
    card_col, expiry_col, blocked_col = _columns(rows[0])
    start = 1
    if card_col is None:
        if any(header_text(cell) for cell in rows[0][1:]):
            raise ImportRefused(ImportProblem.NO_CARD_COLUMN)
        card_col, start = 0, 0  # one column and no header: a plain list of cards

    records: dict[str, dict] = {}
    first_row: dict[str, int] = {}
    for index in range(start, len(rows)):
        row, number = rows[index], index + 1
        raw = text_at(row, card_col, number)
        if not raw:
            continue
        card = normalise_card(raw)
        if check_format(card, card_pattern, check_digit) is not None:
            raise ImportRefused(ImportProblem.BAD_CARD, row=number, value=raw[:40])
        if card in first_row:
            raise ImportRefused(ImportProblem.DUPLICATE_CARD, row=number, first_row=first_row[card])
        first_row[card] = number
        # Expiry dates may be long past or "never" (9999-12-31): only compared with today.
        expires: date | None = date_in(row, expiry_col, number, any_year=True)
        blocked = blocked_col is not None and blocked_col < len(row) and _is_yes(row[blocked_col])
        records[card] = {"reader_key": reader_key(pepper, card), "expires_on": expires, "blocked": blocked}
    if not records:
        raise ImportRefused(ImportProblem.EMPTY)
    return PreparedCards(list(records.values()))


def import_cards(session: Session, *, library_id: int, prepared: PreparedCards, actor: Actor,
                 now: datetime) -> CardImportReport:
    """Replace the library's registry with the prepared one (inside a unit of work)."""
    library = session.get(Library, library_id)
    session.execute(delete(CardRecord).where(CardRecord.library_id == library.id))
    session.execute(insert(CardRecord), [{"library_id": library.id, **record} for record in prepared.records])
    report = CardImportReport(library=library.slug, count=len(prepared.records), blocked=prepared.blocked,
                              with_expiry=prepared.with_expiry)
    record_event(session, kind=EventKind.IMPORT_CARDS, actor=actor, library_id=library.id, now=now,
                 count=report.count, blocked=report.blocked)
    return report
