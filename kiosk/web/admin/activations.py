"""Marking codes as activated from a platform's list: the admin uploads the list
the platform's panel gives, for one platform, and sees what was marked and the
library's latest such imports. The file is read before any transaction opens."""
from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.domain.activations import import_activations, prepare_activations, recent_activation_imports
from kiosk.domain.clock import utcnow
from kiosk.domain.pool_files import ImportRefused
from kiosk.domain.refusals import Problem
from kiosk.domain.settings import SettingProblem
from kiosk.storage.models import Library, Platform
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.common import IN_WORDS
from kiosk.web.edge import upload_name
from kiosk.web.fragments import render_part
from kiosk.wording.messages import activations_imported, describe, describe_refusal

PLATFORM = "legimi"


def _render(library: Library, status: int = 200, platform: str = PLATFORM, **context):
    """The result and the latest imports for htmx; the whole page around them otherwise."""
    library_id = library.id
    return render_part(
        "admin/_activations.html", "admin/activations.html", status,
        page_context={"platforms": lambda: db.session.scalars(select(Platform).order_by(Platform.name)).all()},
        library=library, platform=platform, recent=recent_activation_imports(db.session, library_id),
        **IN_WORDS, **context)


@bp.route("/<slug>/activations", methods=["GET", "POST"])
@login_required(*ADMIN_ROLES)
def activations(slug: str):
    library = library_in_scope(slug)
    if request.method == "GET":
        return _render(library)
    slug_given = request.form.get("platform", PLATFORM).strip()[:40]
    platform = db.session.scalar(select(Platform).where(Platform.slug == slug_given))
    if platform is None:
        return _render(library, 400, error=describe(Problem(SettingProblem.PLATFORM, {"value": slug_given})))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _render(library, 400, platform=platform.slug, error=_("Wybierz plik."))
    data, filename, actor = upload.read(), upload_name(upload.filename), staff_actor()
    library_id, platform_id, platform_slug = library.id, platform.id, platform.slug
    db.session.rollback()  # read the file outside any transaction
    try:
        prepared = prepare_activations(data)
        report = write(lambda s: import_activations(s, library_id=library_id, platform_id=platform_id,
                                                    prepared=prepared, filename=filename, actor=actor,
                                                    now=utcnow()))
    except ImportRefused as refused:
        return _render(library, 400, platform=platform_slug, error=describe_refusal(refused))
    return _render(library, platform=platform_slug, report=report, summary=activations_imported(report))
