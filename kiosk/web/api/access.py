"""Who may call the API, and what every request under /api/v1 passes first: its
language, a body limit, the key (401), the key's limit per minute (429), and the
library the URL names (404, for another library's as for none: no leak).

No cookie and no session: a key, sent as `Authorization: Bearer`, is the caller."""
from __future__ import annotations

from flask import abort, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, Unauthorized

from kiosk.app.extensions import db
from kiosk.app.units import settings, write
from kiosk.domain.api_keys import CallingKey, calling_key, count_use
from kiosk.domain.clock import utcnow
from kiosk.domain.snapshot import LibraryView
from kiosk.web.api.problems import (METHOD_NOT_ALLOWED, NOT_FOUND, RATE_LIMITED, UNAUTHORIZED, http_problem,
                                    problem)
from kiosk.wording.languages import DEFAULT_LANGUAGE, LANGUAGES

PREFIX = "/api/v1/"
MAX_BODY = 16 * 1024  # a card, a platform and a PIN: a few hundred bytes
REALM = 'Bearer realm="Kodomat API"'


def under_api() -> bool:
    return request.path.startswith(PREFIX) or request.path == PREFIX.rstrip("/")


def api_edge():
    """Every request (registered app-wide, before the app's own checks): one under
    /api/v1 gets its language and body limit; one no route matched is answered
    here, as a problem, since the API's error handlers see only its own routes."""
    if not under_api():
        return None
    g.lang = request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT_LANGUAGE)
    request.max_content_length = MAX_BODY
    routing = request.routing_exception
    if isinstance(routing, MethodNotAllowed):
        return problem(METHOD_NOT_ALLOWED, str(METHOD_NOT_ALLOWED.about),
                       headers={"Allow": ", ".join(sorted(routing.valid_methods or []))})
    if isinstance(routing, NotFound):
        return problem(NOT_FOUND, str(NOT_FOUND.about))
    return None  # a redirect (a missing trailing slash) goes its way


class KeyRefused(Unauthorized):
    """401 with the challenge RFC 6750 asks for."""

    def __init__(self, invalid: bool):
        super().__init__()
        self.data = {"headers": {"WWW-Authenticate": REALM + (', error="invalid_token"' if invalid else ""),
                                 "Cache-Control": "no-store"},
                     "detail": str(UNAUTHORIZED.about)}


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def require_key() -> CallingKey:
    """The calling key, counted against its limit; 401 or 429 otherwise."""
    secret = _bearer()
    if secret is None:
        raise KeyRefused(invalid=bool(request.headers.get("Authorization")))
    key = calling_key(db.session, secret)
    db.session.rollback()  # the read ends before the count's own unit of work
    if key is None:
        raise KeyRefused(invalid=True)
    now = utcnow()
    used = write(lambda s: count_use(s, key.id, now))
    if used > key.per_minute:
        wait = 60 - now.second
        abort(problem(RATE_LIMITED, str(RATE_LIMITED.about), headers={"Retry-After": str(wait)}))
    g.api_key = key
    return key


def library_named(slug: str) -> LibraryView:
    """The library the URL names, if the calling key may name it; 404 otherwise,
    the same answer as for a library that does not exist."""
    library = settings().libraries.get(slug)
    if library is None or not g.api_key.may_name(library.id):
        abort(problem(NOT_FOUND, str(NOT_FOUND.about)))
    return library


def http_error(error: HTTPException):
    """Every HTTP error of the API's views (and of webargs' body checks) as a problem."""
    if error.response is not None:  # abort(problem(...)): the problem is ready
        return error.response
    return http_problem(error)
