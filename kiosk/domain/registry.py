"""The registry of valid cards, imported from the library system's export.

An export is a snapshot: an import replaces the library's whole registry, all or
nothing. Card numbers are stored only as reader keys. The file is read
(prepare_cards) before the transaction that stores it (import_cards) opens.

Besides the card, its expiry and its block, an export may give reader facts for
the library's rules: the birth date, the last loan's date and the debt. The
library remembers which of them its last import gave (Library.register_facts), so
a rule can tell "no debt" from "the register says nothing of debts"."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import delete
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.cards import check_format
from kiosk.domain.eligibility import Fact
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.pool_files import ImportProblem, ImportRefused, date_in, formula_at, refused_file, text_at
from kiosk.domain.readers import email_or_none, normalise_card, reader_key
from kiosk.domain.spreadsheets import Cell, SpreadsheetError, cell_text, header_text, read_table
from kiosk.storage.bulk import insert_rows
from kiosk.storage.models import CardRecord, Library

CARD_HEADERS = {"karta", "numer karty", "nr karty", "karta czytelnika", "card", "card number",
                "barcode", "kod kreskowy"}
EXPIRY_HEADERS = {"wazna do", "wazny do", "data waznosci", "waznosc", "expires", "expiry",
                  "valid until"}
BLOCKED_HEADERS = {"zablokowana", "blokada", "zablokowany", "blocked"}
# Where the online form mails a reader's code (kiosk.domain.online).
EMAIL_HEADERS = {header_text(name) for name in ("E-mail", "Email", "Adres e-mail", "Adres email", "Mail",
                                                  "E-mail address", "Email address")}
TRUE_WORDS = {"1", "tak", "t", "x", "yes", "y", "true", "prawda"}
# The reader facts, in the order Library.register_facts names them.
# The facts the rules read (kiosk.domain.eligibility.Fact) that a register can give.
FACTS = (Fact.BIRTH_DATE.value, Fact.LAST_LOAN.value, Fact.DEBT.value)
# Written as people write them and folded as header_text folds a header ("ł" goes:
# "Zadłużenie" is "zaduzenie").
FACT_HEADERS = {fact: {header_text(name) for name in names} for fact, names in {
    "birth_date": ("Data urodzenia", "Data ur.", "Urodzony", "Urodzona", "Urodzony(a)", "birth_date",
                   "Birth date", "Date of birth", "Birthdate"),
    "last_loan": ("Ostatnie wypożyczenie", "Data ostatniego wypożyczenia", "Ostatnie wypożyczenie (data)",
                  "last_loan", "Last loan", "Last loan date", "Last checkout"),
    # Not "Saldo" or "Balance": a balance may be negative for a debt, positive for a credit.
    "debt": ("Zadłużenie", "Zadłużenie (zł)", "Zadłużenie zł", "Zadłużenie w zł", "Dług", "Należności",
             "Należność", "debt", "Debt (PLN)", "Fines", "Amount owed"),
}.items()}
# Złoty, with at most two places after a comma or a dot: "12,50", "12.5", "0".
AMOUNT = re.compile(r"(\d{1,9})(?:[.,](\d{1,2}))?")
MAX_DEBT_GROSZE = 100_000_000  # a million złoty: more is a wrong column (and past what the database holds)


@dataclass(frozen=True)
class CardImportReport:
    library: str
    count: int
    blocked: int
    with_expiry: int
    facts: tuple[str, ...] = ()  # the reader facts the file gave, of FACTS


def _is_yes(cell) -> bool:
    # XLS gives numbers as floats (1.0) and XLSX may give booleans.
    if isinstance(cell, bool):
        return cell
    if cell is None or cell == "":  # most readers: not blocked, no folding needed
        return False
    return header_text(cell_text(cell)) in TRUE_WORDS


def _columns(header: list) -> dict[str, int]:
    """Column index by name: card, expiry, blocked and the facts the header has."""
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        text = header_text(cell)
        for name, names in (("card", CARD_HEADERS), ("expiry", EXPIRY_HEADERS), ("blocked", BLOCKED_HEADERS),
                            ("email", EMAIL_HEADERS), *FACT_HEADERS.items()):
            if text in names:
                found.setdefault(name, index)
    return found


def debt_in(row: list[Cell], column: int | None, row_number: int) -> int | None:
    """A debt in złoty as grosze: None without a debt column, 0 for a blank cell.
    A negative amount or anything but an amount is refused with its row."""
    formula_at(row, column, row_number)
    if column is None:
        return None
    cell = row[column] if column < len(row) else None
    if cell is None or cell == "":
        return 0
    shown = str(cell).strip()[:40]
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        # A number cell of XLSX or XLS: a float, rounded to the grosz (0.1 + 0.2 is 0.30000000000000004).
        if not math.isfinite(cell) or abs(cell) * 100 > MAX_DEBT_GROSZE:
            raise ImportRefused(ImportProblem.BAD_DEBT, row=row_number, value=shown)
        amount = Decimal(str(cell)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        negative, grosze = amount < 0, int(abs(amount) * 100)
    elif isinstance(cell, str):
        text = "".join(cell.lower().split()).removesuffix("zł").removesuffix("zl").removesuffix("pln")
        negative = text.startswith(("-", "\u2212"))
        match = AMOUNT.fullmatch(text.lstrip("-\u2212") if negative else text)
        if match is None:
            raise ImportRefused(ImportProblem.BAD_DEBT, row=row_number, value=shown)
        grosze = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
    else:  # a date, a yes/no
        raise ImportRefused(ImportProblem.BAD_DEBT, row=row_number, value=shown)
    if negative and grosze:
        raise ImportRefused(ImportProblem.NEGATIVE_DEBT, row=row_number, value=shown)
    if grosze > MAX_DEBT_GROSZE:
        raise ImportRefused(ImportProblem.BAD_DEBT, row=row_number, value=shown)
    return grosze


# What a prepared record holds: the columns of card_records besides the library.
RECORD_FIELDS = ("reader_key", "expires_on", "blocked", "birth_date", "last_loan", "debt_grosze", "email")


@dataclass(frozen=True)
class PreparedCards:
    records: list[dict]  # RECORD_FIELDS
    facts: tuple[str, ...] = ()  # the reader facts the file has columns for, of FACTS

    @property
    def blocked(self) -> int:
        return sum(1 for r in self.records if r["blocked"])

    @property
    def with_expiry(self) -> int:
        return sum(1 for r in self.records if r["expires_on"])

    @property
    def with_email(self) -> int:
        return sum(1 for r in self.records if r["email"])


def email_in(row: list, column: int | None) -> str | None:
    """The reader's e-mail address, or None (kiosk.domain.readers.email_or_none)."""
    return None if column is None or column >= len(row) else email_or_none(cell_text(row[column]))


