"""The languages of every screen and slip: Polish by default, English, Ukrainian.
Message ids are the Polish texts; kiosk/translations holds the others."""

LANGUAGES = {"pl": "Polski", "en": "English", "uk": "Українська"}
DEFAULT_LANGUAGE = "pl"


def language_from(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE
