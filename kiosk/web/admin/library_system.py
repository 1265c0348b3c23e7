"""A library's library system (SIP2) in the panel: the connection's settings (the
password never shown back) and the connection test, which asks about one card as
a kiosk would and issues nothing."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from kiosk.app.extensions import db
from kiosk.app.units import pepper, write
from kiosk.domain.clock import utcnow
from kiosk.domain.library_system import check_card_now
from kiosk.domain.sip2_settings import Sip2Refused, current_sip2, parse_sip2_settings, save_sip2_settings
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.settings import settings_context, settings_page
from kiosk.web.fragments import render_part
from kiosk.wording.library_system import card_check_facts
from kiosk.wording.messages import CARD_REFUSALS, describe

FIELDS = ("host", "port", "ca_file", "login_user", "password", "institution", "location", "encoding", "timeout",
          "on_failure")


@bp.post("/<slug>/sip2")
@login_required(*ADMIN_ROLES)
def sip2_save(slug: str):
    library = library_in_scope(slug)
    library_id = library.id
    values = {key: request.form.get(key, "") for key in FIELDS}
    # Unticked boxes are absent from a form: absent here means "off".
    values.update(tls=bool(request.form.get("tls")), require_pin=bool(request.form.get("require_pin")))
    try:
        form = parse_sip2_settings(values, current_sip2(db.session, library_id))
    except Sip2Refused as refused:
        typed = {key: value for key, value in values.items() if key != "password"}  # never sent back
        return settings_page(library, [describe(problem) for problem in refused.problems], 400, sip2_typed=typed)
    actor, reader_pepper = staff_actor(), pepper()
    write(lambda s: save_sip2_settings(s, library_id, form, pepper=reader_pepper, actor=actor, now=utcnow()))
    flash(_("Zapisano połączenie z systemem biblioteki. Karty są teraz sprawdzane przez SIP2."))
    return redirect(url_for("admin.settings", slug=slug) + "#sip2")


@bp.post("/<slug>/sip2/check")
@login_required(*ADMIN_ROLES)
def sip2_check(slug: str):
    """The card only in the POST body, never in a URL; the PIN goes to the library
    system once and is shown nowhere."""
    library = library_in_scope(slug)
    card, pin = request.form.get("card", "")[:64], request.form.get("pin") or None
    report = check_card_now(db.session, library, card, pin=pin, pepper=pepper(), now=utcnow())
    check = {"accepted": report.accepted, "ms": f"{report.ms:.0f}", "facts": card_check_facts(report),
             "reason": None if report.accepted else str(CARD_REFUSALS[report.reason])}
    library = library_in_scope(slug)  # the check ended the request's reads
    # Values, not callables, for the page: render_part calls what is callable.
    context = {key: (lambda value=value: value) for key, value in settings_context(library).items()
               if key != "library"}
    return render_part("admin/_sip2_check.html", "admin/settings.html", page_context=context,
                       library=library, check=check)
