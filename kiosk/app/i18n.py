"""Flask-Babel: the language of a request comes from g.lang (set by the kiosk from
its switch, by staff pages from the staff member's choice)."""
from __future__ import annotations

from flask import g
from flask_babel import Babel

from kiosk.wording.languages import DEFAULT_LANGUAGE, LANGUAGES, language_from  # noqa: F401

babel = Babel()


def select_locale() -> str:
    return g.get("lang", DEFAULT_LANGUAGE)
