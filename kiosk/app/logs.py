"""Logs: one JSON object per line on standard error (journald, Docker and the
Windows service wrapper all keep standard error), with the request's id on every
line written while a request is served, and one access line per request.

What goes into a line is the logger's message and a few named fields; nothing is
taken from a form or a query string, so no card number, PIN or password reaches a
log (a test greps every line of a full test run for the card numbers it used).

Settings, from the environment, so they hold before any configuration is read:
KIOSK_LOG_FORMAT (json; text for a person: the default when standard error is a
terminal), KIOSK_LOG_LEVEL (INFO) and KIOSK_LOG_FILE (a file to append to as
well, for a PC without journald)."""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
# What a proxy's id may look like (nginx's $request_id is 32 hex digits): anything
# else is replaced, so a line can never be forged or stretched through the header.
_REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._-]{8,64}")
# The standard attributes of a LogRecord: everything else was passed as `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}
_OURS = "_kodomat_handler"
access_log = logging.getLogger("kiosk.http")


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message, pid, request_id where there is one,
    the fields given as `extra`, and the exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which gunicorn worker
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    """Puts the id of the request being served (if any) on the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


class StandardErrorHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is written (a test runner or a
    service wrapper may swap it), not to the stream of the moment it was made."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(*, stream=None) -> None:
    """Sends every logger's records to standard error (and KIOSK_LOG_FILE), as JSON
    unless KIOSK_LOG_FORMAT=text. Called by the entry points (`kiosk serve`, wsgi.py,
    the `kiosk` commands), never by the app factory: tests and embedders keep their
    own logging. Calling it again replaces what it set up before. Flask's own
handler on the app's logger would write each line twice: it is left out."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
        handler.close()
    default = "text" if getattr(stream or sys.stderr, "isatty", lambda: False)() else "json"
    text = os.environ.get("KIOSK_LOG_FORMAT", default).lower() == "text"
    formatter = (logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
                 if text else JsonFormatter())
    handlers: list[logging.Handler] = [logging.StreamHandler(stream) if stream else StandardErrorHandler()]
    if os.environ.get("KIOSK_LOG_FILE"):
        handlers.append(logging.FileHandler(os.environ["KIOSK_LOG_FILE"], encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(os.environ.get("KIOSK_LOG_LEVEL", "INFO").upper())
    from flask.logging import default_handler

    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.removeHandler(default_handler)
    # SQLAlchemy logs every statement at INFO when its loggers allow it: only its warnings.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)


def install_request_ids(app: Flask) -> None:
    """Each request gets an id: the proxy's (X-Request-Id, trusted only with
    TRUST_PROXY, where nginx sets it) or a new one. It is on every log line of the
    request and in the answer's X-Request-Id, so a librarian's "it said error at
    10:42" can be found in the log; after the answer, one access line."""

    @app.before_request
    def take_request_id() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "") if app.config.get("TRUST_PROXY") else ""
        g.request_id = given if _REQUEST_ID_SHAPE.fullmatch(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
            started = g.get("request_started")
            path = logged_path()
            access_log.info("%s %s %s", request.method, path, response.status_code,
                            extra={"method": request.method, "path": path, "status": response.status_code,
                                   "client": request.remote_addr,
                                   "ms": round((time.perf_counter() - started) * 1000, 1) if started else None})
        return response


# Parts of a URL that are secrets (a kiosk's one-time enrolment link): never logged.
SECRET_URL_PARTS = ("token",)


def logged_path() -> str:
    """The request's path as a log may keep it: without the query string (the
    client's to fill) and with secret parts of the route masked."""
    path = request.path
    for name in SECRET_URL_PARTS:
        value = (request.view_args or {}).get(name)
        if value:
            path = path.replace(str(value), "***")
    return path
