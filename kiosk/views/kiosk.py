"""The self-service kiosk: card scan → code on screen and on the printed slip.

One page; every screen is a fragment swapped into #screen by htmx. Without
JavaScript the same URLs answer with the whole page."""
from __future__ import annotations

from flask import (Blueprint, abort, current_app, g, make_response, redirect, render_template, request,
                   url_for)
from flask_wtf.csrf import CSRFError
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

from kiosk.channels import issue_now
from kiosk.clock import format_date, utcnow
from kiosk.events import record_event
from kiosk.extensions import db
from kiosk.i18n import LANGUAGES, language_from
from kiosk.issuing import Actor, DatabaseBusy, Outcome
from kiosk.kiosks import actor_label, enrolled_kiosk, paused_until, redeem_link
from kiosk.messages import CARD_REFUSALS
from kiosk.models import Channel, Issuance, Kiosk
from kiosk.slips import slip_for_issuance
from printing.barcodes import qr_svg
from printing.pdf import render_pdf
from printing.printers import PrinterError, printer_from_setting

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")

COOKIE = "kodomat_kiosk"
COOKIE_YEARS = 10
SLIP_LINK_SECONDS = 300


def _cookie_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="kiosk-device")


def _slip_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="kiosk-slip")


def current_kiosk() -> Kiosk | None:
    try:
        data = _cookie_signer().loads(request.cookies.get(COOKIE, ""))
        return enrolled_kiosk(db.session, int(data["kiosk"]), str(data["nonce"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


@bp.before_request
def _language() -> None:
    g.lang = language_from(request.values.get("lang"))


@bp.after_request
def _no_store(response):
    # A reader's code must not survive in the browser's cache or history.
    response.headers["Cache-Control"] = "no-store"
    return response


def _screen(template: str, status: int = 200, **context):
    """The fragment alone for htmx, or the whole kiosk page around it."""
    kiosk = context.pop("kiosk", None) or current_kiosk()
    context.setdefault("idle_seconds", kiosk.library.kiosk_idle_seconds if kiosk else 30)
    context.update(lang=g.lang, languages=LANGUAGES, format_date=format_date, screen=template)
    if request.headers.get("HX-Request"):
        return render_template(template, **context), status
    return render_template("kiosk/page.html", kiosk=kiosk, **context), status


def _require_kiosk() -> Kiosk:
    kiosk = current_kiosk()
    if kiosk is None:
        abort(make_response(render_template("kiosk/not_set_up.html", lang=g.lang), 403))
    return kiosk


@bp.get("/")
def page():
    kiosk = _require_kiosk()
    return _screen("kiosk/_idle.html", kiosk=kiosk)


@bp.get("/screen")
def idle():
    kiosk = _require_kiosk()
    return _screen("kiosk/_idle.html", kiosk=kiosk)


@bp.get("/enrol/<token>")
def enrol(token: str):
    kiosk = redeem_link(db.session, token, utcnow())
    if kiosk is None:
        return render_template("kiosk/enrol_failed.html", lang=g.lang), 410
    response = redirect(url_for("kiosk.page"))
    response.set_cookie(COOKIE, _cookie_signer().dumps({"kiosk": kiosk.id, "nonce": kiosk.device_nonce}),
                        max_age=COOKIE_YEARS * 365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response


@bp.post("/scan")
def scan():
    kiosk = _require_kiosk()
    now = utcnow()
    if (until := paused_until(db.session, kiosk, now)) is not None:
        record_event(db.session, kind="kiosk_paused", actor=actor_label(kiosk), library_id=kiosk.library_id,
                     now=now)
        db.session.commit()
        seconds = max(1, int((until - now).total_seconds()))
        return _screen("kiosk/_paused.html", kiosk=kiosk, seconds=seconds)
    try:
        result = issue_now(kiosk.library.slug, request.form.get("card", ""), Channel.KIOSK,
                           Actor(actor_label(kiosk), kiosk_id=kiosk.id))
    except DatabaseBusy:
        return _screen("kiosk/_busy.html", kiosk=kiosk, status=503)

    if not result.has_code:
        return _screen("kiosk/_refused.html", kiosk=kiosk, result=result, Outcome=Outcome,
                       reason=CARD_REFUSALS.get(result.reason))
    slip = slip_for_issuance(db.session, result.issuance_id, g.lang)
    printer = printer_from_setting(kiosk.printer)
    print_failed = False
    if not printer.prints_in_browser:
        try:
            printer.print_slip(slip)
        except PrinterError as exc:
            # The issuance stands: the reader asks at the desk with the slip id.
            print_failed = True
            current_app.logger.warning("kiosk %s: printer failed: %s", kiosk.id, exc)
            record_event(db.session, kind="print_failed", actor=actor_label(kiosk),
                         library_id=kiosk.library_id, now=now, issuance_id=result.issuance_id,
                         error=str(exc)[:300])
            db.session.commit()
    return _screen("kiosk/_slip.html", kiosk=kiosk, result=result, slip=slip, Outcome=Outcome,
                   qr=qr_svg(slip.activation_url), print_failed=print_failed,
                   autoprint=printer.prints_in_browser,
                   pdf_url=url_for("kiosk.slip_pdf", token=_slip_signer().dumps(result.issuance_id),
                                   lang=g.lang))


@bp.get("/slip/<token>.pdf")
def slip_pdf(token: str):
    """The slip as an 80 mm PDF, for a few minutes after it was issued, to this kiosk."""
    kiosk = _require_kiosk()
    try:
        issuance_id = _slip_signer().loads(token, max_age=SLIP_LINK_SECONDS)
    except BadSignature:
        abort(404)
    issuance = db.session.get(Issuance, int(issuance_id))
    if issuance is None or issuance.library_id != kiosk.library_id:
        abort(404)
    slip = slip_for_issuance(db.session, issuance.id, g.lang)
    response = make_response(render_pdf(slip, "pdf80"))
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{slip.slip_id}.pdf"'
    return response


@bp.errorhandler(CSRFError)
def _stale_form(error):
    # A form token from before a restart: start the screen again, no error page.
    return _screen("kiosk/_idle.html", notice=True, status=400)
