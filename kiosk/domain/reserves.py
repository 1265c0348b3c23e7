"""Codes a pool keeps back: the first-timer reserve (a share for readers who never
had a code of this library) and the online share (a share for requests from
beyond the building: the online form and library systems over the API).

Both are shares of each pool of the window, owed until taken by those they are
kept for. An issuer who is not owed a share may take a code only while more codes
are free than the shares still owed to others.

Concurrency: an issuer bound by a share counts under the window's lock
(lock_window; SQLite's issuers hold its one write lock anyway). An issuer owed
every share in force takes without the lock: its code lowers the free codes and
the shares owed alike, so a count another issuer read stays true."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from kiosk.domain.eligibility import Ineligibility, Ineligible, Window
from kiosk.domain.rules import Rules, day_of_window
from kiosk.storage.models import Channel, Code, CodeStatus, Issuance, Pool

# The channels the online share is kept for: requests from beyond the building.
REMOTE_CHANNELS = (Channel.ONLINE, Channel.API)


def reserve_until(rules: Rules, window: Window) -> date | None:
    """The day the first-timer reserve is released (None: no reserve)."""
    if not rules.first_timer_reserve:
        return None
    return day_of_window(window.start, rules.first_timer_until_day) or window.end + timedelta(days=1)


def reserve_in_force(rules: Rules, window: Window, today: date) -> bool:
    until = reserve_until(rules, window)
    return until is not None and today < until


@dataclass(frozen=True)
class Bound:
    """The shares an issuer must leave for others."""

    first_timers: bool  # a returning reader while the reserve is in force
    online: bool  # a reader in the building while the library keeps an online share

    def __bool__(self) -> bool:
        return self.first_timers or self.online


def bound_by(rules: Rules, window: Window, today: date, *, first_timer: bool, channel: Channel) -> Bound:
    return Bound(first_timers=not first_timer and reserve_in_force(rules, window, today),
                 online=bool(rules.online_share) and channel not in REMOTE_CHANNELS)


def reserves_verdict(session: Session, rules: Rules, window: Window, library_id: int, bound: Bound,
                     ) -> Ineligible | None:
    """Refused when the free codes are no more than the shares still owed to
    others (each share, less the codes those it is kept for had in this window).
    Those codes are counted before the free codes, so a count read across a take
    errs toward keeping a share, never toward giving it away. The caller holds
    the window locked (lock_window)."""
    counts = list(session.scalars(select(Pool.code_count).where(Pool.id.in_(window.pool_ids))))
    of_window = Issuance.code_id.in_(select(Code.id).where(Code.pool_id.in_(window.pool_ids)))
    live = (Issuance.library_id == library_id, Issuance.voided_at.is_(None), of_window)
    owed_first = owed_online = 0
    if bound.first_timers:
        kept = sum(math.ceil(count * rules.first_timer_reserve / 100) for count in counts)
        owed_first = max(0, kept - session.scalar(select(func.count(Issuance.id)).where(*live, Issuance.first_timer)))
    if bound.online:
        kept = sum(math.ceil(count * rules.online_share / 100) for count in counts)
        remote = session.scalar(select(func.count(Issuance.id)).where(
            *live, Issuance.channel.in_([channel.value for channel in REMOTE_CHANNELS])))
        owed_online = max(0, kept - remote)
    if owed_first + owed_online == 0:
        return None
    free = session.scalar(select(func.count(Code.id)).where(
        Code.pool_id.in_(window.pool_ids), Code.status == CodeStatus.AVAILABLE.value))
    if 0 < free <= owed_first + owed_online:
        if owed_online:
            return Ineligible(Ineligibility.ONLINE_RESERVED)
        return Ineligible(Ineligibility.RESERVED, eligible_from=reserve_until(rules, window))
    return None


_LOCK_POOLS = (select(Pool.id).where(Pool.id.in_(bindparam("pool_ids", expanding=True))).order_by(Pool.id)
               .with_for_update())


def lock_window(session: Session, window: Window) -> None:
    """Issuers bound by a share queue here (PostgreSQL; SQLite's writers hold its
    one write lock anyway)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK_POOLS, {"pool_ids": list(window.pool_ids)})
