"""Issuing a code to a reader: the one function every channel (kiosk, desk, API,
CLI) calls, so the rules live in one place.

The functions here never commit: callers run them in the one unit of work,
kiosk.storage.database.run_in_transaction.

Safety under concurrency:
- SQLite: a write transaction starts with BEGIN IMMEDIATE (kiosk.storage.database),
  so issuers run one at a time.
- PostgreSQL: the free code is taken with FOR UPDATE SKIP LOCKED, so two issuers
  never take the same code, and the unique index on live issuances stops a reader
  served twice at once: the loser rolls back (its code stays free) and retries,
  finding the winner's issuance, which it returns as a reprint.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.cards import CardAnswer, CardRefusal, check_card
from kiosk.domain.clock import local_day
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.consortium import service_end as consortium_service_end
from kiosk.domain.eligibility import (Ineligibility, Ineligible, ReaderFacts, Window, facts_from_register,
                                      is_first_timer, lock_window, opening, reader_verdict, reserve_in_force,
                                      reserve_verdict)
from kiosk.domain.readers import reader_key
from kiosk.domain.reprints import IssuanceRefusal, IssuanceRefused, count_print, refusal_for
from kiosk.domain.rules import rules_for
from kiosk.storage.database import lock_for_transaction
from kiosk.storage.models import Channel, Code, CodeStatus, Issuance, Library, Platform, Pool


class Outcome(enum.StrEnum):
    ISSUED = "issued"
    REPRINT = "reprint"
    REPRINT_WITHHELD = "reprint_withheld"  # the reader has a code; this channel may not show it
    NO_CODES_LEFT = "no_codes_left"
    NO_POOL = "no_pool"
    CARD_REFUSED = "card_refused"
    SERVICE_ENDED = "service_ended"
    NOT_ELIGIBLE = "not_eligible"  # the library's rules say no (kiosk.domain.eligibility)


@dataclass(frozen=True)
class IssueResult:
    outcome: Outcome
    code: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None  # the activation deadline printed on the slip
    issuance_id: int | None = None
    issued_at: datetime | None = None
    print_count: int = 0
    reason: CardRefusal | None = None
    ineligible: Ineligible | None = None
    next_pool_from: date | None = None
    service_end: date | None = None
    library: str | None = None
    platform: str | None = None

    @property
    def has_code(self) -> bool:
        return self.outcome in (Outcome.ISSUED, Outcome.REPRINT)

    def as_json(self) -> dict:
        iso = lambda day: day.isoformat() if day else None  # noqa: E731
        # The CLI's contract: after the service end it is "no_pool" with the reason
        # "service_ended".
        ended = self.outcome is Outcome.SERVICE_ENDED
        reason = self.reason.value if self.reason else None
        if ended:
            reason = "service_ended"
        elif self.ineligible is not None:
            reason = self.ineligible.reason.value
        answer = {
            "status": Outcome.NO_POOL.value if ended else self.outcome.value,
            "code": self.code,
            "valid_from": iso(self.valid_from),
            "valid_until": iso(self.valid_until),
            "reason": reason,
            "issued_at": iso(self.issued_at),
            "print_count": self.print_count,
            "next_pool_from": iso(self.next_pool_from),
            "service_end": iso(self.service_end),
            "platform": self.platform,
        }
        if self.ineligible is not None:
            answer.update({
                "next_release": iso(self.ineligible.next_release),
                "eligible_from": iso(self.ineligible.eligible_from),
                "other_platform": self.ineligible.platform,
                "missing": self.ineligible.missing.value if self.ineligible.missing else None,
            })
        return answer


def card_hint(card: str) -> str | None:
    """The last four characters, only for a card long enough that they do not give
    the card away (the card number itself is never stored)."""
    return card[-4:] if len(card) >= 8 else None


class UnknownLibrary(LookupError):
    pass


def issue_code(
    session: Session,
    *,
    library_slug: str,
    card_number: str,
    channel: Channel,
    actor: Actor,
    now: datetime,
    pepper: str,
    platform_slug: str = "legimi",
    note: str | None = None,
    show_reprint: bool = True,
    answer: CardAnswer | None = None,
) -> IssueResult:
    """Hand the reader this window's code: a new one, the one they already have,
    or a refusal that says why (the card, the pool, the library's rules).

    For a library that checks cards over SIP2, `answer` is what its system said,
    asked before this transaction opened (kiosk.domain.library_system)."""
    library = session.scalar(select(Library).where(Library.slug == library_slug))
    platform = session.scalar(select(Platform).where(Platform.slug == platform_slug))
    if library is None or platform is None:
        raise UnknownLibrary(library_slug if library is None else platform_slug)
    today = local_day(now, library.timezone)
    service_end = consortium_service_end(session)
    base = dict(library=library.slug, platform=platform.slug, service_end=service_end)

    verdict = check_card(session, library, card_number, pepper, today, answer)
    if not verdict.accepted:
        record_event(session, kind=EventKind.CARD_REFUSED, actor=actor, library_id=library.id,
                     now=now, reason=verdict.refusal, channel=channel)
        return IssueResult(Outcome.CARD_REFUSED, reason=verdict.refusal, **base)
    key = reader_key(pepper, verdict.card)
    if service_end is not None and today > service_end:
        # Nothing after the service end, not even a reprint: no code can be activated.
        return _refuse(session, Outcome.SERVICE_ENDED, library, actor, channel, now, base, None)

    rules = rules_for(session, library.id)
    if rules.needs_reader_lock:
        # One reader at two kiosks choosing two platforms: one after the other.
        lock_for_transaction(session, f"reader:{library.id}:{key}")
    open_now = opening(session, library, platform.id, rules, now)
    window = open_now.window
    existing = _live_issuance(session, library, platform, key, window, today)
    if existing is not None:
        issuance, value = existing
        if not show_reprint:
            record_event(session, kind=EventKind.REPRINT_WITHHELD, actor=actor, library_id=library.id, now=now,
                         issuance_id=issuance.id, channel=channel)
            return IssueResult(Outcome.REPRINT_WITHHELD, **base)
        count = count_print(session, issuance.id, library.id, actor, channel, now)
        return IssueResult(Outcome.REPRINT, code=value, valid_from=issuance.window_start,
                           valid_until=issuance.window_end, issuance_id=issuance.id,
                           issued_at=issuance.issued_at, print_count=count, **base)

    upcoming = open_now.upcoming
    next_from = upcoming.released_at.date() if upcoming else None
    if window is None:
        if open_now.not_yet(today):
            return _not_eligible(session, Ineligible(Ineligibility.NOT_YET, next_release=upcoming.released_at,
                                                          window_start=upcoming.start),
                                 library, actor, channel, now, base)
        return _refuse(session, Outcome.NO_POOL, library, actor, channel, now, base, next_from)

    ineligible = reader_verdict(session, rules=rules, library=library, platform=platform, key=key,
                                window=window, today=today,
                                facts=_reader_facts(session, library, key, answer) if rules.needs_reader_facts
                                else ReaderFacts())
    if ineligible is not None:
        return _not_eligible(session, ineligible, library, actor, channel, now, base)
    first_timer = is_first_timer(session, library.id, key)
    if reserve_in_force(rules, window, today):
        lock_window(session, window)
        held = None if first_timer else reserve_verdict(session, rules, window, library.id)
        if held is not None:
            return _not_eligible(session, held, library, actor, channel, now, base)

    # Oldest-imported pool first; SKIP LOCKED lets parallel issuers take other codes.
    picked = _take_free_code(session, list(window.pool_ids))
    if picked is None:
        return _refuse(session, Outcome.NO_CODES_LEFT, library, actor, channel, now, base, next_from)
    code_id, value, valid_from, valid_until = picked
    issuance = Issuance(
        code_id=code_id, library_id=library.id, platform_id=platform.id, reader_key=key,
        window_start=valid_from, window_end=valid_until, channel=channel.value,
        actor=actor.label, kiosk_id=actor.kiosk_id, staff_user_id=actor.staff_user_id,
        issued_at=now, print_count=1, card_hint=card_hint(verdict.card), note=(note or "").strip() or None,
        first_timer=first_timer,
    )
    session.add(issuance)
    session.flush()  # the unique index speaks here if the reader was just served
    record_event(session, kind=EventKind.ISSUE, actor=actor, library_id=library.id, now=now,
                 issuance_id=issuance.id, code_id=code_id, channel=channel)
    return IssueResult(Outcome.ISSUED, code=value, valid_from=valid_from, valid_until=valid_until,
                       issuance_id=issuance.id, issued_at=now, print_count=1, **base)


def _live_issuance(session: Session, library: Library, platform: Platform, key: str, window: Window | None,
                   today: date):
    """The reader's live code of the open window (or, with none open, of today)."""
    if window is not None:
        in_window = Issuance.window_start == window.start
    else:
        in_window = (Issuance.window_start <= today) & (Issuance.window_end >= today)
    return session.execute(
        select(Issuance, Code.value)
        .join(Code, Issuance.code_id == Code.id)
        .where(Issuance.library_id == library.id, Issuance.platform_id == platform.id,
               Issuance.reader_key == key, Issuance.voided_at.is_(None), in_window)
    ).first()


def _take_free_code(session: Session, pool_ids) -> tuple | None:
    """(id, value, valid_from, valid_until) of the next free code of those pools,
    marked issued; oldest-imported pool first. SKIP LOCKED lets parallel issuers
    take other codes (PostgreSQL); the conditional UPDATE never takes a taken one."""
    picked = session.execute(
        select(Code.id, Code.value, Pool.valid_from, Pool.valid_until)
        .join(Pool, Code.pool_id == Pool.id)
        .where(Code.pool_id.in_(pool_ids), Code.status == CodeStatus.AVAILABLE.value)
        .order_by(Pool.imported_at, Pool.id, Code.id)
        .limit(1)
        .with_for_update(of=Code, skip_locked=True)
    ).first()
    if picked is None:
        return None
    taken = session.execute(
        update(Code)
        .where(Code.id == picked[0], Code.status == CodeStatus.AVAILABLE.value)
        .values(status=CodeStatus.ISSUED.value)
    ).rowcount
    if taken != 1:  # cannot happen under the locks above; never hand out a taken code
        raise IntegrityError("code taken concurrently", None, Exception("code taken"))
    return tuple(picked)


def replace_code(session: Session, *, library_id: int, issuance_id: int, reason: str, actor: Actor,
                 now: datetime) -> IssueResult:
    """Withdraw a faulty code and hand the same reader another one of the same
    window: both happen or neither (IssuanceRefused rolls the unit of work back).
    The library's rules are not asked again: the reader was served, and the code
    failed. So a replacement may take a code held for first-time readers."""
    reason = (reason or "").strip()[:500]
    if not reason:
        raise IssuanceRefused(IssuanceRefusal.REASON_MISSING)
    old = session.scalar(select(Issuance).where(Issuance.id == issuance_id, Issuance.library_id == library_id))
    if old is None:
        raise IssuanceRefused(IssuanceRefusal.NOT_FOUND)
    library = session.get(Library, library_id)
    refusal = refusal_for(old, local_day(now, library.timezone), consortium_service_end(session))
    if refusal is not None:
        raise IssuanceRefused(refusal)
    faulty = session.get(Code, old.code_id)
    faulty.status, faulty.void_reason, faulty.voided_at = CodeStatus.VOID.value, reason, now
    old.voided_at = now
    session.flush()  # frees the reader's live slot for the replacement
    same_window = select(Pool.id).where(
        Pool.library_id == library_id, Pool.platform_id == old.platform_id,
        Pool.valid_from == old.window_start, Pool.valid_until == old.window_end)
    picked = _take_free_code(session, same_window)
    if picked is None:
        raise IssuanceRefused(IssuanceRefusal.NO_CODES_LEFT)
    code_id, value, valid_from, valid_until = picked
    new = Issuance(
        code_id=code_id, library_id=library_id, platform_id=old.platform_id, reader_key=old.reader_key,
        window_start=old.window_start, window_end=old.window_end, channel=Channel.DESK.value,
        actor=actor.label, staff_user_id=actor.staff_user_id, issued_at=now, print_count=1,
        card_hint=old.card_hint, note=old.note, first_timer=old.first_timer,
    )
    session.add(new)
    session.flush()
    record_event(session, kind=EventKind.VOID, actor=actor, library_id=library_id, now=now,
                 issuance_id=old.id, code_id=old.code_id, reason=reason)
    record_event(session, kind=EventKind.REPLACE, actor=actor, library_id=library_id, now=now,
                 issuance_id=new.id, replaces_issuance_id=old.id, code_id=code_id)
    return IssueResult(Outcome.ISSUED, code=value, valid_from=valid_from, valid_until=valid_until,
                       issuance_id=new.id, issued_at=now, print_count=1)


def _reader_facts(session: Session, library: Library, key: str, answer: CardAnswer | None) -> ReaderFacts:
    """What the library system said, and the card register for what it did not
    (the last loan, which SIP2 does not carry)."""
    register = facts_from_register(session, library, key)
    return register if answer is None or answer.fallback else answer.facts.or_else(register)


def _refuse(session: Session, outcome: Outcome, library: Library, actor: Actor,
            channel: Channel, now: datetime, base: dict, next_pool_from: date | None) -> IssueResult:
    record_event(session, kind=EventKind(outcome.value), actor=actor, library_id=library.id, now=now,
                 channel=channel)
    return IssueResult(outcome, next_pool_from=next_pool_from, **base)


def _not_eligible(session: Session, ineligible: Ineligible, library: Library, actor: Actor, channel: Channel,
                  now: datetime, base: dict) -> IssueResult:
    record_event(session, kind=EventKind.NOT_ELIGIBLE, actor=actor, library_id=library.id, now=now,
                 channel=channel, platform=base["platform"], reason=ineligible.reason,
                 **({"missing": ineligible.missing} if ineligible.missing else {}))
    return IssueResult(Outcome.NOT_ELIGIBLE, ineligible=ineligible, **base)
