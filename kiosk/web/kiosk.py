"""The self-service kiosk: card scan → code on screen and on the printed slip.

One page; every screen is a fragment swapped into #screen by htmx. Without
JavaScript the same URLs answer with the whole page."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import OperationalError

from kiosk.app.extensions import db
from kiosk.app.units import pepper, settings, write
from kiosk.domain.cards import check_format
from kiosk.domain.clock import utcnow
from kiosk.domain.issuing import Outcome
from kiosk.domain.pools import availability
from kiosk.domain.snapshot import KioskView
from kiosk.domain.readers import normalise_card
from kiosk.domain.kiosks import (enrolled_kiosk, kiosk_for_link, pause_scan, paused_until, record_print_failure,
                                 redeem_link, scan_card)
from kiosk.domain.library_system import ask_before_issuing
from kiosk.storage.database import DatabaseBusy, is_busy
from kiosk.storage.models import CardCheckKind
from kiosk.storage.secrets import open_note, seal_note
from kiosk.web.fragments import is_fragment_request, render_part
from kiosk.wording.languages import language_from
from kiosk.wording.messages import CARD_REFUSALS
from kiosk.wording.slips import IssuedCode, slip_of
from printing.barcodes import code128_svg, qr_svg
from printing.printers import print_slip_with

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")

COOKIE = "kodomat_kiosk"
COOKIE_YEARS = 10
# A reader asked which platform has this long to touch one: a walk-away's card must
# not be issued on by the next person in the queue.
CHOICE_SECONDS = 20
# A reader asked for the PIN has this long to type it; the card waits signed, as above.
PIN_SECONDS = 60


def _seal(purpose: str, note: dict) -> str:
    """A screen's card, sealed for the browser to carry back: encrypted, so the card
    number is not in the page for anyone to read, and good for a short while."""
    return seal_note(current_app.config["SECRET_KEY"], f"kiosk {purpose}", note)


def _carried(purpose: str, seconds: int, kiosk_id: int) -> dict | None:
    """The card a screen carried, if it came back in time to the kiosk that sealed it."""
    note = open_note(current_app.config["SECRET_KEY"], f"kiosk {purpose}", request.form.get(purpose, ""), seconds)
    return note if note is not None and note.get("kiosk") == kiosk_id else None


def _cookie_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="kiosk-device")


def _cookie() -> tuple[int, str] | None:
    try:
        data = _cookie_signer().loads(request.cookies.get(COOKIE, ""))
        return int(data["kiosk"]), str(data["nonce"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def current_kiosk(asked_again_later: bool = False) -> KioskView | None:
    """The enrolled kiosk this browser is. asked_again_later: the scan checks the
    enrolment again in its issuing transaction, so the process's last copy of the
    settings may answer first (a kiosk it does not know yet is looked up afresh)."""
    cookie = _cookie()
    if cookie is None:
        return None
    return ((asked_again_later and enrolled_kiosk(settings(asked_again_later=True), *cookie))
            or enrolled_kiosk(settings(), *cookie))


@bp.before_request
def _language() -> None:
    g.lang = language_from(request.values.get("lang"))


def _screen(template: str, status: int = 200, **context):
    """The fragment alone for htmx, or the whole kiosk page around it."""
    kiosk = context.pop("kiosk") if "kiosk" in context else current_kiosk()
    context.setdefault("idle_seconds", kiosk.library.kiosk_idle_seconds if kiosk else 30)
    context.update(screen=template, Outcome=Outcome)
    return render_part(template, "kiosk/page.html", status, page_context={"kiosk": kiosk}, **context)


def _idle(kiosk: KioskView | None, status: int = 200, **context):
    """The start screen, saying which codes the kiosk gives and when the next come."""
    if kiosk is None:
        return render_template("kiosk/not_set_up.html"), 403
    context["availability"] = availability(db.session, kiosk.library_id, utcnow())
    return _screen("kiosk/_idle.html", kiosk=kiosk, status=status, **context)


def masked(typed: str) -> str:
    """The number as typed, so a reader sees a mistyped card, but only its last
    four characters: the queue behind must not read a card number."""
    shown = "".join(ch for ch in typed.strip() if ch.isprintable())[:40]
    return "•" * max(0, len(shown) - 4) + shown[-4:]


def _require_kiosk(asked_again_later: bool = False) -> KioskView:
    kiosk = current_kiosk(asked_again_later)
    if kiosk is None:
        abort(make_response(render_template("kiosk/not_set_up.html"), 403))
    return kiosk


@bp.get("/")
@bp.get("/screen", endpoint="idle")  # the same screen; htmx asks for it by this name
def page():
    response = make_response(_idle(_require_kiosk()))
    if is_fragment_request() and request.headers.get("X-Kodomat-Version") != current_app.config["ASSET_VERSION"]:
        # A page from before an upgrade: between two readers, load the new one whole.
        response.headers["HX-Refresh"] = "true"
    return response


@bp.get("/enrol/<token>")
def enrol_confirm(token: str):
    # Only a press enrols: mail scanners and link previews fetch links by themselves.
    kiosk = kiosk_for_link(db.session, token, utcnow())
    if kiosk is None:
        return render_template("kiosk/enrol_failed.html"), 410
    return render_template("kiosk/enrol.html", kiosk=kiosk, token=token)


@bp.post("/enrol/<token>")
def enrol(token: str):
    kiosk = write(lambda s: redeem_link(s, token, utcnow()))
    if kiosk is None:
        return render_template("kiosk/enrol_failed.html"), 410
    response = redirect(url_for("kiosk.page"))
    response.set_cookie(COOKIE, _cookie_signer().dumps({"kiosk": kiosk.id, "nonce": kiosk.device_nonce}),
                        max_age=COOKIE_YEARS * 365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response


@bp.post("/scan")
def scan():
    # No read of the settings here: scan_card reads them in its own transaction and
    # checks the enrolment again there (one round trip fewer for every reader).
    kiosk = _require_kiosk(asked_again_later=True)
    kiosk_id, library_id, printer = kiosk.id, kiosk.library_id, kiosk.printer
    card, now = request.form.get("card", ""), utcnow()
    # kiosk.js says "scan" when the number came as a scanner types it: fast, ending in Enter.
    by_scanner = request.form.get("entry") == "scan"
    platform, pin, pin_checked = None, None, False
    if request.form.get("choice"):
        # A platform touched: the card comes signed from the choice screen, briefly.
        chosen = _carried("choice", CHOICE_SECONDS, kiosk_id)
        if chosen is None:
            return _idle(kiosk, notice=True)
        card, by_scanner, platform = chosen["card"], bool(chosen["scan"]), request.form.get("platform") or None
        pin_checked = bool(chosen.get("pin"))
    elif request.form.get("pin_for"):
        # The PIN typed: the card comes signed from the PIN screen.
        asked = _carried("pin_for", PIN_SECONDS, kiosk_id)
        if asked is None:
            return _idle(kiosk, notice=True)
        card, by_scanner, pin = asked["card"], bool(asked["scan"]), request.form.get("pin", "")[:64]
    try:
        snap = settings(asked_again_later=True)
        asks_library_system = kiosk.library.card_check == CardCheckKind.SIP2
        if asks_library_system and paused_until(db.session, kiosk_id=kiosk_id, library_id=library_id, card=card,
                                                now=now, pepper=pepper()) is not None:
            # A paused kiosk asks nothing of the library system, nor for a PIN.
            scanned = write(lambda s: pause_scan(s, kiosk_id=kiosk_id, card=card, now=now, pepper=pepper(),
                                                 device_nonce=kiosk.device_nonce))
        elif pin is None and not pin_checked and _pin_required(kiosk) and _looks_like_a_card(kiosk, card):
            pin_for = _seal("pin_for", {"card": card, "scan": by_scanner, "kiosk": kiosk_id})
            return _screen("kiosk/_pin.html", kiosk=kiosk, pin_for=pin_for, typed=masked(card),
                           idle_seconds=min(PIN_SECONDS, kiosk.library.kiosk_idle_seconds * 2))
        else:
            answer = (ask_before_issuing(db.session, kiosk.library.slug, card, pin=pin, pepper=pepper(), now=now,
                                         snap=snap) if asks_library_system else None)
            # One transaction: the pause, the issue and the count (kiosk.domain.kiosks.scan_card).
            scanned = write(lambda s: scan_card(s, kiosk_id=kiosk_id, card=card, now=now, pepper=pepper(),
                                                scanned=by_scanner, platform=platform, answer=answer,
                                                device_nonce=kiosk.device_nonce), late_lock=True)
    except DatabaseBusy:
        return _screen("kiosk/_busy.html", kiosk=kiosk, status=503)
    if not scanned.enrolled:  # revoked or enrolled anew a moment ago
        return render_template("kiosk/not_set_up.html"), 403
    if scanned.settings is not None:  # the kiosk as the scan saw it: its printer may have moved
        kiosk = scanned.settings.kiosks.get(kiosk_id, kiosk)
        printer = kiosk.printer
    if scanned.paused_until is not None:
        seconds = max(1, int((scanned.paused_until - now).total_seconds()))
        return _screen("kiosk/_paused.html", kiosk=kiosk, seconds=seconds)

    if scanned.choices:
        choice = _seal("choice", {"card": card, "scan": by_scanner, "kiosk": kiosk_id,
                                  "pin": pin_checked or scanned.pin_checked})
        return _screen("kiosk/_choose.html", kiosk=kiosk, choices=scanned.choices, choice=choice,
                       idle_seconds=min(CHOICE_SECONDS, kiosk.library.kiosk_idle_seconds))
    result = scanned.result
    if result.outcome is Outcome.REPRINT_WITHHELD:
        return _screen("kiosk/_withheld.html", kiosk=kiosk)
    if not result.has_code:
        return _screen("kiosk/_refused.html", kiosk=kiosk, result=result, reason=CARD_REFUSALS.get(result.reason),
                       typed=masked(card))
    # The slip from what the issue returned and the settings in hand: no read after the issue.
    slip = slip_of(IssuedCode(result.issuance_id, result.code, result.valid_from, result.valid_until,
                              result.issued_at), kiosk.library, scanned.settings.platforms[result.platform],
                   scanned.settings.service_end, g.lang)
    in_browser, error = print_slip_with(printer, slip)
    if error:
        # The issuance stands: the reader asks at the desk with the slip id.
        current_app.logger.warning("kiosk %s: printer failed: %s", kiosk_id, error)
        write(lambda s: record_print_failure(s, kiosk_id=kiosk_id, library_id=library_id,
                                             issuance_id=result.issuance_id, error=error, now=now))
    # A slip that did not print: the code stays up longer, for the reader to copy it.
    idle = kiosk.library.kiosk_idle_seconds * (4 if error else 1)
    return _screen("kiosk/_slip.html", kiosk=kiosk, result=result, slip=slip, idle_seconds=idle,
                   qr=qr_svg(slip.activation_url), barcode=code128_svg(slip.code), print_failed=bool(error),
                   autoprint=in_browser)


def _looks_like_a_card(kiosk: KioskView, card: str) -> bool:
    """No PIN is asked for garbage: a number that is not a card is refused at once."""
    library = kiosk.library
    return check_format(normalise_card(card), library.card_pattern, library.card_check_digit) is None


def _pin_required(kiosk: KioskView) -> bool:
    if kiosk.library.card_check != CardCheckKind.SIP2:
        return False
    config = settings().sip2_config(kiosk.library_id, pepper())
    return config is not None and config.require_pin


@bp.errorhandler(DatabaseBusy)
@bp.errorhandler(OperationalError)
def _database_busy(error):
    if isinstance(error, OperationalError) and not is_busy(error):
        raise error
    db.session.rollback()
    _language()
    return _screen("kiosk/_busy.html", kiosk=None, status=503)


@bp.errorhandler(400)
@bp.errorhandler(CSRFError)
def _stale_form(error):
    # A form token from before a restart: start the screen again, no error page.
    # (The CSRF check runs before this blueprint's own before_request.)
    _language()
    return _idle(current_kiosk(), status=400, notice=True)
