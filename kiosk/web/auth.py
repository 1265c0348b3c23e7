"""Signing in and out, and changing one's password."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from kiosk.app.units import pepper, write
from kiosk.domain.accounts import (AccountRefused, LoginRefusal, SignInBusy, change_password, end_sessions,
                                   finish_sign_in, new_password_hash, password_matches, start_sign_in)
from kiosk.domain.clock import utcnow
from kiosk.domain.refusals import Problem
from kiosk.storage.models import Role
from kiosk.web.access import current_user, login_required, sign_in, staff_language
from kiosk.wording.languages import LANGUAGES
from kiosk.wording.messages import describe, describe_refusal

bp = Blueprint("auth", __name__)


def _home_of(user) -> str:
    if user.role == Role.CONSORTIUM_ADMIN:
        return url_for("admin.overview")
    return url_for("desk.page", slug=user.library.slug)


def _safe_next(target: str | None) -> str | None:
    """Only a plain path on this site: never send a user on to another host."""
    if not target or not target.startswith("/") or any(ch.isspace() or ord(ch) < 32 or ch == "\\"
                                                       for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    staff_language()
    error = None
    if request.method == "POST":
        username, address = request.form.get("username", ""), request.remote_addr
        attempt = write(lambda s: start_sign_in(s, username, address, utcnow(), pepper()))
        try:  # no transaction while the password is hashed
            matched = (attempt.locked_until is None and not attempt.too_soon
                       and password_matches(attempt, request.form.get("password", "")))
        except SignInBusy:
            return render_template("auth/login.html", error=_(
                "Wiele osób loguje się w tej chwili. Spróbuj ponownie za kilka sekund.")), 503
        outcome = write(lambda s: finish_sign_in(s, attempt, matched, utcnow()))
        if isinstance(outcome, LoginRefusal):
            error = describe(Problem(outcome))
        else:
            sign_in(outcome)
            if outcome.must_change_password:
                return redirect(url_for("auth.password"))
            return redirect(_safe_next(request.args.get("next")) or _home_of(outcome))
    return render_template("auth/login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout():
    user = current_user()
    if user is not None:
        user_id = user.id
        write(lambda s: end_sessions(s, user_id, utcnow()))
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/staff")
@login_required()
def home():
    return redirect(_home_of(g.user))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required()
def password():
    error = None
    if request.method == "POST":
        current, new, user_id, old_hash = (request.form.get("current", ""), request.form.get("new", ""), g.user.id,
                                           g.user.password_hash)
        try:
            new_hash = new_password_hash(old_hash, current, new)  # outside any transaction
            user = write(lambda s: change_password(s, user_id, old_hash, new_hash, utcnow()))
        except AccountRefused as refused:
            error = describe_refusal(refused)
        except SignInBusy:
            error = _("Wiele osób loguje się w tej chwili. Spróbuj ponownie za kilka sekund.")
        else:
            sign_in(user)  # stay signed in here; every other session ends
            flash(_("Hasło zmienione."))
            return redirect(_home_of(user))
    return render_template("auth/password.html", error=error), 400 if error else 200


@bp.get("/language/<code>")
def language(code: str):
    if code in LANGUAGES:
        session["lang"] = code
    user = current_user()
    return redirect(_safe_next(request.args.get("next")) or (_home_of(user) if user else url_for("auth.login")))
