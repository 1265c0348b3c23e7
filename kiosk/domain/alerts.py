"""What staff should know at a glance: a pool running low, next month's pool not
imported while the month is ending."""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.clock import local_day
from kiosk.storage.models import Library, Pool
from kiosk.domain.pools import pool_summaries

MONTH_END_WARNING_DAYS = 3


@dataclass(frozen=True)
class Alert:
    kind: str  # "pool_low" or "next_pool_missing"
    left: int = 0
    total: int = 0  # every code of the pools, as the dashboard counts them
    void: int = 0   # withdrawn by staff: neither left nor handed out to keep
    month_end: date | None = None


def library_alerts(session: Session, library: Library, now: datetime) -> list[Alert]:
    today = local_day(now, library.timezone)
    alerts = []
    current = [s for s in pool_summaries(session, now, library_id=library.id)
               if s.valid_from <= today <= s.valid_until]
    left, total, void = (sum(s.left for s in current), sum(s.total for s in current),
                         sum(s.void for s in current))
    if total - void and left * 100 < library.low_pool_percent * (total - void):
        alerts.append(Alert("pool_low", left=left, total=total, void=void))
    month_end = date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
    if (month_end - today).days <= MONTH_END_WARNING_DAYS:
        next_day = month_end + timedelta(days=1)
        has_next = session.scalar(select(Pool.id).where(
            Pool.library_id == library.id, Pool.valid_from <= next_day, Pool.valid_until >= next_day).limit(1))
        if has_next is None:
            alerts.append(Alert("next_pool_missing", month_end=month_end))
    return alerts

