"""Staff accounts: passwords (hashed with scrypt by Werkzeug), roles, the limit on
failed sign-ins. No default password anywhere: new accounts get a generated one.
Nothing here commits: callers run these in the unit of work."""
from __future__ import annotations

import enum
import hashlib
import re
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.domain.actors import Actor
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.limits import Limit, LimitKind, blocked_until, first_block, hits, record_hit
from kiosk.domain.refusals import Refused
from kiosk.storage.models import Role, StaffUser

LOGIN_WINDOW = timedelta(minutes=15)
# A stranger's wrong passwords must never lock the real user out: failures lock only
# the address they come from (for that name, and for every name), and failures from
# everywhere only make the name's sign-ins slower.
FAILURES_PER_NAME_AT_ADDRESS = Limit(LimitKind.LOGIN_FAILURES_NAME_ADDRESS, 5, LOGIN_WINDOW)
FAILURES_PER_ADDRESS = Limit(LimitKind.LOGIN_FAILURES_ADDRESS, 30, LOGIN_WINDOW)  # one address, many names
FAILURES_PER_NAME = Limit(LimitKind.LOGIN_FAILURES_NAME, 5, LOGIN_WINDOW)
# A name under attack (failures from everywhere) signs in one attempt at a time, two
# seconds apart: slower for its user, never locked. No thread waits for it: an
# attempt too soon is told to try again in a moment.
UNDER_ATTACK_SPACING = Limit(LimitKind.LOGIN_NAME_SPACING, 1, timedelta(seconds=2))
# Password hashing (scrypt) is the costly part of a sign-in: one at a time, and a
# sign-in that cannot have the hasher at once is told to try again, so a flood never
# parks the server's threads or takes the core the kiosks need.
HASHING = threading.BoundedSemaphore(1)
HASHING_WAIT_SECONDS = 0.05
MIN_PASSWORD = 10
USERNAME = re.compile(r"[a-z0-9][a-z0-9._\-]{1,79}")
LIBRARY_ROLES = (Role.DESK, Role.LIBRARY_ADMIN)  # what a library admin may give


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """Checked against when the user does not exist, so a wrong name costs as long as
    a wrong password and does not tell which names exist. Made on first use (a hash
    takes a tenth of a second, and most `kiosk` commands sign nobody in); the web
    makes it as it starts (kiosk.web.register_web), so no sign-in pays for it."""
    return generate_password_hash("not a password of anyone")


class LoginRefusal(enum.StrEnum):
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"
    SLOW_DOWN = "slow_down"  # a name under attack: one attempt every two seconds


class AccountProblem(enum.StrEnum):
    USERNAME = "username"
    USERNAME_TAKEN = "username_taken"
    ROLE = "role"
    ROLE_NEEDS_LIBRARY = "role_needs_library"
    PASSWORD_WRONG = "password_wrong"
    PASSWORD_SHORT = "password_short"


class AccountRefused(Refused):
    pass


# Passwords are read aloud and typed from paper: no characters that look alike
# (0/O/o/Q/D, 1/l/I/i/j, 5/S/s, 2/Z/z, 8/B, 6/G/b, 9/g/q, u/v/U/V/Y/y), and no letter
# whose capital looks like it (c/C, k/K, m/M, p/P, w/W, x/X: one case only).
PASSWORD_UPPER = "AEFHLMNPRTWX"
PASSWORD_LOWER = "adefhknrt"
PASSWORD_DIGITS = "347"
PASSWORD_ALPHABET = PASSWORD_UPPER + PASSWORD_LOWER + PASSWORD_DIGITS
PASSWORD_LENGTH = 16  # 24 characters: about 73 bits


def new_password() -> str:
    """A generated password: 16 characters without look-alikes, with at least one
    capital, one small letter and one digit."""
    while True:
        password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
        if all(any(ch in group for ch in password) for group in (PASSWORD_UPPER, PASSWORD_LOWER, PASSWORD_DIGITS)):
            return password


def create_user(session: Session, *, username: str, role: str, library_id: int | None, actor: Actor,
                now: datetime, must_change_password: bool = False) -> tuple[StaffUser, str]:
    """A new account and its generated password (shown once). With
    must_change_password (the admin panel, the demo) the user must choose a password
    of their own at the first sign-in."""
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
                     library_id=None if role == Role.CONSORTIUM_ADMIN else library_id, created_at=now,
                     must_change_password=must_change_password)
    session.add(user)
    session.flush()
    record_event(session, kind=EventKind.USER_CREATED, actor=actor, library_id=user.library_id, now=now,
                 username=username, role=role)
    return user, password


class SignInBusy(RuntimeError):
    """Too many sign-ins are being checked at once; nothing was decided."""


@dataclass(frozen=True)
class SignInAttempt:
    """What is known before the password is checked (read, no lock held)."""

    username: str
    name_key: str
    address: str
    locked_until: datetime | None
    too_soon: bool
    user_id: int | None
    password_hash: str | None
    active: bool

    @property
    def subjects(self) -> list[tuple[Limit, str]]:
        name = self.name_key
        return [(FAILURES_PER_NAME_AT_ADDRESS, f"{name}@{self.address}"), (FAILURES_PER_ADDRESS, self.address),
                (FAILURES_PER_NAME, name)]


