"""The API's operations: issue a reader's code, look up a card's codes, a library's
pools and next release, the libraries a key may name. Thin: each reads its body,
calls the domain (the one issuing function, kiosk.domain.issuing.issue_code) and
writes the answer."""
from __future__ import annotations

import json
import re

from flask import Response, abort, g, request

from kiosk.app.extensions import db
from kiosk.app.units import pepper, settings, write
from kiosk.domain.actors import Actor
from kiosk.domain.api_keys import StoredAnswer, keep_answer, request_digest, stored_answer
from kiosk.domain.clock import local_day, utcnow
from kiosk.domain.eligibility import opening_of
from kiosk.domain.issuing import IssueResult, Outcome, issue_code
from kiosk.domain.library_system import ask_before_issuing
from kiosk.domain.lookups import issuances_of_card
from kiosk.domain.pools import pool_summaries
from kiosk.storage.database import lock_for_transaction
from kiosk.storage.models import Channel
from kiosk.web.api import bp
from kiosk.web.api.problems import (INVALID, MALFORMED, PROBLEM_JSON, RETRY_LIBRARY_SYSTEM_SECONDS,
                                    issue_problem_type, problem, problem_response)
from kiosk.web.api.schemas import (IssueAnswer, IssueProblem, IssueRequest, LibrariesAnswer, LookupAnswer,
                                   LookupRequest, PoolsAnswer, Problem)
from kiosk.wording.messages import describe_issue

BEARER = [{"bearerAuth": []}]
IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")  # visible ASCII
IDEMPOTENCY_PARAMETER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": "Any unique string per request (e.g. a UUID). A retry with the same key within 24 hours gets "
                   "the first answer back (status and body) and gives no second code; the same key with another "
                   "request is refused (422, idempotency-key-reused)."}
SLUG = [{"in": "path", "name": "slug", "description": "The library's short name (GET /api/v1/libraries lists the "
          "ones the key may name)."}]
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
_DESCRIPTIONS = {
    400: "The body is not JSON, or a header is malformed (malformed-request).",
    401: "No key, a wrong key or a revoked one (unauthorized).",
    404: "No such library, or one this key may not name (not-found).",
    409: "The reader gets no code: the type says why, the fields say what next.",
    413: "The body is over 16 KiB (too-large).",
    422: "A field is missing or wrong (invalid-request), or an Idempotency-Key was used for another request.",
    429: "The key's limit of requests a minute is used up (rate-limited).",
    503: "The database is busy, or the library system (SIP2) did not answer: nothing was done; retry.",
}


def _problems(*statuses: int, issue: bool = False):
    """Documents the operation's problem answers."""
    def decorate(view):
        for status in reversed(statuses):
            schema = IssueProblem if issue and status in (409, 503) else Problem
            headers = RETRY_AFTER if status in (429, 503) else (
                {"WWW-Authenticate": {"schema": {"type": "string"}}} if status == 401 else None)
            view = bp.alt_response(status, schema=schema, content_type=PROBLEM_JSON, headers=headers,
                                   description=_DESCRIPTIONS[status])(view)
        return view
    return decorate


@bp.route("/libraries/<slug>/issuances", methods=["POST"], parameters=SLUG)
@bp.arguments(IssueRequest, description="The reader's card (and PIN, where the library checks cards over SIP2).")
@bp.response(201, IssueAnswer, description="A new code for the reader (`status`: issued).")
@bp.alt_response(200, schema=IssueAnswer, success=True,
                 description="The reader's code of this window, given again (`status`: reprint).")
@_problems(400, 401, 404, 409, 413, 422, 429, 503, issue=True)
@bp.doc(security=BEARER, parameters=[IDEMPOTENCY_PARAMETER])
def issue(body: dict, slug: str):
    """Issue a reader's code

    The same rules as the kiosk and the desk: one code per reader, platform and
    window; a reader who has one gets it again (200). Refusals are 409 problems."""
    key, library = g.api_key, g.api_library
    card, platform, pin = body["card"], body["platform"], body["pin"]
    if platform not in settings().platforms:
        return problem(INVALID, str(INVALID.about), errors={"json": {"platform": ["Unknown platform."]}})
    idempotency, now = _idempotency_key(), utcnow()
    digest = request_digest(pepper(), "issuances", library.slug, card, platform, pin) if idempotency else None
    if idempotency:
        found = stored_answer(db.session, key.id, idempotency, digest, now)  # a retry asks no library system
        if found is not None:
            return _replayed(found)
    answer = ask_before_issuing(db.session, library.slug, card, pin=pin, pepper=pepper(), now=now)
    actor = Actor.api_key(key.id, key.name)

    def work(session) -> tuple[StoredAnswer, bool]:
        if idempotency:
            # Retries sent at once wait for each other here (PostgreSQL; SQLite's writers
            # queue anyway): else one that found the pool empty while another held its
            # last code could answer first for all of them.
            lock_for_transaction(session, f"idempotency:{key.id}:{idempotency}")
            found = stored_answer(session, key.id, idempotency, digest, now)
            if found is not None:
                return found, True
        result = issue_code(session, library_slug=library.slug, card_number=card, channel=Channel.API, actor=actor,
                            now=now, pepper=pepper(), platform_slug=platform, answer=answer)
        said = _issue_answer(result)
        if idempotency and said.status < 500:  # a library system that did not answer: a retry asks again
            keep_answer(session, key.id, idempotency, digest, said, now)
        return said, False

    said, replayed = write(work, late_lock=True)
    return _replayed(said) if replayed else _sent(said)


