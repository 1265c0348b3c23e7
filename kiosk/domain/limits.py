"""Rate limits: how many of a kind of attempt one subject (a kiosk, a user name, an
address) may make in a time window. Hits are kept in a table of their own, not
read from the event log, so a change to how events are written can never switch
a security limit off."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiosk.storage.models import LimitHit


class LimitKind(enum.StrEnum):
    KIOSK_REFUSED_CARDS = "kiosk_refused_cards"
    KIOSK_CODES_SHOWN = "kiosk_codes_shown"
    KIOSK_SAME_CARD = "kiosk_same_card"
    CARD_WRONG_PINS = "card_wrong_pins"  # one card's wrong PINs at every kiosk of the library
    CARD_WRONG_PINS_DAY = "card_wrong_pins_day"  # the same, over a day
    LOGIN_FAILURES_NAME = "login_failures_name"
    LOGIN_FAILURES_NAME_ADDRESS = "login_failures_name_address"
    LOGIN_FAILURES_ADDRESS = "login_failures_address"
    LOGIN_NAME_SPACING = "login_name_spacing"


@dataclass(frozen=True)
class Limit:
    kind: LimitKind
    count: int  # this many hits in the window, and the subject waits
    window: timedelta


def record_hit(session: Session, limit: Limit, subject: str, now: datetime) -> None:
    """Counts one attempt; hits of this kind that have left the window, any subject's,
    are dropped on the way, so one-off subjects (addresses, names) do not pile up."""
    session.execute(delete(LimitHit).where(LimitHit.kind == limit.kind.value, LimitHit.at <= now - limit.window))
    session.add(LimitHit(kind=limit.kind.value, subject=subject[:120], at=now))


def blocked_until(session: Session, limit: Limit, subject: str, now: datetime) -> datetime | None:
    """When the subject may try again, if it has used up the limit; else None."""
    recent = session.scalars(
        select(LimitHit.at)
        .where(LimitHit.kind == limit.kind.value, LimitHit.subject == subject[:120],
               LimitHit.at > now - limit.window)
        .order_by(LimitHit.at.desc())
        .limit(limit.count)
    ).all()
    if len(recent) < limit.count:
        return None
    # The oldest of the last `count` hits leaves the window: the wait ends then.
    return recent[-1] + limit.window


def hits(session: Session, limit: Limit, subject: str, now: datetime) -> int:
    """Hits of the subject within the window (up to the limit)."""
    return len(session.scalars(
        select(LimitHit.id)
        .where(LimitHit.kind == limit.kind.value, LimitHit.subject == subject[:120],
               LimitHit.at > now - limit.window)
        .limit(limit.count)
    ).all())


def first_block(session: Session, checks: list[tuple[Limit, str]], now: datetime) -> datetime | None:
    """The latest end among the limits that block, or None when none does."""
    ends = [end for limit, subject in checks if (end := blocked_until(session, limit, subject, now))]
    return max(ends) if ends else None