def _name_key(username: str, pepper: str) -> str:
    """A typed user name as the limits keep it: an HMAC with the pepper, since a
    password typed into the name field must not be stored or guessed back."""
    return hmac.new(pepper.encode(), b"sign-in:" + username.encode(), hashlib.sha256).hexdigest()[:32]


def start_sign_in(session: Session, username: str, address: str | None, now: datetime,
                  pepper: str) -> SignInAttempt:
    """What the limits say of this attempt (inside a unit of work, before any hashing):
    locked out from this address, or too soon for a name under attack."""
    username = (username or "").strip().lower()[:80]
    address = (address or "unknown")[:80]
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    name = _name_key(username, pepper)
    locked = first_block(session, [(FAILURES_PER_NAME_AT_ADDRESS, f"{name}@{address}"),
                                   (FAILURES_PER_ADDRESS, address)], now)
    too_soon = False
    if locked is None and blocked_until(session, FAILURES_PER_NAME, name, now) is not None:
        too_soon = blocked_until(session, UNDER_ATTACK_SPACING, name, now) is not None
        if not too_soon:
            record_hit(session, UNDER_ATTACK_SPACING, name, now)
    return SignInAttempt(username, name, address, locked, too_soon, user.id if user else None,
                         user.password_hash if user else None, bool(user and user.active))


def password_matches(attempt: SignInAttempt, password: str) -> bool:
    """The password checked outside any transaction, one hash at a time; SignInBusy
    at once when the hasher is taken."""
    if not HASHING.acquire(timeout=HASHING_WAIT_SECONDS):
        raise SignInBusy()
    try:
        # A wrong name costs as long as a wrong password and tells nothing.
        return check_password_hash(attempt.password_hash or dummy_hash(), password or "")
    finally:
        HASHING.release()


def finish_sign_in(session: Session, attempt: SignInAttempt, matched: bool,
                   now: datetime) -> StaffUser | LoginRefusal:
    """Records the outcome (inside a unit of work). Failures are counted, not
    logged one by one; the log gets one line when an address is locked out."""
    if attempt.locked_until is not None:
        return LoginRefusal.LOCKED
    if attempt.too_soon:
        return LoginRefusal.SLOW_DOWN
    if not matched or attempt.user_id is None or not attempt.active:
        for limit, subject in attempt.subjects:
            record_hit(session, limit, subject, now)
        pair = attempt.subjects[0]
        if hits(session, *pair, now) == pair[0].count:
            record_event(session, kind=EventKind.LOGIN_LOCKED, actor=Actor.sign_in("?"), now=now,
                         address=attempt.address, user=attempt.username if attempt.user_id else None,
                         failures=pair[0].count)
        return LoginRefusal.BAD_CREDENTIALS
    user = session.get(StaffUser, attempt.user_id)
    record_event(session, kind=EventKind.LOGIN, actor=Actor.staff(user.id, user.username),
                 library_id=user.library_id, now=now, address=attempt.address)
    return user


def end_sessions(session: Session, user_id: int, now: datetime) -> None:
    """Signing out: every session cookie of the user stops working, a copied one too."""
    user = session.get(StaffUser, user_id)
    user.session_version += 1
    record_event(session, kind=EventKind.LOGOUT, actor=Actor.staff(user.id, user.username),
                 library_id=user.library_id, now=now)


def new_password_hash(current_hash: str, current: str, new: str) -> str:
    """The new password's hash, checked and made outside any transaction (scrypt is
    slow; one hasher at a time); AccountRefused when the current password is wrong
    or the new one too short, SignInBusy when the hasher stays taken."""
    if len(new or "") < MIN_PASSWORD:
        raise AccountRefused(AccountProblem.PASSWORD_SHORT, minimum=MIN_PASSWORD)
    if not HASHING.acquire(timeout=HASHING_WAIT_SECONDS * 10):
        raise SignInBusy()
    try:
        if not check_password_hash(current_hash, current or ""):
            raise AccountRefused(AccountProblem.PASSWORD_WRONG)
        return generate_password_hash(new)
    finally:
        HASHING.release()


def change_password(session: Session, user_id: int, expected_hash: str, new_hash: str, now: datetime) -> StaffUser:
    """Stores the new hash and ends the user's other sessions (inside a unit of work);
    refused if the password changed since it was checked."""
    user = session.get(StaffUser, user_id)
    if user.password_hash != expected_hash:
        raise AccountRefused(AccountProblem.PASSWORD_WRONG)
    user.password_hash = new_hash
    user.session_version += 1
    user.must_change_password = False
    record_event(session, kind=EventKind.PASSWORD_CHANGED, actor=Actor.staff(user.id, user.username),
                 library_id=user.library_id, now=now)
    return user


def reset_password(session: Session, user_id: int, actor: Actor, now: datetime) -> str:
    """A new generated password (shown once), to be changed at the next sign-in;
    the user's sessions end."""
    user = session.get(StaffUser, user_id)
    password = new_password()
    user.password_hash, user.session_version = generate_password_hash(password), user.session_version + 1
    user.must_change_password = True
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
