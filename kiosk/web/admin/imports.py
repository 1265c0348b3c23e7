"""Importing a month's pool: upload → preview (every check, nothing written) →
confirm (the same checks, all or nothing). The admin chooses the platform the
codes are for (Legimi unless told); it goes with the file's signed token from
the preview to the confirmation. The file is read before any transaction opens."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.domain.clock import parse_month, utcnow
from kiosk.domain.pool_files import ImportRefused, prepare_pool
from kiosk.domain.pools import import_pool, preview_pool
from kiosk.storage.models import Library, Platform, Pool
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp, uploads
from kiosk.web.admin.common import page
from kiosk.web.edge import upload_name
from kiosk.wording.messages import codes_imported, describe_refusal

DEFAULT_PLATFORM = "legimi"


def _platforms() -> list[tuple[str, str]]:
    """(slug, name) of every platform, for the form's choice."""
    return [tuple(row) for row in db.session.execute(select(Platform.slug, Platform.name).order_by(Platform.name))]


def _platform(slug: str) -> Platform | None:
    return db.session.scalar(select(Platform).where(Platform.slug == slug))


def _form(library: Library, error: str | None = None, status: int = 400, platform: str = DEFAULT_PLATFORM):
    return page("admin/import.html", library=library, error=error, status=status, platforms=_platforms(),
                chosen=platform)


@bp.route("/<slug>/import", methods=["GET", "POST"])
@login_required(*ADMIN_ROLES)
def import_upload(slug: str):
    library = library_in_scope(slug)
    if request.method == "GET":
        return _form(library, status=200)
    platform_slug = request.form.get("platform", DEFAULT_PLATFORM)
    platform = _platform(platform_slug)
    if platform is None:
        return _form(library, _("Wybierz platformę z listy."))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _form(library, _("Wybierz plik."), platform=platform_slug)
    month = request.form.get("month", "").strip()
    try:
        window = parse_month(month) if month else None
    except ValueError:
        return _form(library, _("Miesiąc podaj jako RRRR-MM."), platform=platform_slug)
    data, library_id, platform_id, filename = upload.read(), library.id, platform.id, upload_name(upload.filename)
    platform_name = platform.name
    db.session.rollback()  # read the file outside any transaction
    try:
        prepared = prepare_pool(data, filename, window)
        report = preview_pool(db.session, library_id=library_id, platform_id=platform_id, prepared=prepared)
    except ImportRefused as refused:
        return _form(library, describe_refusal(refused), platform=platform_slug)
    token = uploads.keep(library_id, data, filename, window, platform_slug)
    return page("admin/import_preview.html", library=library, report=report, token=token,
                platform_name=platform_name)


@bp.post("/<slug>/import/confirm")
@login_required(*ADMIN_ROLES)
def import_confirm(slug: str):
    library = library_in_scope(slug)
    try:
        upload = uploads.Upload(request.form.get("token", ""), library.id)
    except LookupError:
        return _form(library, _("Podgląd wygasł. Wyślij plik jeszcze raz."))
    except PermissionError:
        abort(404)
    platform = _platform(upload.platform)
    if platform is None:  # removed since the preview
        return _form(library, _("Wybierz platformę z listy."))
    data = upload.read()
    if data is None:
        # A second press of "Importuj" (or the back button) after it worked.
        done = db.session.scalar(select(Pool.id).where(Pool.library_id == library.id, Pool.platform_id == platform.id,
                                                       Pool.source_sha256 == upload.sha256))
        if done is None:
            return _form(library, _("Podgląd wygasł. Wyślij plik jeszcze raz."))
        flash(_("Ten plik jest już zaimportowany."))
        return redirect(url_for("admin.dashboard", slug=library.slug))
    library_id, platform_id, actor = library.id, platform.id, staff_actor()
    db.session.rollback()  # read the file outside any transaction
    try:
        prepared = prepare_pool(data, upload.filename, upload.window)
        report = write(lambda s: import_pool(s, library_id=library_id, platform_id=platform_id, prepared=prepared,
                                             actor=actor, now=utcnow()))
    except ImportRefused as refused:
        return _form(library, describe_refusal(refused))
    finally:
        upload.discard()
    flash(codes_imported(report.count, report.valid_from, report.valid_until))
    return redirect(url_for("admin.dashboard", slug=library.slug))
