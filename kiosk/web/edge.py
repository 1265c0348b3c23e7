"""What every request passes before a view sees it: no NUL byte and no field past
a sane length (a clear 400, never a 500 from the database), and no page that
shows a code or a secret kept in a cache."""
from __future__ import annotations

from flask import Flask, abort, request

MAX_FIELD_CHARS = 10_000  # far above any field of any form; a pool file comes as a file
MAX_FILENAME_CHARS = 200
MAX_PATH_SEGMENT_CHARS = 200
MAX_ID = 2**31 - 1  # the databases' integer ids


def _hostile(value: str) -> bool:
    return "\x00" in value or len(value) > MAX_FIELD_CHARS


def check_fields() -> None:
    # The URL's own parts: a NUL or a giant slug, or an id no database can hold, names nothing.
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            abort(404)
        if isinstance(value, str) and ("\x00" in value or len(value) > MAX_PATH_SEGMENT_CHARS):
            abort(404)
    values = [value for _key, items in request.args.lists() for value in items]
    if request.method in ("POST", "PUT", "PATCH"):
        values += [value for _key, items in request.form.lists() for value in items]
        values += [upload.filename or "" for _key, uploads in request.files.lists() for upload in uploads]
    if any(_hostile(value) for value in values):
        abort(400)


def no_store(response):
    # Every page may show a code, a card's codes or a one-time secret: none of it
    # may stay in a browser's or a proxy's cache. Static files are cached as usual.
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def upload_name(filename: str | None) -> str:
    """An uploaded file's name as it is kept and shown: printable, not too long."""
    name = "".join(ch for ch in (filename or "") if ch.isprintable()).strip()
    return name[:MAX_FILENAME_CHARS] or "plik"


def register(app: Flask) -> None:
    app.before_request(check_fields)
    app.after_request(no_store)
