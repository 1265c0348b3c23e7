"""Whether a reader may have a code now, by the library's published rules
(kiosk.domain.rules): which window is open, and the reader's age, loans, debt,
activations and other platforms. The shares a pool keeps back (the first-timer
reserve, the online share) are kiosk.domain.reserves'.

Only kiosk.domain.issuing calls this, inside the unit of work that hands out the
code, so every channel gets the same verdict."""
from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from kiosk.domain.clock import add_months, local_day
from kiosk.domain.rules import PlatformsRule, Rules, day_of_window, release_moment
from kiosk.domain.working_days import LONGEST_CLOSURE, closed_days
from kiosk.storage.models import ActivationImport, Code, Issuance, Library, Platform, Pool


class Ineligibility(enum.StrEnum):
    """Why the rules say no; each has a sentence with what to do next (kiosk.wording)."""

    NOT_YET = "not_yet"
    TOO_YOUNG = "too_young"
    INACTIVE = "inactive"
    DEBT = "debt"
    NOT_ACTIVATED = "not_activated"
    RESERVED = "reserved"
    ONLINE_RESERVED = "online_reserved"  # the codes left are kept for the online form (kiosk.domain.reserves)
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


def facts_of_record(library: Library, record) -> ReaderFacts:
    """A fact whose column the register had is known (a blank debt is no debt, a
    blank last loan is no loan yet); a reader not in the register has no facts."""
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
    pools = session.execute(
        select(Pool.id, Pool.valid_from, Pool.valid_until, Pool.code_count, Pool.imported_at)
        .where(Pool.library_id == library.id, Pool.platform_id == platform_id, Pool.valid_until >= today)
        .order_by(Pool.valid_from, Pool.id)
    ).all()
    closed = (closed_days(session, library.id, since=today - LONGEST_CLOSURE * 2)
              if pools and rules.counts_working_days else frozenset())
    return opening_of(pools, closed, library, rules, now)


