"""The staff desk: issue for a reader at the desk, look up who got which code,
reprint, replace a faulty code. Every URL names its library and is scoped."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, make_response, redirect, render_template, request, url_for

from kiosk.app.extensions import db
from kiosk.app.units import pepper, write
from kiosk.domain.alerts import library_alerts
from kiosk.domain.clock import utcnow
from kiosk.domain.issuing import Outcome, UnknownLibrary, issue_code, replace_code
from kiosk.domain.library_system import ask_before_issuing
from kiosk.domain.pools import availability
from kiosk.domain.lookups import issuance_row, issuances_of_card, issuances_of_code
from kiosk.domain.reprints import IssuanceRefusal, IssuanceRefused, printable_issuance, reprint as reprint_issuance
from kiosk.storage.database import DatabaseBusy
from kiosk.storage.models import Channel, Library
from kiosk.web.access import DESK_ROLES, libraries_of, library_in_scope, login_required, staff_actor
from kiosk.web.fragments import render_part
from kiosk.wording.languages import language_from
from kiosk.wording.messages import CARD_REFUSALS, describe_refusal
from kiosk.wording.slips import slip_for_issuance
from printing.barcodes import qr_svg
from printing.printers import print_slip_with

bp = Blueprint("desk", __name__, url_prefix="/desk")

# Stored with the issuance, so "who collected it" survives in the log and lookups.
PROXY_MARK = "[pełnomocnik]"


def _render(template: str, library: Library, status: int = 200, **context):
    """The fragment for htmx; the whole desk page around it otherwise."""
    return render_part(template, "desk/page.html", status,
                       page_context={"alerts": lambda: library_alerts(db.session, library, utcnow()),
                                     "platforms_offered": lambda: availability(db.session, library.id, utcnow())},
                       library=library, Outcome=Outcome, **context)


@bp.get("/")
@login_required(*DESK_ROLES)
def start():
    libraries = libraries_of(g.user)
    if len(libraries) == 1:
        return redirect(url_for("desk.page", slug=libraries[0].slug))
    return render_template("desk/choose.html", libraries=libraries)


@bp.get("/<slug>/")
@login_required(*DESK_ROLES)
def page(slug: str):
    return _render("desk/_empty.html", library_in_scope(slug))


def _slip_language() -> str:
    """The reader's language for the slip, chosen at the desk apart from the staff's own."""
    return language_from(request.values.get("slip_lang") or request.values.get("lang"))


def _slip_result(library: Library, issuance_id: int, result=None, replaced=None):
    """The slip on screen, sent to the desk's printer when it has one."""
    slip = slip_for_issuance(db.session, issuance_id, _slip_language())
    setting = library.desk_printer
    db.session.rollback()  # hold no database transaction while the printer works
    in_browser, print_error = print_slip_with(setting, slip)
    if print_error:
        current_app.logger.warning("desk printer of %s failed: %s", library.slug, print_error)
    return _render("desk/_result.html", library, result=result, slip=slip, issuance_id=issuance_id,
                   qr=qr_svg(slip.activation_url), print_error=print_error, replaced=replaced,
                   browser_print=in_browser)


@bp.post("/<slug>/issue")
@login_required(*DESK_ROLES)
def issue(slug: str):
    library = library_in_scope(slug)
    note = request.form.get("note", "").strip()[:300]
    if request.form.get("proxy"):
        note = f"{PROXY_MARK} {note}".strip()
    card, actor, library_slug = request.form.get("card", ""), staff_actor(), library.slug
    platform = request.form.get("platform") or availability(db.session, library.id, utcnow()).default_platform
    try:
        # Staff see the card and the reader: the desk asks the library system, never a PIN.
        answer = ask_before_issuing(db.session, library_slug, card, pin=None, pepper=pepper(), now=utcnow())
        result = write(lambda s: issue_code(s, library_slug=library_slug, card_number=card, channel=Channel.DESK,
                                            actor=actor, now=utcnow(), pepper=pepper(), note=note or None,
                                            platform_slug=platform, answer=answer), late_lock=True)
    except DatabaseBusy:
        return _render("desk/_busy.html", library, status=503)
    except UnknownLibrary:
        abort(400)  # a platform no form offers
    if not result.has_code:
        return _render("desk/_refusal.html", library, result=result, reason=CARD_REFUSALS.get(result.reason))
    return _slip_result(library, result.issuance_id, result=result)


@bp.route("/<slug>/lookup", methods=["GET", "POST"])
@login_required(*DESK_ROLES)
def lookup(slug: str):
    # A card number comes by POST only: it must not stay in URLs, logs or history.
    library = library_in_scope(slug)
    card = request.form.get("card", "").strip() if request.method == "POST" else ""
    code = request.values.get("code", "").strip()
    if card:
        rows = issuances_of_card(db.session, library, card, pepper(), utcnow())
    elif code:
        rows = issuances_of_code(db.session, library, code, utcnow())
    else:
        rows = []
    return _render("desk/_lookup.html", library, rows=rows, searched=bool(card or code), by_card=bool(card))


def _refused(library: Library, refused: IssuanceRefused, issuance_id: int):
    """A reprint or replacement the rule does not allow: why, beside the issuance."""
    row = issuance_row(db.session, library, issuance_id, utcnow())
    if row is None:
        abort(404)  # another library's issuance looks like no issuance at all
    status = 400 if refused.reason is IssuanceRefusal.REASON_MISSING else 409
    return _render("desk/_lookup.html", library, status=status, rows=[row], searched=True,
                   by_card=False, error=describe_refusal(refused))


@bp.post("/<slug>/reprint/<int:issuance_id>")
@login_required(*DESK_ROLES)
def reprint(slug: str, issuance_id: int):
    library = library_in_scope(slug)
    library_id, actor = library.id, staff_actor()
    try:
        write(lambda s: reprint_issuance(s, issuance_id=issuance_id, library_id=library_id, actor=actor,
                                         channel=Channel.DESK, now=utcnow()))
    except IssuanceRefused as refused:
        return _refused(library, refused, issuance_id)
    return _slip_result(library, issuance_id)


@bp.post("/<slug>/replace/<int:issuance_id>")
@login_required(*DESK_ROLES)
def replace(slug: str, issuance_id: int):
    library = library_in_scope(slug)
    row = issuance_row(db.session, library, issuance_id, utcnow())
    library_id, actor, reason = library.id, staff_actor(), request.form.get("reason", "")
    try:
        result = write(lambda s: replace_code(s, library_id=library_id, issuance_id=issuance_id, reason=reason,
                                              actor=actor, now=utcnow()))
    except IssuanceRefused as refused:
        return _refused(library, refused, issuance_id)
    except DatabaseBusy:
        return _render("desk/_busy.html", library, status=503)
    return _slip_result(library, result.issuance_id, result=result, replaced=row)


@bp.get("/<slug>/slip/<int:issuance_id>.pdf")
@login_required(*DESK_ROLES)
def slip_pdf(slug: str, issuance_id: int):
    from printing.pdf import PAPERS, render_pdf  # reportlab: loaded by the first PDF, not by every worker

    library = library_in_scope(slug)
    paper = request.args.get("paper", "a6")
    try:
        printable_issuance(db.session, issuance_id, library.id, utcnow())
    except IssuanceRefused as refused:
        return _refused(library, refused, issuance_id)
    if paper not in PAPERS:
        abort(404)
    slip = slip_for_issuance(db.session, issuance_id, _slip_language())
    response = make_response(render_pdf(slip, paper))
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{slip.slip_id}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response
