"""The consortium admin's overview: every library, adding one, the consortium's
settings (with each platform's activation URL) and the report across libraries."""
from __future__ import annotations

from dataclasses import replace

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.domain.clock import DEFAULT_TIMEZONE, local_day, utcnow
from kiosk.domain.dashboard import report_month
from kiosk.domain.libraries import add_library
from kiosk.domain.settings import (RETENTION_RANGE, SettingsRefused, current_consortium_settings,
                                   parse_consortium_settings, parse_new_library, save_consortium_settings)
from kiosk.storage.models import Library, Platform, Role
from kiosk.web.access import ADMIN_ROLES, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.common import month_arg, page
from kiosk.web.admin.reports import xlsx_response
from kiosk.wording.messages import describe_refusal

DEFAULT_PLATFORM = "legimi"


def _platforms() -> list[Platform]:
    """Every platform, the default one first: its row of the log also carries a
    change of the name or the service end."""
    return sorted(db.session.scalars(select(Platform)), key=lambda p: (p.slug != DEFAULT_PLATFORM, p.name))


@bp.get("/")
@login_required(*ADMIN_ROLES)
def overview():
    if g.user.role != Role.CONSORTIUM_ADMIN:
        return redirect(url_for("admin.dashboard", slug=g.user.library.slug))
    libraries = db.session.scalars(select(Library).order_by(Library.name)).all()
    today = local_day(utcnow())
    return page("admin/overview.html", libraries=libraries,
                month=report_month(db.session, None, today, DEFAULT_TIMEZONE),
                settings=current_consortium_settings(db.session, DEFAULT_PLATFORM), platforms=_platforms(),
                retention_range=RETENTION_RANGE)


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
    """The name and service end, and each platform's activation URL (a platform
    whose field is not sent keeps its URL): all saved, or nothing."""
    actor = staff_actor()
    platforms, problems, urls = _platforms(), [], {}
    try:
        general = parse_consortium_settings({key: request.form.get(key, "") for key in ("name", "service_end", "retention_months")},
                                            current_consortium_settings(db.session, DEFAULT_PLATFORM))
    except SettingsRefused as refused:
        problems.append(describe_refusal(refused))
    for platform in platforms:
        try:
            urls[platform.slug] = parse_consortium_settings(
                {"activation_url": request.form.get(f"activation_url-{platform.slug}")},
                current_consortium_settings(db.session, platform.slug)).activation_url
        except SettingsRefused as refused:
            problems.append(f"{platform.name}: {describe_refusal(refused)}")
    if problems:
        flash(" ".join(problems) + " " + _("Nic nie zapisano."))
        return redirect(url_for("admin.overview"))
    write(lambda s: [save_consortium_settings(s, replace(general, activation_url=url), slug, actor, utcnow())
                     for slug, url in urls.items()])
    flash(_("Zapisano ustawienia."))
    return redirect(url_for("admin.overview"))


@bp.get("/report.xlsx")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_report():
    first, _last = month_arg()
    from kiosk.domain.reports import monthly_report  # openpyxl: loaded by the first report, not by every worker

    data = monthly_report(db.session, year=first.year, month=first.month, library_ids=None, now=utcnow())
    return xlsx_response(data, f"kodomat-{first:%Y-%m}.xlsx")
