"""Staff accounts: passwords (hashed with scrypt by Werkzeug), roles, the limit on
failed logins. No default password anywhere: new accounts get a generated one."""
from __future__ import annotations

import enum
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.events import record_event
from kiosk.models import Event, Role, StaffUser

LOGIN_ATTEMPTS = 5
ADDRESS_ATTEMPTS = 30  # one address trying many names
LOGIN_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 10
USERNAME = re.compile(r"[a-z0-9][a-z0-9._\-]{1,79}")
# Checked against when the user does not exist, so a wrong name costs as long as a
# wrong password and does not tell which names exist.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


class UserExists(ValueError):
    pass


class LoginRefusal(enum.StrEnum):
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"


def new_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(session: Session, *, username: str, role: str, library_id: int | None, actor: str,
                now: datetime) -> tuple[StaffUser, str]:
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise ValueError("nazwa użytkownika: małe litery, cyfry, kropki, myślniki (2–80 znaków)")
    if role not in {r.value for r in Role}:
        raise ValueError(f"nieznana rola: {role}")
    if role != Role.CONSORTIUM_ADMIN and library_id is None:
        raise ValueError("ta rola wymaga biblioteki")
    if session.scalar(select(StaffUser).where(StaffUser.username == username)):
        raise UserExists(username)
    password = new_password()
    user = StaffUser(username=username, password_hash=generate_password_hash(password), role=role,
                     library_id=None if role == Role.CONSORTIUM_ADMIN else library_id, created_at=now)
    session.add(user)
    record_event(session, kind="user_created", actor=actor, library_id=user.library_id, now=now,
                 username=username, role=role)
    session.commit()
    return user, password


def _recent_failures(session: Session, now: datetime, *, username: str | None = None,
                     address: str | None = None) -> int:
    query = select(func.count()).select_from(Event).where(
        Event.kind == "login_failed", Event.at > now - LOGIN_WINDOW)
    if username is not None:
        query = query.where(Event.actor == f"login:{username}")
    else:
        query = query.where(Event.details.contains(f'"address": "{address}"'))
    return session.scalar(query)


def authenticate(session: Session, username: str, password: str, now: datetime,
                 address: str | None = None) -> StaffUser | LoginRefusal:
    username = (username or "").strip().lower()[:80]
    # Lock the account's row while counting, so parallel guesses queue (PostgreSQL;
    # SQLite's BEGIN IMMEDIATE already does) instead of all reading "4 failures".
    session.execute(select(StaffUser.id).where(StaffUser.username == username).with_for_update())
    if (_recent_failures(session, now, username=username) >= LOGIN_ATTEMPTS
            or (address and _recent_failures(session, now, address=address) >= ADDRESS_ATTEMPTS)):
        record_event(session, kind="login_locked", actor=f"login:{username}", now=now, address=address)
        session.commit()
        return LoginRefusal.LOCKED
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if not ok or user is None or not user.active:
        record_event(session, kind="login_failed", actor=f"login:{username}", now=now, address=address)
        session.commit()
        return LoginRefusal.BAD_CREDENTIALS
    record_event(session, kind="login", actor=f"staff:{user.username}", library_id=user.library_id,
                 now=now, address=address)
    session.commit()
    return user


def change_password(session: Session, user: StaffUser, current: str, new: str, now: datetime) -> str | None:
    """None when changed; otherwise why not (a sentence for the form)."""
    if not check_password_hash(user.password_hash, current or ""):
        return "Obecne hasło jest inne."
    if len(new or "") < MIN_PASSWORD:
        return f"Nowe hasło musi mieć co najmniej {MIN_PASSWORD} znaków."
    user.password_hash = generate_password_hash(new)
    user.session_version += 1
    record_event(session, kind="password_changed", actor=f"staff:{user.username}",
                 library_id=user.library_id, now=now)
    session.commit()
    return None


def set_role(session: Session, user: StaffUser, role: str, actor: str, now: datetime) -> None:
    if role not in {r.value for r in Role} or (role == Role.CONSORTIUM_ADMIN and user.library_id):
        raise ValueError(role)
    user.role = role
    user.session_version += 1
    record_event(session, kind="user_role", actor=actor, library_id=user.library_id, now=now,
                 username=user.username, role=role)
    session.commit()


def set_active(session: Session, user: StaffUser, active: bool, actor: str, now: datetime) -> None:
    user.active = active
    user.session_version += 1
    record_event(session, kind="user_enabled" if active else "user_disabled", actor=actor,
                 library_id=user.library_id, now=now, username=user.username)
    session.commit()
