"""A library's settings, and the upload of its card registry."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from kiosk.app.extensions import db
from kiosk.app.units import pepper, write
from kiosk.domain.cards import CHECK_DIGITS
from kiosk.domain.clock import utcnow
from kiosk.domain.pool_files import ImportRefused
from kiosk.domain.registry import import_cards, prepare_cards
from kiosk.domain.settings import (LibrarySettings, SettingsRefused, parse_library_settings,
                                   save_library_settings)
from kiosk.storage.models import CardCheckKind, Library
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.domain.sip2_settings import ENCODINGS, current_sip2
from kiosk.web.admin.common import IN_WORDS, printer_choices
from kiosk.wording.library_system import ON_FAILURE_NAMES
from kiosk.wording.messages import cards_imported, describe, describe_refusal

FIELDS = ("name", "slip_header", "card_check", "card_pattern", "check_digit", "low_pool_percent",
          "kiosk_idle_seconds", "desk_printer")


def settings_context(library: Library, sip2_typed: dict | None = None) -> dict:
    """What the settings page needs besides its fragments (kiosk.web.admin.library_system
    adds one). The SIP2 form shows what was typed when it was refused, else what is saved."""
    saved = current_sip2(db.session, library.id)
    return dict(IN_WORDS, library=library, check_digits=sorted(CHECK_DIGITS),
                card_checks=[k.value for k in CardCheckKind], printers=printer_choices(),
                sip2=saved, sip2_values=sip2_typed or sip2_form_values(saved), encodings=ENCODINGS,
                on_failure_names=ON_FAILURE_NAMES)


def sip2_form_values(saved) -> dict:
    """The SIP2 form's fields as text, from the saved settings (or the defaults)."""
    if saved is None:
        return {"port": "6001", "encoding": "utf-8", "timeout": "3", "on_failure": "refuse"}
    return {"host": saved.host, "port": str(saved.port), "tls": saved.tls, "ca_file": saved.ca_file or "",
            "login_user": saved.login_user or "", "institution": saved.institution, "location": saved.location or "",
            "encoding": saved.encoding, "timeout": f"{saved.timeout:g}", "on_failure": saved.on_failure.value,
            "require_pin": saved.require_pin}


def settings_page(library: Library, errors: list[str] | None = None, status: int = 200,
                  sip2_typed: dict | None = None):
    return render_template("admin/settings.html", errors=errors, **settings_context(library, sip2_typed)), status


@bp.get("/<slug>/settings")
@login_required(*ADMIN_ROLES)
def settings(slug: str):
    return settings_page(library_in_scope(slug))


@bp.post("/<slug>/settings")
@login_required(*ADMIN_ROLES)
def settings_save(slug: str):
    library = library_in_scope(slug)
    values = {key: request.form[key] for key in FIELDS if key in request.form}
    try:
        settings = parse_library_settings(values, LibrarySettings.of(library), printer_choices())
    except SettingsRefused as refused:
        return settings_page(library, [describe(problem) for problem in refused.problems], 400)
    library_id, actor = library.id, staff_actor()
    try:
        write(lambda s: save_library_settings(s, library_id, settings, actor, utcnow()))
    except SettingsRefused as refused:  # "sip2" chosen before the connection is set
        return settings_page(library, [describe(problem) for problem in refused.problems], 400)
    flash(_("Zapisano ustawienia."))
    return redirect(url_for("admin.settings", slug=slug))


@bp.post("/<slug>/cards")
@login_required(*ADMIN_ROLES)
def cards_upload(slug: str):
    library = library_in_scope(slug)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        abort(400)
    data, library_id, actor = upload.read(), library.id, staff_actor()
    pattern, check_digit = library.card_pattern, library.card_check_digit
    db.session.rollback()  # read the file outside any transaction
    try:
        prepared = prepare_cards(data, card_pattern=pattern, check_digit=check_digit, pepper=pepper())
        result = write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=actor,
                                              now=utcnow()))
    except ImportRefused as refused:
        return settings_page(library, [describe_refusal(refused)], 400)
    summary = cards_imported(result.count, result.blocked, result.with_expiry, result.facts)
    flash(_("Rejestr kart: %(summary)s", summary=summary))
    return redirect(url_for("admin.settings", slug=slug))
