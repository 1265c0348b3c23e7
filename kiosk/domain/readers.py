"""Readers are known only by a keyed hash of their normalised card number."""
from __future__ import annotations

import hashlib
import hmac
import re

_SEPARATORS = re.compile(r"[\s\-]+")
# Codabar barcodes (common on library cards) start and end with A, B, C or D; a
# scanner set to send them would make "A12345678B" a reader other than "12345678".
_CODABAR = re.compile(r"[A-D](\d+)[A-D]")


def normalise_card(raw: str) -> str:
    """What a scanner or a person typed, as one canonical card number: trimmed,
    without spaces and dashes, upper-case, without Codabar start/stop letters."""
    card = _SEPARATORS.sub("", raw or "").upper()
    codabar = _CODABAR.fullmatch(card)
    return codabar.group(1) if codabar else card


def reader_key(pepper: str, normalised_card: str) -> str:
    """HMAC-SHA256 of the card number: the same reader always maps to the same key,
    and the key tells nothing about the card without the pepper."""
    return hmac.new(pepper.encode(), normalised_card.encode(), hashlib.sha256).hexdigest()
