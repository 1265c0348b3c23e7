"""An e-mail address as a page may show it to whoever typed a card number:
"a•••@w•••.pl", enough for the reader to know it is their own address and too
little for anyone else to learn it."""
from __future__ import annotations

import unicodedata

MASK = "•••"


def masked_address(address: str | None) -> str:
    """The local part's first letter, the domain's first label's first letter and
    the domain's last label: "anna.kowalska@wp.pl" → "a•••@w•••.pl",
    "jan@poczta.onet.pl" → "j•••@p•••.pl". Always three dots, whatever the
    lengths; an IDN domain in its own letters ("xn--d-uga0v4h.pl", łódź.pl, → "ł•••.pl")."""
    text = unicodedata.normalize("NFC", (address or "").strip())
    local, at, domain = text.rpartition("@")
    local = local.strip('"')
    labels = [_readable(label) for label in domain.strip(".").split(".") if label]
    if not at or not local or not labels:
        return MASK
    shown = f"{labels[0][0]}{MASK}" + (f".{labels[-1]}" if len(labels) > 1 else "")
    return f"{local[0]}{MASK}@{shown}"


def _readable(label: str) -> str:
    """A domain label in lower case, an IDN one ("xn--…") in its own letters."""
    label = label.lower()
    if label.startswith("xn--"):
        try:
            return label.encode("ascii").decode("idna")
        except UnicodeError:
            return label
    return label
