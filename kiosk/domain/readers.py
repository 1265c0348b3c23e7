"""Readers are known only by a keyed hash of their normalised card number."""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-]+")
# Codabar barcodes (common on library cards) start and end with A, B, C or D; a
# scanner set to send them would make "A12345678B" a reader other than "12345678".
_CODABAR = re.compile(r"[A-D](\d+)[A-D]")


def _ascii_digits(text: str) -> str:
    """Every Unicode decimal digit (Arabic-Indic ٣, Devanagari ३, full-width ３, …)
    as its ASCII digit, so one card typed in any script is one reader."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def normalise_card(raw: str) -> str:
    """What a scanner or a person typed, as one canonical card number: digits of any
    script and full-width letters as ASCII (NFKC), trimmed, without spaces and
    dashes, upper-case, without Codabar start/stop letters. Anything left that is
    not ASCII makes the card refused by its format check."""
    raw = raw or ""
    if not raw.isascii():  # ASCII is its own NFKC form, its digits already ASCII
        raw = unicodedata.normalize("NFKC", _ascii_digits(raw))
    card = _SEPARATORS.sub("", raw).upper()
    codabar = _CODABAR.fullmatch(card)
    return codabar.group(1) if codabar else card


def reader_key(pepper: str, normalised_card: str) -> str:
    """HMAC-SHA256 of the card number: the same reader always maps to the same key,
    and the key tells nothing about the card without the pepper."""
    return hmac.new(pepper.encode(), normalised_card.encode(), hashlib.sha256).hexdigest()


# An address as a library system holds it: one @, a dot in the domain, nothing blank.
_EMAIL_SHAPE = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def email_or_none(text: str | None) -> str | None:
    """A reader's e-mail address from the register or the library system, or None
    for a blank or one that is no address (a phone number in the wrong column)."""
    text = (text or "").strip()
    return text if len(text) <= 254 and _EMAIL_SHAPE.fullmatch(text) else None
