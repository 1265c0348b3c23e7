"""Rate limits: how many of a kind of attempt one subject (a kiosk, a user name, an
address) may make in a time window. Hits are kept in a table of their own, not
read from the event log, so a change to how events are written can never switch
a security limit off."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from functools import lru_cache

from sqlalchemy import bindparam, delete, insert, or_, select
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
    # the online request form (kiosk.domain.online)
    ONLINE_REQUESTS = "online_requests"  # requests from one client address
    ONLINE_REFUSED_CARDS = "online_refused_cards"  # cards refused to one client address
    ONLINE_RESENDS = "online_resends"  # one card's code sent (or shown) again
    ONLINE_MAILS = "online_mails"  # messages to one e-mail address
    ONLINE_PIN_ASKS = "online_pin_asks"  # one card's PINs sent to the library system, counted before asking


@dataclass(frozen=True)
class Limit:
    kind: LimitKind
    count: int  # this many hits in the window, and the subject waits
    window: timedelta


_INSERT_HIT = insert(LimitHit.__table__)
_DROP_OLD = delete(LimitHit.__table__).where(LimitHit.__table__.c.kind == bindparam("kind"),
                                             LimitHit.__table__.c.at <= bindparam("before"))
# When each kind's old hits were last dropped, by this process (in the callers' time).
_dropped: dict[str, datetime] = {}


def record_hit(session: Session, limit: Limit, subject: str, now: datetime) -> None:
    record_hits(session, [(limit, subject)], now)


def record_hits(session: Session, counted: list[tuple[Limit, str]], now: datetime) -> None:
    """Counts one attempt against each (limit, subject), in one INSERT. Hits of a
    kind that have left its window, any subject's, are dropped now and then (at
    most once a minute per kind), so one-off subjects (addresses, names) do not
    pile up and a busy kiosk does not pay a DELETE per scan."""
    connection = session.connection()
    for limit, _subject in counted:
        last = _dropped.get(limit.kind.value)
        if last is None or not last <= now < last + _DROP_EVERY:
            connection.execute(_DROP_OLD, {"kind": limit.kind.value, "before": now - limit.window})
            _dropped[limit.kind.value] = now
    connection.execute(_INSERT_HIT, [{"kind": limit.kind.value, "subject": subject[:120], "at": now}
                                     for limit, subject in counted])


_DROP_EVERY = timedelta(minutes=1)


def blocked_until(session: Session, limit: Limit, subject: str, now: datetime) -> datetime | None:
    """When the subject may try again, if it has used up the limit; else None."""
    return first_block(session, [(limit, subject)], now)


def hits(session: Session, limit: Limit, subject: str, now: datetime) -> int:
    """Hits of the subject within the window (up to the limit)."""
    return len(session.scalars(
        select(LimitHit.id)
        .where(LimitHit.kind == limit.kind.value, LimitHit.subject == subject[:120],
               LimitHit.at > now - limit.window)
        .limit(limit.count)
    ).all())


def first_block(session: Session, checks: list[tuple[Limit, str]], now: datetime) -> datetime | None:
    """The latest end among the limits that block, or None when none does: every
    limit's recent hits in one read."""
    ends = blocking(session, checks, now)
    return max(ends.values()) if ends else None


def blocking(session: Session, checks: list[tuple[Limit, str]], now: datetime) -> dict[tuple[Limit, str], datetime]:
    """(limit, subject) -> when it lets the subject try again, for each of the
    checks that blocks now: every limit's recent hits in one read."""
    if not checks:
        return {}
    recent: dict[tuple[str, str], list[datetime]] = {}
    params = {}
    for n, (limit, subject) in enumerate(checks):
        params.update({f"kind{n}": limit.kind.value, f"subject{n}": subject[:120], f"since{n}": now - limit.window})
    for kind, subject, at in session.connection().execute(_recent_hits(len(checks)), params):
        recent.setdefault((kind, subject), []).append(at)
    ends = {}
    for limit, subject in checks:
        since = now - limit.window
        times = sorted((at for at in recent.get((limit.kind.value, subject[:120]), ()) if at > since), reverse=True)
        if len(times) >= limit.count:
            # The oldest of the last `count` hits leaves the window: the wait ends then.
            ends[(limit, subject)] = times[limit.count - 1] + limit.window
    return ends


@lru_cache(maxsize=8)
def _recent_hits(checks: int):
    table = LimitHit.__table__
    return select(table.c.kind, table.c.subject, table.c.at).where(or_(*(
        (table.c.kind == bindparam(f"kind{n}")) & (table.c.subject == bindparam(f"subject{n}"))
        & (table.c.at > bindparam(f"since{n}")) for n in range(checks))))
