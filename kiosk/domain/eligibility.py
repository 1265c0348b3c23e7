"""Whether a reader may have a code now, by the library's published rules
(kiosk.domain.rules): which window is open, and the reader's age, loans, debt,
activations, other platforms and the first-timer reserve.

Only kiosk.domain.issuing calls this, inside the unit of work that hands out the
code, so every channel gets the same verdict."""
from __future__ import annotations

import calendar
import enum
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from kiosk.domain.clock import add_months, local_day
from kiosk.domain.rules import PlatformsRule, Rules, day_of_window, release_moment
from kiosk.domain.working_days import LONGEST_CLOSURE, closed_days
from kiosk.storage.models import (ActivationImport, CardRecord, Code, CodeStatus, Issuance, Library, Platform,
                                  Pool)


class Ineligibility(enum.StrEnum):
    """Why the rules say no; each has a sentence with what to do next (kiosk.wording)."""

    NOT_YET = "not_yet"
    TOO_YOUNG = "too_young"
    INACTIVE = "inactive"
    DEBT = "debt"
    NOT_ACTIVATED = "not_activated"
    RESERVED = "reserved"
    OTHER_PLATFORM = "other_platform"
    NO_DATA = "no_data"


class Fact(enum.StrEnum):
    """What a rule may need to know about a reader, and where it comes from."""

    BIRTH_DATE = "birth_date"  # the card register, or the library system over SIP2 (PB/BC)
    LAST_LOAN = "last_loan"  # the card register
    DEBT = "debt"  # the card register, or the library system over SIP2 (BV)
    ACTIVATIONS = "activations"  # the platform's list of activated codes


@dataclass(frozen=True)
class Ineligible:
    reason: Ineligibility
    next_release: datetime | None = None  # NOT_YET: aware, in the library's zone
    eligible_from: date | None = None  # NOT_ACTIVATED, RESERVED, OTHER_PLATFORM with a priority day
    platform: str | None = None  # OTHER_PLATFORM: the slug of the code the reader holds
    platform_name: str | None = None
    missing: Fact | None = None  # NO_DATA
    limit: int | None = None  # the rule's number: TOO_YOUNG years, INACTIVE months, DEBT grosze
    window_start: date | None = None  # NOT_YET: the window whose codes come then


@dataclass(frozen=True)
class ReaderFacts:
    known: frozenset[Fact] = frozenset()
    birth_date: date | None = None
    last_loan: date | None = None
    debt_grosze: int | None = None

    def or_else(self, other: ReaderFacts) -> ReaderFacts:
        """These facts, and the other's for what these do not know: the library
        system's answer first, the card register for what SIP2 does not carry."""
        take = {fact: (self if fact in self.known else other) for fact in Fact}
        return ReaderFacts(known=self.known | other.known, birth_date=take[Fact.BIRTH_DATE].birth_date,
                           last_loan=take[Fact.LAST_LOAN].last_loan, debt_grosze=take[Fact.DEBT].debt_grosze)


_FACT_NAMES = {fact.value for fact in Fact}


def facts_from_register(session: Session, library: Library, key: str) -> ReaderFacts:
    """The facts the library's last card register import gave for this reader: a
    fact whose column the register had is known (a blank debt is no debt, a blank
    last loan is no loan yet); a reader not in the register has no facts."""
    record = session.scalar(select(CardRecord).where(CardRecord.library_id == library.id,
                                                     CardRecord.reader_key == key))
    if record is None or not library.register_facts:
        return ReaderFacts()
    known = frozenset(Fact(name) for name in library.register_facts.split(",") if name in _FACT_NAMES)
    return ReaderFacts(known=known, birth_date=record.birth_date, last_loan=record.last_loan,
                       debt_grosze=record.debt_grosze or 0)


# -- which window is open ------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    start: date
    end: date
    pool_ids: tuple[int, ...]
    code_count: int
    released_at: datetime


@dataclass(frozen=True)
class Opening:
    window: Window | None  # released and not over: codes are handed out from it
    upcoming: Window | None  # the next window to be released

    def not_yet(self, today: date) -> bool:
        """A release is due that a rule holds back: the window has begun, or its
        release day is today."""
        if self.window is not None or self.upcoming is None:
            return False
        return self.upcoming.start <= today or self.upcoming.released_at.date() <= today


