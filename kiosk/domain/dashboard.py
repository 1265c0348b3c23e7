"""A library's dashboard in numbers: this and last month's pools, issues per day
this month (with the bars of a server-drawn chart) and per channel."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from kiosk.domain.clock import local_day, month_window
from kiosk.storage.models import Channel, Library
from kiosk.domain.pools import PoolSummary, pool_summaries
from kiosk.domain.reports import issuances_per_day

CHART_WIDTH, CHART_HEIGHT = 620, 160


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Dashboard:
    month_start: date
    previous_month: date
    pools: list[PoolSummary]
    bars: list[Bar]
    peak: int
    by_channel: dict[str, int]

    @property
    def issued_this_month(self) -> int:
        return sum(self.by_channel.values())


def dashboard_for(session: Session, library: Library, now: datetime) -> Dashboard:
    today = local_day(now, library.timezone)
    first, last = month_window(today.year, today.month)
    previous_first = month_window(*((first - timedelta(days=1)).timetuple()[:2]))[0]
    pools = [s for s in pool_summaries(session, now, library_id=library.id)
             if s.valid_until >= previous_first and s.valid_from <= last]
    per_day = issuances_per_day(session, library, first, last)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    totals = [sum(per_day.get(day, Counter()).values()) for day in days]
    peak = max(totals, default=0)
    slot = CHART_WIDTH / len(days)
    bars = [Bar(day, count, x=index * slot + 1, width=max(slot - 2, 1),
                height=(count / peak * (CHART_HEIGHT - 20)) if peak else 0,
                y=CHART_HEIGHT - ((count / peak * (CHART_HEIGHT - 20)) if peak else 0))
            for index, (day, count) in enumerate(zip(days, totals))]
    by_channel = Counter()
    for counts in per_day.values():
        by_channel.update(counts)
    return Dashboard(month_start=first, previous_month=previous_first, pools=pools, bars=bars, peak=peak,
                     by_channel={channel.value: by_channel.get(channel.value, 0) for channel in Channel})
