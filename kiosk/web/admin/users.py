"""A library's staff accounts: add (a generated password shown once), change the
role, disable or enable."""
from __future__ import annotations

from flask import abort, g, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.domain.accounts import (LIBRARY_ROLES, AccountRefused, create_user, reset_password, set_active,
                                   set_role)
from kiosk.domain.clock import utcnow
from kiosk.storage.models import Library, StaffUser
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.common import page
from kiosk.wording.messages import describe_refusal

ROLES = [role.value for role in LIBRARY_ROLES]


def _user_of(library: Library, user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    if user is None or user.library_id != library.id:
        abort(404)
    return user


def _users_page(library: Library, created: tuple | None = None, error: str | None = None, status: int = 200,
                reset: tuple | None = None):
    users = db.session.scalars(select(StaffUser).where(StaffUser.library_id == library.id)
                               .order_by(StaffUser.username)).all()
    return page("admin/users.html", library=library, users=users, roles=ROLES, created=created, error=error,
                status=status, reset=reset)


@bp.get("/<slug>/users")
@login_required(*ADMIN_ROLES)
def users(slug: str):
    return _users_page(library_in_scope(slug))


@bp.post("/<slug>/users")
@login_required(*ADMIN_ROLES)
def user_add(slug: str):
    library = library_in_scope(slug)
    role, username, library_id, actor = request.form.get("role", ""), request.form.get("username", ""), \
        library.id, staff_actor()
    if role not in ROLES:
        abort(400)
    try:
        created = write(lambda s: (lambda user, password: (user.username, password))(
            *create_user(s, username=username, role=role, library_id=library_id, actor=actor, now=utcnow(),
                         must_change_password=True)))
    except AccountRefused as refused:
        return _users_page(library, error=describe_refusal(refused), status=400)
    return _users_page(library, created=created)


@bp.post("/<slug>/users/<int:user_id>")
@login_required(*ADMIN_ROLES)
def user_change(slug: str, user_id: int):
    library = library_in_scope(slug)
    username = _user_of(library, user_id).username
    action, actor = request.form.get("action"), staff_actor()
    if user_id == g.user.id and action in ("disable", "role", "reset"):
        return _users_page(library, error=_("Własnego konta nie można tu wyłączyć ani zmienić mu roli."),
                           status=400)
    if action == "reset":
        password = write(lambda s: reset_password(s, user_id, actor, utcnow()))
        return _users_page(library, reset=(username, password))
    if action == "role" and request.form.get("role") in ROLES:
        role = request.form["role"]
        write(lambda s: set_role(s, user_id, role, actor, utcnow()))
    elif action in ("disable", "enable"):
        write(lambda s: set_active(s, user_id, action == "enable", actor, utcnow()))
    else:
        abort(400)
    return redirect(url_for("admin.users", slug=library.slug))
