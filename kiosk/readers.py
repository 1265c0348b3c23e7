"""Readers are known only by a keyed hash of their normalised card number."""
from __future__ import annotations

import hashlib
import hmac
import re

_SEPARATORS = re.compile(r"[\s\-]+")


def normalise_card(raw: str) -> str:
    """What a scanner or a person typed, as one canonical card number:
    trimmed, without spaces and dashes, upper-case."""
    return _SEPARATORS.sub("", raw or "").upper()


def reader_key(pepper: str, normalised_card: str) -> str:
    """HMAC-SHA256 of the card number: the same reader always maps to the same key,
    and the key tells nothing about the card without the pepper."""
    return hmac.new(pepper.encode(), normalised_card.encode(), hashlib.sha256).hexdigest()