def opening_of(pools, closed: frozenset[date], library: Library, rules: Rules, now: datetime) -> Opening:
    """The open and the next window of these pools (id, valid_from, valid_until,
    code_count, imported_at; those not over yet, by valid_from). A window's pools
    are listed oldest import first: the order their codes are handed out in."""
    windows: dict[tuple[date, date], list] = {}
    for pool in pools:
        windows.setdefault((pool.valid_from, pool.valid_until), []).append(pool)
    released, upcoming = None, None
    for (start, end), found in windows.items():
        found = sorted(found, key=lambda pool: (pool.imported_at, pool.id))
        window = Window(start, end, tuple(pool.id for pool in found), sum(pool.code_count for pool in found),
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


@dataclass(frozen=True)
class PastIssuance:
    id: int
    platform_id: int
    window_start: date
    window_end: date
    live: bool  # not withdrawn
    issued_at: datetime
    print_count: int
    code: str
    activated: bool  # on an imported list of activated codes


@dataclass(frozen=True)
class ReaderHistory:
    """Every code the reader ever had of one library. One read answers all the
    questions issuing asks of it: the live code of this window, whether the
    reader is new, another platform's code this month, codes never activated."""

    issuances: tuple[PastIssuance, ...]

    @property
    def first_timer(self) -> bool:
        return not self.issuances  # no code of this library ever, on any platform

    def live(self, platform_id: int, window: Window | None, today: date) -> PastIssuance | None:
        """The live code of the open window (or, with none open, of today)."""
        for past in self.issuances:
            if past.live and past.platform_id == platform_id and (
                    past.window_start == window.start if window is not None
                    else past.window_start <= today <= past.window_end):
                return past
        return None

    def this_month(self, day: date, other_than: int | None = None) -> PastIssuance | None:
        """The newest live code whose window starts in `day`'s calendar month:
        "this month's code" whatever the shape of a platform's windows."""
        first = day.replace(day=1)
        found = [past for past in self.issuances if past.live and past.platform_id != other_than
                 and first <= past.window_start < add_months(first, 1)]
        return max(found, key=lambda past: past.issued_at) if found else None


_HISTORY = (select(Issuance.id, Issuance.platform_id, Issuance.window_start, Issuance.window_end,
                   Issuance.voided_at, Issuance.issued_at, Issuance.print_count, Code.value,
                   Code.activation_marked_at)
            .join(Code, Issuance.code_id == Code.id)
            .where(Issuance.library_id == bindparam("library_id"), Issuance.reader_key == bindparam("key")))


def reader_history(session: Session, library_id: int, key: str) -> ReaderHistory:
    rows = session.connection().execute(_HISTORY, {"library_id": library_id, "key": key})
    return ReaderHistory(tuple(
        PastIssuance(id=row[0], platform_id=row[1], window_start=row[2], window_end=row[3], live=row[4] is None,
                     issued_at=row[5], print_count=row[6], code=row[7], activated=row[8] is not None)
        for row in rows))


def facts_verdict(rules: Rules, facts: ReaderFacts, today: date) -> Ineligible | None:
    """Age, loans and debt: what the reader's facts say, whoever else is issuing."""
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
    return None


def history_verdict(session: Session, rules: Rules, library: Library, platform: Platform, history: ReaderHistory,
                    window: Window, today: date) -> Ineligible | None:
    """The rules about the reader's earlier codes: read under the write lock, as
    another kiosk may be handing this reader a code right now."""
    if rules.non_activation_wait is not None:
        verdict = _activation_verdict(session, library, history, window, today, rules.non_activation_wait)
        if verdict is not None:
            return verdict
    if rules.platforms_rule is not PlatformsRule.INDEPENDENT:
        return _platform_verdict(session, rules, platform, history, window, today)
    return None


def _activation_verdict(session: Session, library: Library, history: ReaderHistory, window: Window, today: date,
                        months: int) -> Ineligible | None:
    """A code of a finished window that was never activated keeps the reader
    waiting `months` whole months after that window: eligible again on the first
    day of the month after them. Whether it was activated is known only once the
    platform's list was imported after the window ended."""
    horizon = add_months(window.start.replace(day=1), -(months + 1))
    # Finished: a code may still be activated on its window's last day, so on an
    # early release that window is not judged yet.
    unactivated = sorted((past for past in history.issuances
                          if past.live and not past.activated and past.window_end < window.start
                          and past.window_end < today and past.window_end >= horizon),
                         key=lambda past: past.window_end, reverse=True)
    unknown = False
    for past in unactivated:
        eligible_from = add_months(past.window_end.replace(day=1), months + 1)
        if eligible_from <= window.start:
            continue
        reported = session.scalar(select(exists().where(
            ActivationImport.library_id == library.id, ActivationImport.platform_id == past.platform_id,
            ActivationImport.as_of > past.window_end)))
        if reported:
            return Ineligible(Ineligibility.NOT_ACTIVATED, eligible_from=eligible_from)
        unknown = True
    return Ineligible(Ineligibility.NO_DATA, missing=Fact.ACTIVATIONS) if unknown else None


def _platform_verdict(session: Session, rules: Rules, platform: Platform, history: ReaderHistory, window: Window,
                      today: date) -> Ineligible | None:
    """Another platform's code of this month (its window starts in the month this
    window starts in): refused under "one a month"; under "priority" only until the
    priority day."""
    other = history.this_month(window.start, other_than=platform.id)
    if other is None:
        return None
    slug, name = session.execute(select(Platform.slug, Platform.name).where(Platform.id == other.platform_id)).one()
    if rules.platforms_rule is PlatformsRule.ONE_PER_MONTH:
        return Ineligible(Ineligibility.OTHER_PLATFORM, platform=slug, platform_name=name)
    until = day_of_window(window.start, rules.priority_until_day) or window.end + timedelta(days=1)
    if today < until:
        return Ineligible(Ineligibility.OTHER_PLATFORM, platform=slug, platform_name=name, eligible_from=until)
    return None


def platform_held(session: Session, library_id: int, key: str, month: date) -> str | None:
    """The platform of the reader's live code of that month, if any (the slug)."""
    held = reader_history(session, library_id, key).this_month(month)
    return None if held is None else session.scalar(select(Platform.slug).where(Platform.id == held.platform_id))
