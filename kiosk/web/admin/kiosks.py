"""A library's kiosks: add one (a one-time link and its QR code), a new link,
rename or change its printer, revoke."""
from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.app.links import enrol_url
from kiosk.app.units import write
from kiosk.domain.clock import utcnow
from kiosk.domain.kiosks import change_kiosk, check_kiosk_fields, enrol_kiosk, revoke_kiosk
from kiosk.domain.settings import SettingsRefused
from kiosk.storage.models import Kiosk, Library
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.common import page, printer_choices
from kiosk.wording.messages import describe_refusal
from printing.barcodes import qr_svg


def _kiosk_of(library: Library, kiosk_id: int) -> Kiosk:
    kiosk = db.session.get(Kiosk, kiosk_id)
    if kiosk is None or kiosk.library_id != library.id:
        abort(404)
    return kiosk


def _kiosk_page(library: Library, link: str | None = None, status: int = 200, error: str | None = None):
    kiosks = db.session.scalars(select(Kiosk).where(Kiosk.library_id == library.id).order_by(Kiosk.id)).all()
    return page("admin/kiosks.html", library=library, kiosks=kiosks, link=link, printers=printer_choices(),
                link_qr=qr_svg(link, scale=4) if link else None, error=error, status=status)


def _enrol_link(token: str) -> str:
    return enrol_url(token)  # from KIOSK_BASE_URL: never from the Host header


@bp.get("/<slug>/kiosks")
@login_required(*ADMIN_ROLES)
def kiosks(slug: str):
    return _kiosk_page(library_in_scope(slug))


@bp.post("/<slug>/kiosks")
@login_required(*ADMIN_ROLES)
def kiosk_add(slug: str):
    library = library_in_scope(slug)
    try:
        name, printer = check_kiosk_fields(request.form.get("name", "").strip() or _("Kiosk"),
                                           request.form.get("printer", "browser"), printer_choices())
    except SettingsRefused as refused:
        return _kiosk_page(library, error=describe_refusal(refused), status=400)
    library_id, actor = library.id, staff_actor()
    token = write(lambda s: enrol_kiosk(s, library_id=library_id, name=name, printer=printer, actor=actor,
                                        now=utcnow()).token)
    return _kiosk_page(library, link=_enrol_link(token))


@bp.post("/<slug>/kiosks/<int:kiosk_id>")
@login_required(*ADMIN_ROLES)
def kiosk_change(slug: str, kiosk_id: int):
    library = library_in_scope(slug)
    kiosk = _kiosk_of(library, kiosk_id)
    library_id, actor, action = library.id, staff_actor(), request.form.get("action")
    if action == "revoke":
        write(lambda s: revoke_kiosk(s, kiosk_id, actor, utcnow()))
    elif action == "link":
        token = write(lambda s: enrol_kiosk(s, library_id=library_id, name=kiosk.name, actor=actor, now=utcnow(),
                                            kiosk_id=kiosk_id).token)
        return _kiosk_page(library, link=_enrol_link(token))
    elif action == "save":
        try:
            name, printer = check_kiosk_fields(request.form.get("name", ""),
                                               request.form.get("printer", kiosk.printer), printer_choices(),
                                               current_printer=kiosk.printer)
        except SettingsRefused as refused:
            return _kiosk_page(library, error=describe_refusal(refused), status=400)
        write(lambda s: change_kiosk(s, kiosk_id, name=name, printer=printer, actor=actor, now=utcnow()))
    else:
        abort(400)
    return redirect(url_for("admin.kiosks", slug=library.slug))

