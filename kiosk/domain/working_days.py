"""Working days: Monday to Friday, except Polish public holidays (the `holidays`
package, which knows the 24 December holiday from 2025) and the library's own
closed days. Release days move on these (kiosk.domain.rules)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.clock import parse_date, sane
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.refusals import Refused
from kiosk.storage.models import ClosedDay

# A search for the next working day never runs further than this: a library
# closed for longer has set its closed days wrongly, and the release stays put.
LONGEST_CLOSURE = timedelta(days=62)


# `holidays` is imported on first use: a command that computes no working day (or
# only shows its help) does not load it.
@lru_cache(maxsize=256)
def _public_holidays(year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.Poland(years=year))


def is_public_holiday(day: date) -> bool:
    return day in _public_holidays(day.year)


# The package's names of Polish holidays come in these of our languages.
_HOLIDAY_LANGUAGES = {"pl": "pl", "en": "en_US", "uk": "uk"}


def public_holiday_name(day: date, language: str = "pl") -> str | None:
    import holidays

    return holidays.Poland(years=day.year, language=_HOLIDAY_LANGUAGES.get(language, "pl")).get(day)


def is_working_day(day: date, closed: frozenset[date] | set[date] = frozenset()) -> bool:
    return day.weekday() < 5 and not is_public_holiday(day) and day not in closed


def first_working_day_from(day: date, closed: frozenset[date] | set[date] = frozenset()) -> date:
    """The day itself when it is a working day, else the next one."""
    candidate = day
    while not is_working_day(candidate, closed):
        candidate += timedelta(days=1)
        if candidate - day > LONGEST_CLOSURE:
            return day
    return candidate


def last_working_day_before(day: date, closed: frozenset[date] | set[date] = frozenset()) -> date:
    """The last working day strictly before `day`."""
    candidate = day - timedelta(days=1)
    while not is_working_day(candidate, closed):
        candidate -= timedelta(days=1)
        if day - candidate > LONGEST_CLOSURE:
            return day - timedelta(days=1)
    return candidate


def closed_days(session: Session, library_id: int, since: date | None = None) -> frozenset[date]:
    query = select(ClosedDay.day).where(ClosedDay.library_id == library_id)
    if since is not None:
        query = query.where(ClosedDay.day >= since)
    return frozenset(session.scalars(query))


@dataclass(frozen=True)
class MonthStart:
    """A month's first working day, and the weekdays it moved past: the public
    holidays and the library's closed days (a weekend alone moves nothing worth saying)."""

    month: date  # the month's first day
    day: date
    holidays: tuple[date, ...] = ()
    closed: tuple[date, ...] = ()

    @property
    def moved(self) -> bool:
        return bool(self.holidays or self.closed)


def month_start(month: date, closed: frozenset[date] | set[date] = frozenset()) -> MonthStart:
    first = month.replace(day=1)
    day = first_working_day_from(first, closed)
    skipped = [first + timedelta(days=n) for n in range((day - first).days)]
    weekdays = [d for d in skipped if d.weekday() < 5]
    return MonthStart(month=first, day=day, holidays=tuple(d for d in weekdays if is_public_holiday(d)),
                      closed=tuple(d for d in weekdays if d in closed and not is_public_holiday(d)))


def month_starts(first_month: date, count: int, closed: frozenset[date] | set[date] = frozenset()
                 ) -> list[MonthStart]:
    """The first working day of `count` months from `first_month` on."""
    starts, month = [], first_month.replace(day=1)
    for _ in range(count):
        starts.append(month_start(month, closed))
        month = (month + timedelta(days=32)).replace(day=1)
    return starts


class ClosedDayProblem(enum.StrEnum):
    ALREADY_CLOSED = "already_closed"
    NOT_CLOSED = "not_closed"
    BAD_DATE = "bad_date"


def parse_closed_day(text: str) -> date:
    """A day as a form or a person gives it (YYYY-MM-DD or DD.MM.YYYY); refused naming
    what was given."""
    try:
        return parse_date(text)
    except ValueError:
        raise Refused(ClosedDayProblem.BAD_DATE, value=" ".join(str(text).split())[:40]) from None


def add_closed_day(session: Session, library_id: int, day: date, actor: Actor, now: datetime) -> None:
    sane(day)
    if session.scalar(select(ClosedDay.id).where(ClosedDay.library_id == library_id, ClosedDay.day == day)):
        raise Refused(ClosedDayProblem.ALREADY_CLOSED, day=day)
    session.add(ClosedDay(library_id=library_id, day=day))
    record_event(session, kind=EventKind.CLOSED_DAY_ADDED, actor=actor, library_id=library_id, now=now, day=day)


def remove_closed_day(session: Session, library_id: int, day: date, actor: Actor, now: datetime) -> None:
    removed = session.execute(
        delete(ClosedDay).where(ClosedDay.library_id == library_id, ClosedDay.day == day)).rowcount
    if not removed:
        raise Refused(ClosedDayProblem.NOT_CLOSED, day=day)
    record_event(session, kind=EventKind.CLOSED_DAY_REMOVED, actor=actor, library_id=library_id, now=now,
                 day=day)
