"""Kiosks: browsers enrolled by a library admin through a one-time link, the only
browsers that may issue codes without a staff login; and the limit on failed card
attempts that stops anyone draining a pool by typing numbers."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.events import record_event
from kiosk.models import Event, Kiosk, Library

ENROL_LINK_VALID = timedelta(hours=72)
FAILED_ATTEMPTS_LIMIT = 5
FAILED_ATTEMPTS_WINDOW = timedelta(minutes=1)
# A reader needs more than ten seconds to scan, read and take a slip; more new codes
# than this in a minute is someone typing card numbers to drain the pool.
NEW_CODES_PER_MINUTE = 6


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_label(kiosk: Kiosk) -> str:
    return f"kiosk:{kiosk.id}"


@dataclass(frozen=True)
class Enrolment:
    kiosk: Kiosk
    token: str  # goes into the link once; only its hash is stored
    expires_at: datetime


def enrol_kiosk(session: Session, *, library: Library, name: str, actor: str, now: datetime,
                printer: str = "browser", kiosk: Kiosk | None = None) -> Enrolment:
    """A new kiosk, or a fresh link for an existing one (its old browser stops working
    once the new link is used)."""
    token = secrets.token_urlsafe(24)
    if kiosk is None:
        kiosk = Kiosk(library_id=library.id, name=name, printer=printer, created_at=now)
        session.add(kiosk)
    kiosk.enrol_token_hash = _hash(token)
    kiosk.enrol_expires_at = now + ENROL_LINK_VALID
    kiosk.revoked_at = None
    session.flush()
    record_event(session, kind="kiosk_enrol_link", actor=actor, library_id=library.id, now=now,
                 kiosk_id=kiosk.id, name=kiosk.name)
    session.commit()
    return Enrolment(kiosk=kiosk, token=token, expires_at=kiosk.enrol_expires_at)


def kiosk_for_link(session: Session, token: str, now: datetime) -> Kiosk | None:
    """The kiosk a valid, unused link would enrol (nothing changes)."""
    kiosk = session.scalar(select(Kiosk).where(Kiosk.enrol_token_hash == _hash(token)))
    if kiosk is None or kiosk.revoked_at is not None or kiosk.enrol_expires_at < now:
        return None
    return kiosk


def redeem_link(session: Session, token: str, now: datetime) -> Kiosk | None:
    """The kiosk the link enrols, once; None for a used, expired or unknown link."""
    kiosk = kiosk_for_link(session, token, now)
    if kiosk is None:
        return None
    kiosk.enrol_token_hash = None
    kiosk.enrol_expires_at = None
    kiosk.device_nonce = secrets.token_hex(16)
    kiosk.enrolled_at = now
    record_event(session, kind="kiosk_enrolled", actor=actor_label(kiosk), library_id=kiosk.library_id,
                 now=now, kiosk_id=kiosk.id)
    session.commit()
    return kiosk


def enrolled_kiosk(session: Session, kiosk_id: int, nonce: str) -> Kiosk | None:
    """The kiosk a browser's cookie names, if it is still enrolled and not revoked."""
    kiosk = session.get(Kiosk, kiosk_id)
    if kiosk is None or kiosk.revoked_at is not None or not kiosk.device_nonce:
        return None
    return kiosk if secrets.compare_digest(kiosk.device_nonce, nonce) else None


def revoke_kiosk(session: Session, kiosk: Kiosk, actor: str, now: datetime) -> None:
    kiosk.revoked_at = now
    kiosk.device_nonce = None
    kiosk.enrol_token_hash = None
    record_event(session, kind="kiosk_revoked", actor=actor, library_id=kiosk.library_id, now=now,
                 kiosk_id=kiosk.id)
    session.commit()


def paused_until(session: Session, kiosk: Kiosk, now: datetime) -> datetime | None:
    """When the kiosk may take cards again, if too many were refused, or too many
    new codes handed out, in the last minute."""
    ends = [_limit_ends(session, kiosk, kind, limit, now)
            for kind, limit in (("card_refused", FAILED_ATTEMPTS_LIMIT), ("issue", NEW_CODES_PER_MINUTE))]
    ends = [end for end in ends if end is not None]
    return max(ends) if ends else None


def _limit_ends(session: Session, kiosk: Kiosk, kind: str, limit: int, now: datetime) -> datetime | None:
    recent = session.scalars(
        select(Event.at)
        .where(Event.kind == kind, Event.actor == actor_label(kiosk), Event.at > now - FAILED_ATTEMPTS_WINDOW)
        .order_by(Event.at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return None
    # The oldest of the last `limit` leaves the window: the pause ends then.
    return recent[-1] + FAILED_ATTEMPTS_WINDOW