def opening(session: Session, library: Library, platform_id: int, rules: Rules, now: datetime) -> Opening:
    today = local_day(now, library.timezone)
    rows = session.execute(
        select(Pool.id, Pool.valid_from, Pool.valid_until, Pool.code_count)
        .where(Pool.library_id == library.id, Pool.platform_id == platform_id, Pool.valid_until >= today)
        .order_by(Pool.valid_from, Pool.id)
    ).all()
    if not rows:
        return Opening(None, None)
    closed = (closed_days(session, library.id, since=today - LONGEST_CLOSURE * 2) if rules.counts_working_days
              else frozenset())
    windows: dict[tuple[date, date], list] = {}
    for pool_id, start, end, count in rows:
        windows.setdefault((start, end), []).append((pool_id, count))
    released, upcoming = None, None
    for (start, end), pools in windows.items():
        window = Window(start, end, tuple(p for p, _ in pools), sum(c for _, c in pools),
                        release_moment(rules, start, closed, library.timezone))
        if window.released_at <= now:
            released = window  # the latest released window wins (an early release)
        elif upcoming is None:
            upcoming = window
    return Opening(released, upcoming)


# -- the reader's rules ------------------------------------------------------------------

def birthday(born: date, age: int) -> date:
    """The day one turns `age`. Born on 29 February: 28 February in a common year
    (art. 112 of the Civil Code: the last day of the month when the day is missing)."""
    year = born.year + age
    if year > date.max.year:
        return date.max
    if born.month == 2 and born.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return born.replace(year=year)


def reader_verdict(session: Session, *, rules: Rules, library: Library, platform: Platform, key: str,
                   window: Window, today: date, facts: ReaderFacts) -> Ineligible | None:
    """The first rule the reader does not meet, or None."""
    if rules.min_age is not None:
        if Fact.BIRTH_DATE not in facts.known or facts.birth_date is None:
            return Ineligible(Ineligibility.NO_DATA, missing=Fact.BIRTH_DATE)
        if today < birthday(facts.birth_date, rules.min_age):
            return Ineligible(Ineligibility.TOO_YOUNG, eligible_from=birthday(facts.birth_date, rules.min_age),
                              limit=rules.min_age)
    if rules.active_within_months is not None:
        if Fact.LAST_LOAN not in facts.known:
            return Ineligible(Ineligibility.NO_DATA, missing=Fact.LAST_LOAN)
        if facts.last_loan is None or facts.last_loan < add_months(today, -rules.active_within_months):
            return Ineligible(Ineligibility.INACTIVE, limit=rules.active_within_months)
    if rules.max_debt_grosze is not None:
        if Fact.DEBT not in facts.known:
            return Ineligible(Ineligibility.NO_DATA, missing=Fact.DEBT)
        if (facts.debt_grosze or 0) > rules.max_debt_grosze:
            return Ineligible(Ineligibility.DEBT, limit=rules.max_debt_grosze)
    if rules.non_activation_wait is not None:
        verdict = _activation_verdict(session, library, key, window, today, rules.non_activation_wait)
        if verdict is not None:
            return verdict
    if rules.platforms_rule is not PlatformsRule.INDEPENDENT:
        return _platform_verdict(session, rules, library, platform, key, window, today)
    return None


def _activation_verdict(session: Session, library: Library, key: str, window: Window, today: date,
                        months: int) -> Ineligible | None:
    """A code of a finished window that was never activated keeps the reader
    waiting `months` whole months after that window: eligible again on the first
    day of the month after them. Whether it was activated is known only once the
    platform's list was imported after the window ended."""
    horizon = add_months(window.start.replace(day=1), -(months + 1))
    unactivated = session.execute(
        select(Issuance.platform_id, Issuance.window_end)
        .join(Code, Issuance.code_id == Code.id)
        .where(Issuance.library_id == library.id, Issuance.reader_key == key, Issuance.voided_at.is_(None),
               # Finished: a code may still be activated on its window's last day,
               # so on an early release that window is not judged yet.
               Issuance.window_end < window.start, Issuance.window_end < today, Issuance.window_end >= horizon,
               Code.activation_marked_at.is_(None))
        .order_by(Issuance.window_end.desc())
    ).all()
    unknown = False
    for platform_id, window_end in unactivated:
        eligible_from = add_months(window_end.replace(day=1), months + 1)
        if eligible_from <= window.start:
            continue
        reported = session.scalar(select(exists().where(
            ActivationImport.library_id == library.id, ActivationImport.platform_id == platform_id,
            ActivationImport.as_of > window_end)))
        if reported:
            return Ineligible(Ineligibility.NOT_ACTIVATED, eligible_from=eligible_from)
        unknown = True
    return Ineligible(Ineligibility.NO_DATA, missing=Fact.ACTIVATIONS) if unknown else None