def _past_date(row: list, column: int | None, number: int) -> date | None:
    """A birth date: any past year (not only the sane ones), never in the future."""
    day = date_in(row, column, number, any_year=True)
    if day is not None and not date(1900, 1, 1) <= day <= date.today():
        raise ImportRefused(ImportProblem.BAD_DATE, row=number, value=str(row[column]))
    return day


def prepare_cards(data: bytes, *, card_pattern: str | None, check_digit: str | None, pepper: str) -> PreparedCards:
    """The registry file read and checked; raises ImportRefused."""
    try:
        rows = read_table(data).rows
    except SpreadsheetError as exc:
        raise refused_file(exc) from exc
    if not rows:
        raise ImportRefused(ImportProblem.EMPTY)
    columns = _columns(rows[0])
    card_col, expiry_col, blocked_col = columns.get("card"), columns.get("expiry"), columns.get("blocked")
    email_col = columns.get("email")
    birth_col, loan_col, debt_col = (columns.get(fact) for fact in FACTS)
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
        records[card] = {
            "reader_key": reader_key(pepper, card), "expires_on": expires, "blocked": blocked,
            # Birth dates are long past; a blank last loan is a reader who never borrowed.
            "birth_date": _past_date(row, birth_col, number),
            "last_loan": date_in(row, loan_col, number, any_year=True),
            "debt_grosze": debt_in(row, debt_col, number),
            "email": email_in(row, email_col),
        }
    if not records:
        raise ImportRefused(ImportProblem.EMPTY)
    return PreparedCards(list(records.values()), facts=tuple(fact for fact in FACTS if fact in columns))


def import_cards(session: Session, *, library_id: int, prepared: PreparedCards, actor: Actor,
                 now: datetime) -> CardImportReport:
    """Replace the library's registry with the prepared one (inside a unit of work)."""
    library = session.get(Library, library_id)
    session.execute(delete(CardRecord).where(CardRecord.library_id == library.id))
    # In bulk: 100,000 cards through the ORM held the write lock for seconds.
    insert_rows(session, CardRecord.__table__, ("library_id", *RECORD_FIELDS),
                ((library.id, *(record[name] for name in RECORD_FIELDS)) for record in prepared.records))
    # What the rules may rely on: only the facts of this import, never an earlier one's.
    library.register_facts = ",".join(prepared.facts) or None
    report = CardImportReport(library=library.slug, count=len(prepared.records), blocked=prepared.blocked,
                              with_expiry=prepared.with_expiry, facts=prepared.facts)
    record_event(session, kind=EventKind.IMPORT_CARDS, actor=actor, library_id=library.id, now=now,
                 count=report.count, blocked=report.blocked, facts=list(report.facts),
                 with_email=prepared.with_email)
    return report
