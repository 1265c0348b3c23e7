"""A library's dashboard in numbers: last, this and next month's pools of every
platform, grouped by platform (so the admin sees next month is ready before it
starts, for each platform the library uses), issues per day this month (with the
bars of a server-drawn chart) and per channel, and the month its report link
offers."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.clock import local_day, month_window
from kiosk.storage.models import Channel, Issuance, Library, Platform, Pool
from kiosk.domain.pools import PoolSummary, pool_summaries
from kiosk.domain.report_figures import issuances_per_day, refusals_between, utc_bounds

CHART_WIDTH, CHART_HEIGHT = 620, 160
DEFAULT_PLATFORM = "legimi"  # what a library without any pool is told about


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
    next_month: date
    pools: list[PoolSummary]
    bars: list[Bar]
    peak: int
    by_channel: dict[str, int]
    next_month_ready: dict[str, bool]  # platform name -> a pool of next month is imported (platforms used)
    report_month: date  # the month the report link offers
    platform_names: dict[str, str]  # slug -> name
    refusals: dict[str, int] = field(default_factory=dict)  # this month's refusals by reason, none left out

    @property
    def refusals_given(self) -> list[tuple[str, int]]:
        """(reason, count) of the reasons that happened this month, in the report's order."""
        return [(reason, count) for reason, count in self.refusals.items() if count]

    @property
    def next_month_pools(self) -> list[PoolSummary]:
        return [pool for pool in self.pools if pool.valid_from >= self.next_month]

    @property
    def issued_this_month(self) -> int:
        return sum(self.by_channel.values())


def _month_after(first: date) -> tuple[date, date]:
    return month_window(*((first + timedelta(days=32)).timetuple()[:2]))


def _month_before(first: date) -> date:
    return month_window(*((first - timedelta(days=1)).timetuple()[:2]))[0]


def report_month(session: Session, library_ids: list[int] | None, today: date, tz_name: str) -> date:
    """The month a report link offers: the month that has just ended, or this month
    while nothing (no pool, no issuance) is older than it: a library's first month."""
    first = month_window(today.year, today.month)[0]
    older_pool = select(Pool.id).where(Pool.valid_from < first)
    older_issue = select(Issuance.id).where(Issuance.issued_at < utc_bounds(first, first, tz_name)[0])
    if library_ids is not None:
        older_pool = older_pool.where(Pool.library_id.in_(library_ids))
        older_issue = older_issue.where(Issuance.library_id.in_(library_ids))
    if session.scalar(older_pool.limit(1)) is None and session.scalar(older_issue.limit(1)) is None:
        return first
    return _month_before(first)


def dashboard_for(session: Session, library: Library, now: datetime) -> Dashboard:
    today = local_day(now, library.timezone)
    first, last = month_window(today.year, today.month)
    previous_first = _month_before(first)
    next_first, next_last = _month_after(first)
    platforms = dict(session.execute(select(Platform.slug, Platform.name).order_by(Platform.name)).all())
    pools = sorted((s for s in pool_summaries(session, now, library_id=library.id)
                    if s.valid_until >= previous_first and s.valid_from <= next_last),
                   key=lambda s: (platforms.get(s.platform, s.platform), s.valid_from, s.imported_at, s.pool_id))
    used = set(session.scalars(select(Platform.slug).join(Pool, Pool.platform_id == Platform.id)
                               .where(Pool.library_id == library.id).distinct())) or {DEFAULT_PLATFORM}
    ready = {name: any(p.platform == slug and p.valid_from <= next_last and p.valid_until >= next_first
                       for p in pools) for slug, name in platforms.items() if slug in used}
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
    return Dashboard(month_start=first, previous_month=previous_first, next_month=next_first, pools=pools,
                     bars=bars, peak=peak,
                     by_channel={channel.value: by_channel.get(channel.value, 0) for channel in Channel},
                     next_month_ready=ready, platform_names=platforms,
                     refusals=refusals_between(session, library, first, last),
                     report_month=report_month(session, [library.id], today, library.timezone))
