"""Card checks, chosen per library: the card's format (a pattern and an optional
check digit) and, optionally, the registry of valid cards exported by the ILS."""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import re2

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from kiosk.domain.eligibility import ReaderFacts
from kiosk.storage.models import CardCheckKind, CardRecord, Library
from kiosk.domain.readers import normalise_card, reader_key

log = logging.getLogger("kiosk.cards")

# Letters and digits, 4 to 32 of them: lets any real card through, stops garbage.
DEFAULT_CARD_PATTERN = r"[A-Z0-9]{4,32}"


class CardRefusal(enum.StrEnum):
    """Why a card is refused; each has a reader-facing text in kiosk.wording.messages."""

    EMPTY = "empty"
    FORMAT = "format"
    CHECK_DIGIT = "check_digit"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    BLOCKED = "blocked"
    WRONG_PIN = "wrong_pin"  # the card or the PIN is not right (never said which: no probing)
    ILS_UNAVAILABLE = "ils_unavailable"  # the library system did not answer


def luhn_ok(number: str) -> bool:
    if not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def ean_ok(number: str) -> bool:
    """GS1 check digit (EAN-8/13, weights 3 and 1), common on barcoded cards."""
    if not number.isdigit() or len(number) < 2:
        return False
    body, check = number[:-1], int(number[-1])
    weighted = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - weighted % 10) % 10 == check


CHECK_DIGITS = {"luhn": luhn_ok, "ean": ean_ok}
MAX_CARD = 64  # longer than any library card; the form fields stop there too


class BadPattern(ValueError):
    pass


def _quiet() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    return options


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _nested_repeat(items, inside: bool = False) -> bool:
    """An unbounded repetition inside an unbounded one, such as (\\d+)+: harmless in
    RE2, the classic catastrophic backtracking elsewhere, and never needed for a card
    number. Bounded ones, as in \\d{8}(?:\\d{5})? or (?:\\d{4}){2}, are fine."""
    from re._constants import MAXREPEAT

    for op, value in items:
        name = str(op)
        if name in _REPEATS:
            unbounded = value[1] is MAXREPEAT or value[1] == MAXREPEAT
            if unbounded and inside:
                return True
            if _nested_repeat(value[2], inside=inside or unbounded):
                return True
        elif name == "SUBPATTERN":
            if _nested_repeat(value[-1], inside):
                return True
        elif name == "BRANCH":
            if any(_nested_repeat(branch, inside) for branch in value[1]):
                return True
    return False


def check_card_pattern(pattern: str) -> None:
    """Raises BadPattern for a pattern an admin may not save: one RE2 cannot run,
    or one with nested repetition."""
    import re._parser as sre_parse

    compile_card_pattern(pattern)
    try:
        parsed = sre_parse.parse(pattern)
    except Exception as exc:  # noqa: BLE001 - RE2 syntax Python does not share
        raise BadPattern(str(exc)) from None
    if _nested_repeat(list(parsed)):
        raise BadPattern("nested repetition")


@lru_cache(maxsize=256)
def compile_card_pattern(pattern: str):
    """A library's card pattern in RE2: matching takes time linear in the card's
    length whatever the pattern, so no pattern an admin saves (nested repetition
    and the like) can make a kiosk wait. Backreferences and lookarounds, which RE2
    lacks, are refused."""
    try:
        return re2.compile(pattern, _quiet())
    except re2.error as exc:
        raise BadPattern(str(exc)) from None


@dataclass(frozen=True)
class CardVerdict:
    card: str  # normalised
    refusal: CardRefusal | None = None

    @property
    def accepted(self) -> bool:
        return self.refusal is None


def check_format(card: str, pattern: str | None, check_digit: str | None) -> CardRefusal | None:
    if not card:
        return CardRefusal.EMPTY
    if len(card) > MAX_CARD or not card.isascii() or not card.isprintable():
        return CardRefusal.FORMAT
    try:
        matched = compile_card_pattern(pattern or DEFAULT_CARD_PATTERN).fullmatch(card)
    except BadPattern:
        matched = None  # a pattern saved before it was checked: refuse rather than guess
    if not matched:
        return CardRefusal.FORMAT
    if check_digit and not CHECK_DIGITS[check_digit](card):
        return CardRefusal.CHECK_DIGIT
    return None


_CARD_RECORD = select(CardRecord.expires_on, CardRecord.blocked, CardRecord.birth_date, CardRecord.last_loan,
                      CardRecord.debt_grosze, CardRecord.email).where(CardRecord.library_id == bindparam("library_id"),
                                                    CardRecord.reader_key == bindparam("key"))


def card_record(session: Session, library_id: int, key: str):
    """The card register's row for a reader (its expiry, block and facts), or None."""
    return session.connection().execute(_CARD_RECORD, {"library_id": library_id, "key": key}).first()


def registry_refusal(record, today: date) -> CardRefusal | None:
    if record is None:
        return CardRefusal.UNKNOWN
    if record.blocked:
        return CardRefusal.BLOCKED
    if record.expires_on is not None and record.expires_on < today:
        return CardRefusal.EXPIRED
    return None


@dataclass(frozen=True)
class CardAnswer:
    """What the library system said of a card over SIP2 (kiosk.domain.library_system),
    asked before the issuing transaction opens."""

    refusal: CardRefusal | None = None
    facts: ReaderFacts = ReaderFacts()
    said: dict = field(default_factory=dict)  # for the admin's check: valid, blocked, expiry, debt, birth date
    ms: float | None = None
    pin_checked: bool = False
    fallback: bool = False  # no answer: the imported card register decides
    email: str | None = None  # the reader's address, where the system gave one (BE)


_UNREAD = object()


def check_card(session: Session, library: Library, raw_card: str, pepper: str, today: date,
               answer: CardAnswer | None = None, record=_UNREAD) -> CardVerdict:
    """Normalise the card and run the library's checks: format always, then the
    registry where the library keeps one, or the library system's answer. A
    caller that has read the card's register row already passes it as `record`."""
    card = normalise_card(raw_card)

    def from_register() -> CardRefusal | None:
        found = card_record(session, library.id, reader_key(pepper, card)) if record is _UNREAD else record
        return registry_refusal(found, today)

    refusal = check_format(card, library.card_pattern, library.card_check_digit)
    if refusal is None and library.card_check == CardCheckKind.SIP2:
        if answer is None:
            # The library switched to SIP2 a moment ago, after this channel looked: refuse
            # for now (the next scan asks), never let the card through unasked.
            log.warning("library %s checks cards over SIP2, but this card was not asked about", library.slug)
            return CardVerdict(card=card, refusal=CardRefusal.ILS_UNAVAILABLE)
        refusal = answer.refusal
        if answer.fallback:
            refusal = from_register()
    elif refusal is None and library.card_check == CardCheckKind.REGISTRY:
        refusal = from_register()
    return CardVerdict(card=card, refusal=refusal)
