"""The consortium admin's overview: every library, adding one, the consortium's
settings and the report across libraries."""
from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.domain.clock import DEFAULT_TIMEZONE, local_day, utcnow
from kiosk.domain.dashboard import report_month
from kiosk.domain.libraries import add_library
from kiosk.domain.reports import monthly_report
from kiosk.domain.settings import (SettingsRefused, current_consortium_settings, parse_consortium_settings,
                                   parse_new_library, save_consortium_settings)
from kiosk.storage.models import Library, Role
from kiosk.web.access import ADMIN_ROLES, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.common import month_arg, page
from kiosk.web.admin.reports import xlsx_response
from kiosk.wording.messages import describe_refusal

PLATFORM = "legimi"


@bp.get("/")
@login_required(*ADMIN_ROLES)
def overview():
    if g.user.role != Role.CONSORTIUM_ADMIN:
        return redirect(url_for("admin.dashboard", slug=g.user.library.slug))
    libraries = db.session.scalars(select(Library).order_by(Library.name)).all()
    today = local_day(utcnow())
    return page("admin/overview.html", libraries=libraries,
                month=report_month(db.session, None, today, DEFAULT_TIMEZONE),
                settings=current_consortium_settings(db.session, PLATFORM))


@bp.post("/libraries")
@login_required(Role.CONSORTIUM_ADMIN)
def create_library():
    actor = staff_actor()
    try:
        new = parse_new_library(slug=request.form.get("slug", ""), name=request.form.get("name", ""))
        slug = write(lambda s: add_library(s, new, actor=actor, now=utcnow()).slug)
    except SettingsRefused as refused:
        flash(_("Nie dodano biblioteki: %(why)s", why=describe_refusal(refused)))
        return redirect(url_for("admin.overview"))
    return redirect(url_for("admin.dashboard", slug=slug))


@bp.post("/consortium")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_settings():
    actor = staff_actor()
    fields = ("name", "service_end", "activation_url")
    try:
        settings = parse_consortium_settings({key: request.form.get(key, "") for key in fields},
                                             current_consortium_settings(db.session, PLATFORM))
    except SettingsRefused as refused:
        flash(describe_refusal(refused) + " " + _("Nic nie zapisano."))
        return redirect(url_for("admin.overview"))
    write(lambda s: save_consortium_settings(s, settings, PLATFORM, actor, utcnow()))
    flash(_("Zapisano ustawienia."))
    return redirect(url_for("admin.overview"))


@bp.get("/report.xlsx")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_report():
    first, _last = month_arg()
    data = monthly_report(db.session, year=first.year, month=first.month, library_ids=None, now=utcnow())
    return xlsx_response(data, f"kodomat-{first:%Y-%m}.xlsx")
