"""The slip model: everything a printed or on-screen slip shows, already in the
reader's language, so every renderer draws the same thing."""
from __future__ import annotations

from dataclasses import dataclass


def group_code(code: str, size: int = 4) -> str:
    """'ABCDEFGHIJKL' -> 'ABCD EFGH IJKL': easier to read and to type."""
    if "-" in code:
        return code  # the panel grouped it already
    plain = code.replace(" ", "")
    return " ".join(plain[i:i + size] for i in range(0, len(plain), size))


@dataclass(frozen=True)
class Slip:
    language: str          # "pl", "en" or "uk"
    header: str            # the library's slip header or name
    platform: str          # "Legimi"
    title: str             # "Twój kod Legimi na grudzień 2026"
    code: str
    activation_url: str
    warning: str           # "Aktywuj kod do 31.01.2020 — …"
    steps_title: str
    steps: tuple[str, ...]  # the three steps of the seed leaflet (step 2: or log in)
    access_note: str       # "30 dni od aktywacji, najpóźniej do …"
    issued_line: str       # "Wydano 14.01.2020 10:05 · wydruk S000042"
    slip_id: str
    devices_note: str = ""  # "Kod działa na dwóch urządzeniach."
    help_note: str = ""    # "Kod nie działa? Sprawdź, czy wpisujesz go do …; jeśli tak — …"

    @property
    def grouped_code(self) -> str:
        return group_code(self.code)