def _idempotency_key() -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        abort(problem(MALFORMED, "Idempotency-Key: 1–255 visible ASCII characters."))
    return value


def _issue_answer(result: IssueResult) -> StoredAnswer:
    """The answer to an issue: `kiosk issue --json`'s fields, with `outcome` for its
    `status` (which a problem keeps for the HTTP status, as RFC 9457 has it)."""
    fields = result.as_json()
    fields = {"outcome": fields["status"], **fields}
    if result.has_code:
        body = {**fields, "message": describe_issue(result)}
        return StoredAnswer(201 if result.outcome is Outcome.ISSUED else 200, json.dumps(body, ensure_ascii=False))
    kind = issue_problem_type(result)
    del fields["status"]
    body = {"type": kind.uri, "title": str(kind.title), "status": kind.status, "detail": describe_issue(result),
            **fields}
    return StoredAnswer(kind.status, json.dumps(body, ensure_ascii=False))


def _sent(said: StoredAnswer, headers: dict | None = None) -> Response:
    headers = dict(headers or {})
    if said.status == 503:
        headers["Retry-After"] = str(RETRY_LIBRARY_SYSTEM_SECONDS)
    if said.status >= 400:
        return problem_response(said.status, said.body, headers)
    return Response(said.body, status=said.status, mimetype="application/json", headers=headers)


def _replayed(said: StoredAnswer) -> Response:
    return _sent(said, {"Idempotent-Replayed": "true"})


@bp.route("/libraries/<slug>/cards/lookup", methods=["POST"], parameters=SLUG)
@bp.arguments(LookupRequest, description="The card in the body: a card number never goes into a URL or a log.")
@bp.response(200, LookupAnswer, description="The reader's codes in this library (none: an empty list).")
@_problems(400, 401, 404, 413, 422, 429, 503)
@bp.doc(security=BEARER)
def lookup(body: dict, slug: str):
    """Look up a card's codes

    Every code the reader got in this library, the newest window first, with its
    state; nothing is written."""
    library = g.api_library
    rows = issuances_of_card(db.session, library, body["card"], pepper(), utcnow())
    codes = [{"code": row.code, "platform": row.platform_slug, "valid_from": row.window_start.isoformat(),
              "valid_until": row.window_end.isoformat(), "issued_at": row.issued_at.isoformat(),
              "print_count": row.print_count, "channel": row.channel, "state": row.state} for row in rows]
    return _json({"codes": codes})


@bp.route("/libraries/<slug>/pools", methods=["GET"], parameters=SLUG)
@bp.response(200, PoolsAnswer, description="The library's pools, and per platform the open window and the next "
                                           "release.")
@_problems(401, 404, 429, 503)
@bp.doc(security=BEARER)
def pools(slug: str):
    """A library's pools and next release

    Per platform: the window codes are handed out from now (with the codes left),
    and when the next window's codes are released by the library's rules."""
    library, snap, now = g.api_library, settings(), utcnow()
    today = local_day(now, library.timezone)
    summaries = pool_summaries(db.session, now, library_id=library.id)
    left = {summary.pool_id: summary.left for summary in summaries}
    rules = snap.rules_for(library.id)
    closed = snap.closed.get(library.id, frozenset()) if rules.counts_working_days else frozenset()
    platforms = []
    for platform in sorted(snap.platforms_by_id.values(), key=lambda p: p.id):
        upcoming_pools = snap.pools_of(library.id, platform.id, today)
        if not upcoming_pools:
            continue
        found = opening_of(upcoming_pools, closed, library, rules, now)
        window, upcoming = found.window, found.upcoming
        platforms.append({
            "platform": platform.slug, "name": platform.name,
            "open": None if window is None else {
                "valid_from": window.start.isoformat(), "valid_until": window.end.isoformat(),
                "released_at": window.released_at.isoformat(),
                "codes_left": sum(left.get(pool_id, 0) for pool_id in window.pool_ids)},
            "next_release": None if upcoming is None else {
                "at": upcoming.released_at.isoformat(), "valid_from": upcoming.start.isoformat()}})
    rows = [{key: value for key, value in summary.as_json().items() if key not in ("library", "source_filename")}
            for summary in summaries]
    return _json({"library": library.slug, "service_end": snap.service_end.isoformat() if snap.service_end else None,
                  "platforms": platforms, "pools": rows})


@bp.route("/libraries", methods=["GET"])
@bp.response(200, LibrariesAnswer, description="The libraries this key may name: its own, or all for a "
                                               "consortium key.")
@_problems(401, 429, 503)
@bp.doc(security=BEARER)
def libraries():
    """The libraries a key may name"""
    key = g.api_key
    found = sorted(settings().libraries.values(), key=lambda library: library.slug)
    return _json({"libraries": [{"slug": library.slug, "name": library.name} for library in found
                                if key.may_name(library.id)]})


def _json(body: dict) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")

