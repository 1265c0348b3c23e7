"""A library's API keys for its own systems (kiosk.web.api): make one (its secret
shown once), revoke one, see each key's limit and last use. A consortium admin also
sees and makes the consortium's keys, which may name any library."""
from __future__ import annotations

from flask import abort, g, redirect, request, url_for

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.domain.api_keys import DEFAULT_PER_MINUTE, ApiKeyRefused, NewKey, create_key, live_keys, revoke_key
from kiosk.domain.clock import utcnow
from kiosk.storage.models import Library, Role
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.common import page
from kiosk.wording.messages import describe_refusal


def _may_see_consortium_keys() -> bool:
    return g.user.role == Role.CONSORTIUM_ADMIN


def _keys_page(library: Library, created: NewKey | None = None, error: str | None = None, status: int = 200):
    scopes = [library.id, None] if _may_see_consortium_keys() else [library.id]
    keys = live_keys(db.session, scopes)
    return page("admin/api_keys.html", library=library, keys=[k for k in keys if k.library is not None],
                consortium_keys=[k for k in keys if k.library is None], consortium=_may_see_consortium_keys(),
                created=created, error=error, default_per_minute=DEFAULT_PER_MINUTE, status=status)


@bp.get("/<slug>/api-keys")
@login_required(*ADMIN_ROLES)
def api_keys(slug: str):
    return _keys_page(library_in_scope(slug))


@bp.post("/<slug>/api-keys")
@login_required(*ADMIN_ROLES)
def api_key_add(slug: str):
    library = library_in_scope(slug)
    for_consortium = request.form.get("scope") == "consortium"
    if for_consortium and not _may_see_consortium_keys():
        abort(403)
    library_id = None if for_consortium else library.id
    name, per_minute, actor = request.form.get("name", ""), request.form.get("per_minute", ""), staff_actor()
    try:
        created = write(lambda s: create_key(s, library_id=library_id, name=name, per_minute=per_minute,
                                             actor=actor, now=utcnow()))
    except ApiKeyRefused as refused:
        return _keys_page(library, error=describe_refusal(refused), status=400)
    return _keys_page(library, created=created)


@bp.post("/<slug>/api-keys/<int:key_id>/revoke")
@login_required(*ADMIN_ROLES)
def api_key_revoke(slug: str, key_id: int):
    library = library_in_scope(slug)
    for_consortium = request.form.get("scope") == "consortium"
    if for_consortium and not _may_see_consortium_keys():
        abort(404)
    library_id, actor = (None if for_consortium else library.id), staff_actor()
    try:
        write(lambda s: revoke_key(s, library_id=library_id, key_id=key_id, actor=actor, now=utcnow()))
    except ApiKeyRefused:
        abort(404)  # another library's key, or one revoked already: nothing of it is shown
    return redirect(url_for("admin.api_keys", slug=library.slug))
