"""Who is signed in, what they may do, and which library a URL may name.

Every staff URL names its library (/desk/<slug>/…); library_in_scope answers 404
for a library the user does not serve, so another library's data is never shown
nor changed, and its existence not confirmed."""
from __future__ import annotations

from functools import wraps

from flask import abort, g, redirect, request, session, url_for
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.domain.actors import Actor
from kiosk.web.fragments import is_fragment_request
from kiosk.wording.languages import language_from
from kiosk.storage.models import Library, Role, StaffUser

DESK_ROLES = (Role.DESK, Role.LIBRARY_ADMIN, Role.CONSORTIUM_ADMIN)
ADMIN_ROLES = (Role.LIBRARY_ADMIN, Role.CONSORTIUM_ADMIN)
PASSWORD_ENDPOINT = "auth.password"  # the one staff page open before a generated password is changed


def sign_in(user: StaffUser) -> None:
    session.clear()  # a new session id for the signed-in user
    session.permanent = True
    session["uid"], session["ver"] = user.id, user.session_version


def current_user() -> StaffUser | None:
    uid = session.get("uid")
    if uid is None:
        return None
    user = db.session.get(StaffUser, uid)
    if user is None or not user.active or user.session_version != session.get("ver"):
        session.clear()
        return None
    return user


def staff_language() -> None:
    g.lang = language_from(session.get("lang"))


def login_required(*roles: str):
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            staff_language()
            g.user = current_user()
            if g.user is None:
                target = url_for("auth.login", next=request.path)
                if is_fragment_request():
                    # A fragment request: send the whole page to the login form.
                    return "", 401, {"HX-Redirect": target}
                return redirect(target)
            if g.user.must_change_password and request.endpoint != PASSWORD_ENDPOINT:
                # A generated password is the user's own only once they have changed it.
                target = url_for(PASSWORD_ENDPOINT)
                if is_fragment_request():
                    return "", 401, {"HX-Redirect": target}
                return redirect(target)
            if roles and g.user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorate


def staff_actor() -> Actor:
    return Actor.staff(g.user.id, g.user.username)


def library_in_scope(slug: str) -> Library:
    library = db.session.scalar(select(Library).where(Library.slug == slug))
    if library is None or not serves(g.user, library.id):
        abort(404)
    return library


def serves(user: StaffUser, library_id: int) -> bool:
    return user.role == Role.CONSORTIUM_ADMIN or user.library_id == library_id


def libraries_of(user: StaffUser) -> list[Library]:
    query = select(Library).order_by(Library.name)
    if user.role != Role.CONSORTIUM_ADMIN:
        query = query.where(Library.id == user.library_id)
    return list(db.session.scalars(query))
