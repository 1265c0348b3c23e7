"""The figures of the monthly report, gathered from the database: pools, issues
per day and channel, per kiosk, unique readers, reprints, refusals by reason, and
the list of the codes handed out. The workbook is written by kiosk.domain.reports."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.domain.clock import local_day
from kiosk.domain.events import EventKind
from kiosk.domain.pools import PoolSummary, pool_summaries
from kiosk.domain.cards import CardRefusal
from kiosk.storage.models import Channel, Code, Event, Issuance, Kiosk, Library, StaffUser

# Why readers were not served: a card refused (by its reason), a library rule that
# said no (the reason of a not_eligible event), then the other "no"s.
CARD_REASONS = tuple(reason.value for reason in CardRefusal)
RULE_REASONS = ("not_yet", "too_young", "inactive", "debt", "not_activated", "reserved", "other_platform",
                "no_data")
OTHER_REFUSALS = (EventKind.NO_CODES_LEFT, EventKind.NO_POOL, EventKind.SERVICE_ENDED,
                  EventKind.REPRINT_WITHHELD)
REFUSALS = (*CARD_REASONS, *RULE_REASONS, *(kind.value for kind in OTHER_REFUSALS))
WITH_REASON = (EventKind.CARD_REFUSED.value, EventKind.NOT_ELIGIBLE.value)  # counted by details' reason


@dataclass(frozen=True)
class IssuedCode:
    """One code handed out in the month, as the report's list shows it."""

    issued_at: datetime  # in the library's time zone
    code: str
    channel: str
    by: str  # the kiosk's name, the staff member's user name, or the actor
    card_hint: str | None
    voided: bool

    @property
    def masked_card(self) -> str:
        return f"••••{self.card_hint}" if self.card_hint else "—"


@dataclass(frozen=True)
class LibraryMonth:
    """One library's figures for the month, shared by its sheet and the summary."""

    library: Library
    pools: list[PoolSummary]
    days: dict[date, Counter]  # every day of the month -> issuances per channel
    per_kiosk: list[tuple[str, int]] = field(default_factory=list)  # kiosk name -> issuances
    unique_readers: int = 0
    reprints: int = 0
    refusals: dict[str, int] = field(default_factory=dict)  # REFUSALS -> count
    codes: list[IssuedCode] = field(default_factory=list)

    def pool_total(self, field_name: str) -> int:
        return sum(getattr(pool, field_name) for pool in self.pools)

    def channel_total(self, channel: Channel) -> int:
        return sum(counts[channel] for counts in self.days.values())


def libraries_named(session: Session, library_ids: list[int] | None) -> list[Library]:
    query = select(Library).order_by(Library.slug)
    if library_ids is not None:
        query = query.where(Library.id.in_(library_ids))
    libraries = list(session.scalars(query))
    missing = set(library_ids or ()) - {library.id for library in libraries}
    if missing:
        # A wrong id must not quietly give an empty report that looks like "no issuances".
        raise LookupError(f"no library with id {sorted(missing)}")
    return libraries


