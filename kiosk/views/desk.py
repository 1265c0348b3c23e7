"""The staff desk: issue for a reader at the desk, look up who got which code,
reprint, replace a faulty code. Every URL names its library and is scoped."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, make_response, redirect, render_template, request, url_for

from kiosk.alerts import library_alerts
from kiosk.channels import issue_now, replace_now
from kiosk.clock import format_date, local_day, utcnow
from kiosk.events import record_event
from kiosk.extensions import db
from kiosk.issuing import Actor, DatabaseBusy, NothingToReplace, Outcome
from kiosk.lookups import issuance_row, issuances_of_card, issuances_of_code
from kiosk.messages import CARD_REFUSALS
from kiosk.models import Channel, Issuance
from kiosk.slips import slip_for_issuance
from kiosk.views.access import DESK_ROLES, libraries_of, library_in_scope, login_required
from printing.barcodes import qr_svg
from printing.pdf import PAPERS, render_pdf
from printing.printers import print_slip_with

bp = Blueprint("desk", __name__, url_prefix="/desk")


@bp.after_request
def _no_store(response):
    # A shared desk PC: the back button must not show the previous reader's code.
    response.headers["Cache-Control"] = "no-store"
    return response


# Stored with the issuance, so "who collected it" survives in the log and lookups.
PROXY_MARK = "[pełnomocnik]"


def _actor() -> Actor:
    return Actor(f"staff:{g.user.username}", staff_user_id=g.user.id)


def _render(template: str, status: int = 200, **context):
    """The fragment for htmx; the whole desk page around it otherwise."""
    context.update(lang=g.lang, format_date=format_date, Outcome=Outcome)
    if request.headers.get("HX-Request"):
        return render_template(template, **context), status
    return render_template("desk/page.html", part=template, alerts=library_alerts(db.session, context["library"],
                                                                                 utcnow()), **context), status


@bp.get("/")
@login_required(*DESK_ROLES)
def start():
    libraries = libraries_of(g.user)
    if len(libraries) == 1:
        return redirect(url_for("desk.page", slug=libraries[0].slug))
    return render_template("desk/choose.html", libraries=libraries, lang=g.lang)


@bp.get("/<slug>/")
@login_required(*DESK_ROLES)
def page(slug: str):
    library = library_in_scope(slug)
    return _render("desk/_empty.html", library=library)


def _slip_result(library, issuance_id: int, result=None, replaced=None):
    """The slip on screen, sent to the desk's printer when it has one."""
    slip = slip_for_issuance(db.session, issuance_id, g.lang)
    setting = library.desk_printer
    db.session.commit()  # hold no database lock while the printer works
    in_browser, print_error = print_slip_with(setting, slip)
    if print_error:
        current_app.logger.warning("desk printer of %s failed: %s", library.slug, print_error)
    return _render("desk/_result.html", library=library, result=result, slip=slip, issuance_id=issuance_id,
                   qr=qr_svg(slip.activation_url), print_error=print_error, replaced=replaced,
                   browser_print=in_browser)


@bp.post("/<slug>/issue")
@login_required(*DESK_ROLES)
def issue(slug: str):
    library = library_in_scope(slug)
    note = request.form.get("note", "").strip()[:300]
    if request.form.get("proxy"):
        note = f"{PROXY_MARK} {note}".strip()
    try:
        result = issue_now(library.slug, request.form.get("card", ""), Channel.DESK, _actor(),
                           note=note or None)
    except DatabaseBusy:
        return _render("desk/_busy.html", library=library, status=503)
    if not result.has_code:
        return _render("desk/_refusal.html", library=library, result=result,
                       reason=CARD_REFUSALS.get(result.reason))
    return _slip_result(library, result.issuance_id, result=result)


@bp.route("/<slug>/lookup", methods=["GET", "POST"])
@login_required(*DESK_ROLES)
def lookup(slug: str):
    # A card number comes by POST only: it must not stay in URLs, logs or history.
    library = library_in_scope(slug)
    card = request.form.get("card", "").strip() if request.method == "POST" else ""
    code = request.values.get("code", "").strip()
    if card:
        rows = issuances_of_card(db.session, library, card, current_app.config["READER_PEPPER"])
    elif code:
        rows = issuances_of_code(db.session, library, code)
    else:
        rows = []
    return _render("desk/_lookup.html", library=library, rows=rows, searched=bool(card or code),
                   by_card=bool(card), today=local_day(utcnow(), library.timezone))


def _live_issuance(library, issuance_id: int) -> Issuance:
    """This library's issuance that is still live and in its window; a withdrawn
    code or last month's code must not be printed again."""
    issuance = db.session.get(Issuance, issuance_id)
    if issuance is None or issuance.library_id != library.id:
        abort(404)
    today = local_day(utcnow(), library.timezone)
    if issuance.voided_at is not None or not (issuance.window_start <= today <= issuance.window_end):
        abort(409)
    return issuance


@bp.post("/<slug>/reprint/<int:issuance_id>")
@login_required(*DESK_ROLES)
def reprint(slug: str, issuance_id: int):
    library = library_in_scope(slug)
    issuance = _live_issuance(library, issuance_id)
    issuance.print_count += 1
    record_event(db.session, kind="reprint", actor=_actor().label, library_id=library.id, now=utcnow(),
                 issuance_id=issuance.id, channel=Channel.DESK.value)
    db.session.commit()
    return _slip_result(library, issuance.id)


@bp.post("/<slug>/replace/<int:issuance_id>")
@login_required(*DESK_ROLES)
def replace(slug: str, issuance_id: int):
    library = library_in_scope(slug)
    row = issuance_row(db.session, library, issuance_id)
    if row is None:
        abort(404)
    reason = request.form.get("reason", "").strip()
    if not reason:
        return _render("desk/_lookup.html", library=library, rows=[row], searched=True, by_card=False,
                       error="reason_missing", status=400, today=local_day(utcnow(), library.timezone))
    try:
        result = replace_now(library.id, issuance_id, reason[:500], _actor())
    except NothingToReplace as exc:
        return _render("desk/_lookup.html", library=library, rows=[row], searched=True, by_card=False,
                       error=exc.reason, status=409, today=local_day(utcnow(), library.timezone))
    except DatabaseBusy:
        return _render("desk/_busy.html", library=library, status=503)
    return _slip_result(library, result.issuance_id, result=result, replaced=row)


@bp.get("/<slug>/slip/<int:issuance_id>.pdf")
@login_required(*DESK_ROLES)
def slip_pdf(slug: str, issuance_id: int):
    library = library_in_scope(slug)
    _live_issuance(library, issuance_id)
    paper = request.args.get("paper", "a6")
    if paper not in PAPERS:
        abort(404)
    slip = slip_for_issuance(db.session, issuance_id, g.lang)
    response = make_response(render_pdf(slip, paper))
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{slip.slip_id}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response
