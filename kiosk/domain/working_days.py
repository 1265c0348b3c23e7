"""Working days: Monday to Friday, except Polish public holidays (the `holidays`
package, which knows the 24 December holiday from 2025) and the library's own
closed days. Release days move on these (kiosk.domain.rules)."""
from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.clock import sane
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.refusals import Refused
from kiosk.storage.models import ClosedDay

# A search for the next working day never runs further than this: a library
# closed for longer has set its closed days wrongly, and the release stays put.
LONGEST_CLOSURE = timedelta(days=62)


@lru_cache(maxsize=256)
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.Poland(years=year))


def is_public_holiday(day: date) -> bool:
    return day in _public_holidays(day.year)


def public_holiday_name(day: date) -> str | None:
    return holidays.Poland(years=day.year, language="pl").get(day)


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


class ClosedDayProblem(enum.StrEnum):
    ALREADY_CLOSED = "already_closed"
    NOT_CLOSED = "not_closed"


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
