"""The JSON API for library systems under /api/v1/ (flask-smorest): issue a reader's
code, look up a card's codes, a library's pools and next release. Described by an
OpenAPI 3 document generated from the code (/api/v1/openapi.json, read for people at
/api/v1/docs). A library system sends a key made in the admin panel or with
`kiosk api-key` as `Authorization: Bearer`; every error is a problem (RFC 9457).

The API keeps to its blueprint: its error handlers answer only for its own URLs, and
the app's pages keep their HTML ones; it sets no cookie and needs no CSRF token."""
from __future__ import annotations

from flask import Flask, g, request
from flask_smorest import Api, Blueprint
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, default_exceptions

from kiosk.app.extensions import db
from kiosk.domain.api_keys import IdempotencyMismatch
from kiosk.storage.database import DatabaseBusy, is_busy
from kiosk.web.api.access import api_edge, http_error, library_named, require_key
from kiosk.web.api.problems import BUSY, IDEMPOTENCY_REUSED, RETRY_BUSY_SECONDS, problem

bp = Blueprint("api", __name__, url_prefix="/api/v1",
               description="Codes for readers, asked for by the library's own systems.")

API_DESCRIPTION = """Kodomat's API for a library's own systems (the catalogue's reader account,
the library system): issue a reader's monthly e-book code, look up a card's codes, see
the pools and the next release. The rules are the kiosk's and the desk's: one function
issues for every channel.

Send the library's API key as `Authorization: Bearer kdm_…` (keys are made by the
library's admin in the panel or with `kiosk api-key`; a consortium key may name any
library). Keep the key on the server: never in a browser. A library the key may not
name answers 404, like one that does not exist. Each key has a limit of requests a
minute (1,000 unless set): past it, 429 with Retry-After.

Every error is `application/problem+json` (RFC 9457) with a stable `type` per kind
(/api/v1/problems/<name>, a page that explains it). A refused issue is a 409 whose body
also carries the fields of `kiosk issue --json` (`outcome`, `reason`, `next_release`,
…). Send `Idempotency-Key` with an issue to retry it safely: the same key gets the
first answer back, and never a second code."""


class KodomatApi(Api):
    """flask-smorest's Api, without its app-wide JSON error handler (the app's pages
    keep their own) and without a documented default error: each operation lists
    its problems."""

    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self):
        pass


def _check_caller():
    """Before the body is read: the key (401, 429) and the library it names (404)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    require_key()
    slug = (request.view_args or {}).get("slug")
    if slug is not None:
        g.api_library = library_named(slug)


def _busy(_error=None):
    db.session.rollback()
    return problem(BUSY, str(BUSY.about), headers={"Retry-After": str(RETRY_BUSY_SECONDS)})


def _locked(error: OperationalError):
    if not is_busy(error):
        raise error
    return _busy()


bp.before_request(_check_caller)
bp.before_app_request(api_edge)
# By code as well as by class: the app's handlers for a code would come first otherwise.
for _code in default_exceptions:
    bp.register_error_handler(_code, http_error)
bp.register_error_handler(HTTPException, http_error)
bp.register_error_handler(DatabaseBusy, _busy)
bp.register_error_handler(OperationalError, _locked)
bp.register_error_handler(IdempotencyMismatch,
                          lambda _error: problem(IDEMPOTENCY_REUSED, str(IDEMPOTENCY_REUSED.about)))

from kiosk.web.api import docs, views  # noqa: E402,F401  (their routes)
from kiosk.web.api.docs import PUBLIC_ENDPOINTS  # noqa: E402


def register(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "Kodomat API")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("API_SPEC_OPTIONS", {"info": {"description": API_DESCRIPTION}})
    api = KodomatApi(app)
    api.spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer", "description": "A key from the admin panel or `kiosk api-key`."})
    api.register_blueprint(bp)
    for unused in ("Error", "PaginationMetadata"):  # flask-smorest's own, which no operation here names
        api.spec.components.schemas.pop(unused, None)
    app.cli.commands.pop("openapi", None)  # flask-smorest's command; `kiosk` names its own (kiosk.cli.COMMANDS)
    app.extensions["csrf"].exempt(bp)  # no cookie, no session: a forged request has no key to send
