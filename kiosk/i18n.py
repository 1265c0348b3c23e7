"""Languages of the screens and slips: Polish by default, English and Ukrainian.

Message ids are the Polish texts; catalogues in kiosk/translations hold en and uk."""
from __future__ import annotations

from flask import g
from flask_babel import Babel

LANGUAGES = {"pl": "Polski", "en": "English", "uk": "Українська"}
DEFAULT_LANGUAGE = "pl"

babel = Babel()


def language_from(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def select_locale() -> str:
    return g.get("lang", DEFAULT_LANGUAGE)