def _platform_verdict(session: Session, rules: Rules, library: Library, platform: Platform, key: str,
                      window: Window, today: date) -> Ineligible | None:
    """Another platform's code of this month (its window starts in the month this
    window starts in): refused under "one a month"; under "priority" only until the
    priority day."""
    other = session.execute(
        select(Platform.slug, Platform.name)
        .join(Issuance, Issuance.platform_id == Platform.id)
        .where(Issuance.library_id == library.id, Issuance.reader_key == key, Issuance.voided_at.is_(None),
               Issuance.platform_id != platform.id, *same_month(window.start))
        .limit(1)).first()
    if other is None:
        return None
    if rules.platforms_rule is PlatformsRule.ONE_PER_MONTH:
        return Ineligible(Ineligibility.OTHER_PLATFORM, platform=other.slug, platform_name=other.name)
    until = day_of_window(window.start, rules.priority_until_day) or window.end + timedelta(days=1)
    if today < until:
        return Ineligible(Ineligibility.OTHER_PLATFORM, platform=other.slug, platform_name=other.name,
                          eligible_from=until)
    return None


# -- the first-timer reserve -----------------------------------------------------------

def is_first_timer(session: Session, library_id: int, key: str) -> bool:
    """No code of this library ever, on any platform."""
    return not session.scalar(select(exists().where(Issuance.library_id == library_id,
                                                    Issuance.reader_key == key)))


def reserve_until(rules: Rules, window: Window) -> date | None:
    """The day the reserve is released (None: no reserve)."""
    if not rules.first_timer_reserve:
        return None
    return day_of_window(window.start, rules.first_timer_until_day) or window.end + timedelta(days=1)


def reserve_in_force(rules: Rules, window: Window, today: date) -> bool:
    until = reserve_until(rules, window)
    return until is not None and today < until


def reserve_verdict(session: Session, rules: Rules, window: Window, library_id: int) -> Ineligible | None:
    """For a returning reader while the reserve is in force: refused when the free
    codes left are no more than the reserve still owed to first-time readers (the
    reserve, less the codes first-timers have had in this window). The caller
    holds the window's pools locked, so the counts cannot change under it."""
    reserved = sum(math.ceil(count * rules.first_timer_reserve / 100) for count in session.scalars(
        select(Pool.code_count).where(Pool.id.in_(window.pool_ids))))
    first_timers = session.scalar(select(func.count(Issuance.id)).where(
        Issuance.library_id == library_id, Issuance.first_timer, Issuance.voided_at.is_(None),
        Issuance.code_id.in_(select(Code.id).where(Code.pool_id.in_(window.pool_ids)))))
    owed = max(0, reserved - first_timers)
    if owed == 0:
        return None
    free = session.scalar(select(func.count(Code.id)).where(
        Code.pool_id.in_(window.pool_ids), Code.status == CodeStatus.AVAILABLE.value))
    if 0 < free <= owed:
        return Ineligible(Ineligibility.RESERVED, eligible_from=reserve_until(rules, window))
    return None


def lock_window(session: Session, window: Window) -> None:
    """Issuers of one window queue here while a reserve is in force (PostgreSQL;
    SQLite's write transactions queue anyway)."""
    session.execute(select(Pool.id).where(Pool.id.in_(window.pool_ids)).order_by(Pool.id).with_for_update())


def same_month(day: date) -> tuple:
    """Issuances whose window starts in `day`'s calendar month: "this month's code"
    whatever the shape of a platform's windows."""
    first = day.replace(day=1)
    return Issuance.window_start >= first, Issuance.window_start < add_months(first, 1)


def platform_held(session: Session, library_id: int, key: str, month: date) -> str | None:
    """The platform of the reader's live code of that month, if any (the slug)."""
    return session.scalar(
        select(Platform.slug).join(Issuance, Issuance.platform_id == Platform.id)
        .where(Issuance.library_id == library_id, Issuance.reader_key == key, Issuance.voided_at.is_(None),
               *same_month(month))
        .order_by(Issuance.issued_at.desc()).limit(1))