def utc_bounds(first: date, last: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local days first..last: the month ends at the
    library's midnight, not UTC's."""
    zone = ZoneInfo(tz_name)
    start = datetime.combine(first, time.min, zone)
    end = datetime.combine(last + timedelta(days=1), time.min, zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def issuances_per_day(session: Session, library: Library, first: date, last: date) -> dict[date, Counter]:
    """Issuances per local day and channel, voided ones included (they were handed out).

    Only (issued_at, channel) of one library's month is fetched and bucketed here:
    grouping by a local date in SQL differs between SQLite and PostgreSQL."""
    start, end = utc_bounds(first, last, library.timezone)
    rows = session.execute(
        select(Issuance.issued_at, Issuance.channel)
        .where(Issuance.library_id == library.id, Issuance.issued_at >= start, Issuance.issued_at < end)
    )
    days = {first + timedelta(days=n): Counter() for n in range((last - first).days + 1)}
    for issued_at, channel in rows:
        days[local_day(issued_at, library.timezone)][Channel(channel)] += 1
    return days


def _in_month(library: Library, start: datetime, end: datetime):
    return (Issuance.library_id == library.id, Issuance.issued_at >= start, Issuance.issued_at < end)


def _per_kiosk(session: Session, library: Library, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """Every kiosk that issued in the month or still works, by name (0 when none)."""
    counts = dict(session.execute(select(Issuance.kiosk_id, func.count()).where(
        *_in_month(library, start, end), Issuance.kiosk_id.is_not(None)).group_by(Issuance.kiosk_id)).all())
    kiosks = session.execute(select(Kiosk.id, Kiosk.name, Kiosk.revoked_at)
                             .where(Kiosk.library_id == library.id).order_by(Kiosk.name, Kiosk.id))
    return [(name, counts.get(kiosk_id, 0)) for kiosk_id, name, revoked_at in kiosks
            if counts.get(kiosk_id) or revoked_at is None]


def _reason(kind: str, details: str | None) -> str:
    """The reason in an event's details; the kind itself when it names none."""
    try:
        found = json.loads(details or "{}")
    except ValueError:
        found = None
    reason = found.get("reason") if isinstance(found, dict) else None
    return str(reason) if reason else kind


def _event_counts(session: Session, library: Library, start: datetime, end: datetime) -> tuple[int, dict[str, int]]:
    """(reprints, refusals by reason) from the period's log: every REFUSALS key,
    then any other reason found (0 where none)."""
    kinds = [EventKind.REPRINT.value, *WITH_REASON, *(kind.value for kind in OTHER_REFUSALS)]
    rows = session.execute(select(Event.kind, Event.details).where(
        Event.library_id == library.id, Event.at >= start, Event.at < end, Event.kind.in_(kinds)))
    reprints, refusals = 0, dict.fromkeys(REFUSALS, 0)
    for kind, details in rows:
        if kind == EventKind.REPRINT:
            reprints += 1
            continue
        reason = _reason(kind, details) if kind in WITH_REASON else kind
        refusals[reason] = refusals.get(reason, 0) + 1
    return reprints, refusals


def refusals_between(session: Session, library: Library, first: date, last: date) -> dict[str, int]:
    """Refusals by reason on the library's local days first..last (every REFUSALS key)."""
    return _event_counts(session, library, *utc_bounds(first, last, library.timezone))[1]


def _codes(session: Session, library: Library, start: datetime, end: datetime) -> list[IssuedCode]:
    zone = ZoneInfo(library.timezone)
    rows = session.execute(
        select(Issuance.issued_at, Code.value, Issuance.channel, Kiosk.name, StaffUser.username, Issuance.actor,
               Issuance.card_hint, Issuance.voided_at)
        .join(Code, Issuance.code_id == Code.id)
        .outerjoin(Kiosk, Issuance.kiosk_id == Kiosk.id)
        .outerjoin(StaffUser, Issuance.staff_user_id == StaffUser.id)
        .where(*_in_month(library, start, end))
        .order_by(Issuance.issued_at, Issuance.id))
    return [IssuedCode(issued_at.astimezone(zone), value, channel, kiosk or staff or actor, hint, voided is not None)
            for issued_at, value, channel, kiosk, staff, actor, hint, voided in rows]


def library_month(session: Session, library: Library, first: date, last: date, now: datetime) -> LibraryMonth:
    pools = [pool for pool in pool_summaries(session, now, library_id=library.id)
             if pool.valid_from <= last and pool.valid_until >= first]
    start, end = utc_bounds(first, last, library.timezone)
    readers = session.scalar(select(func.count(func.distinct(Issuance.reader_key)))
                             .where(*_in_month(library, start, end))) or 0
    reprints, refusals = _event_counts(session, library, start, end)
    return LibraryMonth(library, pools, issuances_per_day(session, library, first, last),
                        per_kiosk=_per_kiosk(session, library, start, end), unique_readers=int(readers),
                        reprints=reprints, refusals=refusals, codes=_codes(session, library, start, end))
