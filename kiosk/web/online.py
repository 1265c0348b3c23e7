"""The online request form for readers, /r/<library>/: public, phone-first, in
Polish, English or Ukrainian. A plain form post gets the whole page with the
answer; htmx swaps in the answer alone. Every request gets an answer in the
reader's language, never an error page: a busy database, a silent library system
or an expired form say so on the form itself.

The decision is kiosk.domain.online's; this module parses, asks the library
system (before the unit of work) and shows."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, g, make_response, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError

from kiosk.app.extensions import db
from kiosk.app.units import pepper, settings, write
from kiosk.domain.cards import CardRefusal
from kiosk.domain.clock import utcnow
from kiosk.domain.library_system import ask_before_issuing
from kiosk.domain.online import (OnlineAnswer, OnlineForm, OnlineLimits, OnlineOutcome, answer_early, count_pin_ask,
                                 client_subject, online_form, request_code)
from kiosk.domain.outbox import notify_sender
from kiosk.storage.database import DatabaseBusy, is_busy
from kiosk.web.fragments import is_fragment_request, render_part
from kiosk.wording.addresses import masked_address
from kiosk.wording.languages import LANGUAGES, language_from
from kiosk.wording.messages import CARD_REFUSALS
from kiosk.wording.slips import IssuedCode, slip_of
from printing.barcodes import qr_svg

bp = Blueprint("online", __name__, url_prefix="/r")

LANGUAGE_COOKIE = "kodomat_lang"
MAX_CARD_FIELD = 100  # longer is no card (kiosk.domain.cards refuses past 64); the PIN stops at 32
MAX_PIN_FIELD = 64
# The answers that are the system's fault, not the reader's: 503, "try again in a moment".
BUSY, LIBRARY_SYSTEM = "busy", "library_system"


def limits_from(config) -> OnlineLimits:
    """The form's limits from the app's config (README: "The online request form")."""
    default = OnlineLimits()
    return OnlineLimits(
        requests_per_address=int(config.get("ONLINE_REQUESTS_PER_ADDRESS", default.requests_per_address)),
        refused_per_address=int(config.get("ONLINE_REFUSED_CARDS_PER_ADDRESS", default.refused_per_address)),
        address_window=timedelta(minutes=int(config.get("ONLINE_ADDRESS_WINDOW_MINUTES",
                                                        default.address_window.total_seconds() // 60))),
        resends_per_card=int(config.get("ONLINE_RESENDS_PER_CARD", default.resends_per_card)),
        mails_per_address=int(config.get("ONLINE_MAILS_PER_ADDRESS", default.mails_per_address)))


@bp.before_request
def _language() -> None:
    chosen = request.values.get("lang")
    g.lang = language_from(chosen if chosen in LANGUAGES else request.cookies.get(LANGUAGE_COOKIE))


@bp.after_request
def _remember_language(response):
    if request.values.get("lang") in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, g.lang, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=request.is_secure)
    return response


def _form(slug: str) -> OnlineForm:
    form = online_form(settings(), slug, utcnow(), pepper())
    if form is None:
        abort(404)
    return form


def _page(form: OnlineForm | None, status: int = 200, **context):
    """The answer alone for htmx, or the whole page around it."""
    context.setdefault("answer", None)
    context.setdefault("problem", None)
    return render_part("online/_answer.html", "online/page.html", status, form=form,
                       fragment=is_fragment_request(), masked_address=masked_address, **context)


@bp.get("/<slug>/")
def page(slug: str):
    return _page(_form(slug))


@bp.post("/<slug>/")
def ask(slug: str):
    form = _form(slug)
    card = request.form.get("card", "")[:MAX_CARD_FIELD]
    pin = request.form.get("pin", "")[:MAX_PIN_FIELD] if form.asks_pin else ""
    again = request.form.get("action") == "again"
    now, language = utcnow(), g.lang
    client, limits = client_subject(request.remote_addr), limits_from(current_app.config)
    answer = answer_early(db.session, form, card_number=card, pin=pin or None, now=now, pepper=pepper(),
                          client=client, limits=limits)
    if answer is None and pin:
        answer = write(lambda s: count_pin_ask(s, form.library.id, card_number=card, now=now, pepper=pepper()),
                       late_lock=True)
    if answer is None:
        said = (ask_before_issuing(db.session, slug, card, pin=pin or None, pepper=pepper(), now=now,
                                   snap=settings()) if form.asks_pin else None)
        answer = write(lambda s: request_code(
            s, None, library_slug=slug, card_number=card, answer=said, language=language, now=now,
            pepper=pepper(), again=again, client=client, limits=limits, pin_given=bool(pin),
            platform_slug=form.platform), late_lock=True)
        if answer.mailed:
            notify_sender()
    return _answered(form, answer, card)


def _answered(form: OnlineForm, answer: OnlineAnswer, card: str):
    result = answer.result
    if result is not None and result.reason is CardRefusal.ILS_UNAVAILABLE:
        return _page(form, 503, problem=LIBRARY_SYSTEM, card=card)
    context = {"answer": answer, "card": card}
    if result is not None and result.reason is not None:
        context["reason"] = CARD_REFUSALS.get(result.reason)
    if answer.until is not None:  # "from 14:36": the minute it lifts, rounded up
        context["until"] = (answer.until + timedelta(seconds=59)).replace(second=0, microsecond=0)
    if result is not None and result.valid_until is not None:
        context["activate_by"] = min(filter(None, (result.valid_until, result.service_end)))
    if answer.code is not None:
        snap = settings()
        slip = slip_of(IssuedCode(result.issuance_id, result.code, result.valid_from, result.valid_until,
                                  result.issued_at), form.library, snap.platforms[result.platform],
                       snap.service_end, g.lang)
        context.update(slip=slip, qr=qr_svg(slip.activation_url))
    status = 429 if answer.outcome is OnlineOutcome.LIMITED else 200
    return _page(form, status, **context)


def _form_or_none(slug: str | None) -> OnlineForm | None:
    try:
        return online_form(settings(), slug, utcnow(), pepper()) if slug else None
    except (DatabaseBusy, OperationalError):
        db.session.rollback()
        return None


@bp.errorhandler(DatabaseBusy)
@bp.errorhandler(OperationalError)
def _busy(error):
    if isinstance(error, OperationalError) and not is_busy(error):
        raise error
    db.session.rollback()
    _language()
    return _page(_form_or_none((request.view_args or {}).get("slug")), 503, problem=BUSY)


@bp.errorhandler(CSRFError)
def _stale_form(_error):
    # A session that expired (a page left open overnight): a fresh form, and say so.
    # The CSRF check runs before this blueprint's own before_request.
    _language()
    return _page(_form_or_none((request.view_args or {}).get("slug")), 400, problem="stale")


@bp.errorhandler(400)
def _bad_form(_error):
    _language()
    return _page(_form_or_none((request.view_args or {}).get("slug")), 400, problem="bad_input")


@bp.errorhandler(404)
def _no_library(_error):
    _language()
    return make_response(_page(None, 404, problem="no_library"))
