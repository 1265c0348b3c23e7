"""Staff accounts: passwords (hashed with scrypt by Werkzeug), roles, the limit on
failed sign-ins. No default password anywhere: new accounts get a generated one.
Nothing here commits: callers run these in the unit of work."""
from __future__ import annotations

import enum
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.domain.actors import Actor
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.limits import Limit, LimitKind, first_block, record_hit
from kiosk.domain.refusals import Refused
from kiosk.storage.models import Role, StaffUser

LOGIN_WINDOW = timedelta(minutes=15)
FAILURES_PER_NAME = Limit(LimitKind.LOGIN_FAILURES_NAME, 5, LOGIN_WINDOW)
FAILURES_PER_ADDRESS = Limit(LimitKind.LOGIN_FAILURES_ADDRESS, 30, LOGIN_WINDOW)  # one address, many names
MIN_PASSWORD = 10
USERNAME = re.compile(r"[a-z0-9][a-z0-9._\-]{1,79}")
LIBRARY_ROLES = (Role.DESK, Role.LIBRARY_ADMIN)  # what a library admin may give
# Checked against when the user does not exist, so a wrong name costs as long as a
# wrong password and does not tell which names exist.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


class LoginRefusal(enum.StrEnum):
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"


class AccountProblem(enum.StrEnum):
    USERNAME = "username"
    USERNAME_TAKEN = "username_taken"
    ROLE = "role"
    ROLE_NEEDS_LIBRARY = "role_needs_library"
    PASSWORD_WRONG = "password_wrong"
    PASSWORD_SHORT = "password_short"


class AccountRefused(Refused):
    pass


def new_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(session: Session, *, username: str, role: str, library_id: int | None, actor: Actor,
                now: datetime) -> tuple[StaffUser, str]:
    """A new account and its generated password (shown once)."""
    username = (username or "").strip().lower()
    if not USERNAME.fullmatch(username):
        raise AccountRefused(AccountProblem.USERNAME)
    if role not in {r.value for r in Role}:
        raise AccountRefused(AccountProblem.ROLE)
    if role != Role.CONSORTIUM_ADMIN and library_id is None:
        raise AccountRefused(AccountProblem.ROLE_NEEDS_LIBRARY)
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise AccountRefused(AccountProblem.USERNAME_TAKEN, username=username)
    password = new_password()
    user = StaffUser(username=username, password_hash=generate_password_hash(password), role=role,
                     library_id=None if role == Role.CONSORTIUM_ADMIN else library_id, created_at=now)
    session.add(user)
    session.flush()
    record_event(session, kind=EventKind.USER_CREATED, actor=actor, library_id=user.library_id, now=now,
                 username=username, role=role)
    return user, password


def authenticate(session: Session, username: str, password: str, now: datetime,
                 address: str | None = None) -> StaffUser | LoginRefusal:
    username = (username or "").strip().lower()[:80]
    # Lock the account's row while counting, so parallel guesses queue (PostgreSQL;
    # SQLite's BEGIN IMMEDIATE already does) instead of all reading "4 failures".
    session.execute(select(StaffUser.id).where(StaffUser.username == username).with_for_update())
    limits = [(FAILURES_PER_NAME, username)] + ([(FAILURES_PER_ADDRESS, address)] if address else [])
    if first_block(session, limits, now) is not None:
        record_event(session, kind=EventKind.LOGIN_LOCKED, actor=Actor.sign_in(username), now=now, address=address)
        return LoginRefusal.LOCKED
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if not ok or user is None or not user.active:
        for limit, subject in limits:
            record_hit(session, limit, subject, now)
        record_event(session, kind=EventKind.LOGIN_FAILED, actor=Actor.sign_in(username), now=now, address=address)
        return LoginRefusal.BAD_CREDENTIALS
    record_event(session, kind=EventKind.LOGIN, actor=Actor.staff(user.id, user.username),
                 library_id=user.library_id, now=now, address=address)
    return user


def change_password(session: Session, user_id: int, current: str, new: str, now: datetime) -> StaffUser:
    """Changes the password and ends the user's other sessions; AccountRefused
    when the current password is wrong or the new one too short."""
    user = session.get(StaffUser, user_id)
    if not check_password_hash(user.password_hash, current or ""):
        raise AccountRefused(AccountProblem.PASSWORD_WRONG)
    if len(new or "") < MIN_PASSWORD:
        raise AccountRefused(AccountProblem.PASSWORD_SHORT, minimum=MIN_PASSWORD)
    user.password_hash = generate_password_hash(new)
    user.session_version += 1
    record_event(session, kind=EventKind.PASSWORD_CHANGED, actor=Actor.staff(user.id, user.username),
                 library_id=user.library_id, now=now)
    return user


def reset_password(session: Session, user_id: int, actor: Actor, now: datetime) -> str:
    """A new generated password (shown once); the user's sessions end."""
    user = session.get(StaffUser, user_id)
    password = new_password()
    user.password_hash, user.session_version = generate_password_hash(password), user.session_version + 1
    record_event(session, kind=EventKind.PASSWORD_CHANGED, actor=actor, library_id=user.library_id, now=now,
                 username=user.username)
    return password


def set_role(session: Session, user_id: int, role: str, actor: Actor, now: datetime) -> None:
    user = session.get(StaffUser, user_id)
    if role not in {r.value for r in Role} or (role == Role.CONSORTIUM_ADMIN and user.library_id):
        raise AccountRefused(AccountProblem.ROLE)
    user.role = role
    user.session_version += 1
    record_event(session, kind=EventKind.USER_ROLE, actor=actor, library_id=user.library_id, now=now,
                 username=user.username, role=role)


def set_active(session: Session, user_id: int, active: bool, actor: Actor, now: datetime) -> None:
    user = session.get(StaffUser, user_id)
    user.active = active
    user.session_version += 1
    record_event(session, kind=EventKind.USER_ENABLED if active else EventKind.USER_DISABLED, actor=actor,
                 library_id=user.library_id, now=now, username=user.username)
