"""The watch on the suite's logs: every card number the suite turns into a reader
key is noted, and every log line of the run (this process's, and those of the
servers the tests start, through KIOSK_LOG_FILE) is written to one file, so the
last test (test_zz_no_card_in_logs.py) can check that no line holds a card.

Imported by conftest.py before any other part of Kodomat, so every module that
imports reader_key by name gets the noting one."""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import kiosk.domain.readers as readers

CARDS_USED: set[str] = set()
_reader_key = readers.reader_key


def _noting_reader_key(pepper: str, normalised_card: str) -> str:
    CARDS_USED.add(normalised_card)
    return _reader_key(pepper, normalised_card)


readers.reader_key = _noting_reader_key

# Set once per run: the servers the tests start inherit it and write there too.
LOG_FILE = Path(os.environ.setdefault(
    "KIOSK_LOG_FILE", str(Path(tempfile.mkdtemp(prefix="kodomat-test-logs-")) / "suite.jsonl")))


_handler: logging.Handler | None = None


def watch_this_process() -> None:
    """Every record of this process, at INFO and above, as the servers write them.
    Called before each test: it puts the watch back if something took it off."""
    global _handler
    from kiosk.app.logs import JsonFormatter, RequestIdFilter

    root = logging.getLogger()
    if _handler is not None and _handler in root.handlers:
        if root.level > logging.INFO:
            root.setLevel(logging.INFO)
        return
    _handler = handler = logging.FileHandler(LOG_FILE, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)


_TOKEN = re.compile(r"[A-Za-z0-9]+")


def cards_in(line: str, cards: set[str]) -> set[str]:
    """The cards that stand in the line as a whole word (upper or lower case)."""
    return {token.upper() for token in _TOKEN.findall(line)} & cards
