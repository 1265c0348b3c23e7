"""Importing a month's pool: upload → preview (every check, nothing written) →
confirm (the same checks, all or nothing). The file is read before any
transaction opens."""
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

PLATFORM = "legimi"


def _platform_id() -> int:
    return db.session.scalar(select(Platform.id).where(Platform.slug == PLATFORM))


def _form(library: Library, error: str, status: int = 400):
    return page("admin/import.html", library=library, error=error, status=status)


@bp.route("/<slug>/import", methods=["GET", "POST"])
@login_required(*ADMIN_ROLES)
def import_upload(slug: str):
    library = library_in_scope(slug)
    if request.method == "GET":
        return page("admin/import.html", library=library)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _form(library, _("Wybierz plik."))
    month = request.form.get("month", "").strip()
    try:
        window = parse_month(month) if month else None
    except ValueError:
        return _form(library, _("Miesiąc podaj jako RRRR-MM."))
    data, library_id, platform_id, filename = upload.read(), library.id, _platform_id(), upload_name(upload.filename)
    db.session.rollback()  # read the file outside any transaction
    try:
        prepared = prepare_pool(data, filename, window)
        report = preview_pool(db.session, library_id=library_id, platform_id=platform_id, prepared=prepared)
    except ImportRefused as refused:
        return _form(library, describe_refusal(refused))
    token = uploads.keep(library_id, data, filename, window)
    return page("admin/import_preview.html", library=library, report=report, token=token)


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
    data = upload.read()
    if data is None:
        # A second press of "Importuj" (or the back button) after it worked.
        done = db.session.scalar(select(Pool.id).where(Pool.library_id == library.id,
                                                       Pool.source_sha256 == upload.sha256))
        if done is None:
            return _form(library, _("Podgląd wygasł. Wyślij plik jeszcze raz."))
        flash(_("Ten plik jest już zaimportowany."))
        return redirect(url_for("admin.dashboard", slug=library.slug))
    library_id, platform_id, actor = library.id, _platform_id(), staff_actor()
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
