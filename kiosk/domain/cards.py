"""Card checks, chosen per library: the card's format (a pattern and an optional
check digit) and, optionally, the registry of valid cards exported by the ILS."""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.storage.models import CardCheckKind, CardRecord, Library
from kiosk.domain.readers import normalise_card, reader_key

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
    if not re.fullmatch(pattern or DEFAULT_CARD_PATTERN, card):
        return CardRefusal.FORMAT
    if check_digit and not CHECK_DIGITS[check_digit](card):
        return CardRefusal.CHECK_DIGIT
    return None


def check_registry(session: Session, library_id: int, key: str, today: date) -> CardRefusal | None:
    record = session.scalar(
        select(CardRecord).where(CardRecord.library_id == library_id, CardRecord.reader_key == key)
    )
    if record is None:
        return CardRefusal.UNKNOWN
    if record.blocked:
        return CardRefusal.BLOCKED
    if record.expires_on is not None and record.expires_on < today:
        return CardRefusal.EXPIRED
    return None


def check_card(session: Session, library: Library, raw_card: str, pepper: str, today: date) -> CardVerdict:
    """Normalise the card and run the library's checks: format always, then the
    registry where the library keeps one."""
    card = normalise_card(raw_card)
    refusal = check_format(card, library.card_pattern, library.card_check_digit)
    if refusal is None and library.card_check == CardCheckKind.REGISTRY:
        refusal = check_registry(session, library.id, reader_key(pepper, card), today)
    return CardVerdict(card=card, refusal=refusal)
