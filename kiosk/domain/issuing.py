"""Issuing a code to a reader: the one function every channel (kiosk, desk, API,
CLI) calls, so the rules live in one place.

The functions here never commit: callers run them in the one unit of work,
kiosk.storage.database.run_in_transaction (with late_lock=True: issuing takes the
lock itself).

The path is kept near the storage floor (issue 13): settings come from the
process's snapshot (kiosk.domain.snapshot), the reader's whole history is one
read, the claim is one statement, and the rows are written with plain INSERTs.

Safety under concurrency:
- SQLite: what no other issuer changes (the card register, the reader's facts) is
  read first; then take_write_lock begins IMMEDIATE, so the reader's codes, the
  rules about them and the claim are read and written by one issuer at a time.
- PostgreSQL: the free code is taken with FOR UPDATE SKIP LOCKED, so two issuers
  never take the same code, and the unique index on live issuances stops a reader
  served twice at once: the loser rolls back (its code stays free) and retries,
  finding the winner's issuance, which it returns as a reprint.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.cards import CardAnswer, CardRefusal, card_record, check_card, check_format
from kiosk.domain.clock import local_day
from kiosk.domain.consortium import service_end as consortium_service_end
from kiosk.domain.eligibility import (Ineligibility, Ineligible, Opening, ReaderFacts, facts_of_record,
                                      facts_verdict, history_verdict, opening_of, reader_history)
from kiosk.domain.events import EventKind, insert_event, record_event
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.domain.reprints import IssuanceRefusal, IssuanceRefused, count_print, refusal_for
from kiosk.domain.reserves import bound_by, lock_window, reserves_verdict
from kiosk.domain.rules import Rules
from kiosk.domain.snapshot import LibraryView, PlatformView, Snapshot, snapshot
from kiosk.storage.database import lock_for_transaction, take_write_lock
from kiosk.storage.models import CardCheckKind, Channel, Code, CodeStatus, Issuance, Library, Pool

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


@dataclass(frozen=True)
class IssuePlan:
    """What issuing reads before it takes the write lock: nothing here changes
    while other kiosks issue (settings, the card register, the reader's facts)."""

    library: LibraryView
    platform: PlatformView
    card: str  # normalised
    key: str | None  # the reader key, for an accepted card
    refusal: CardRefusal | None
    service_ended: bool
    rules: Rules
    open_now: Opening
    facts_refusal: Ineligible | None  # age, loans, debt: applied after the reprint check
    today: date
    base: dict
    email: str | None = None  # with wants_email: where the library system or the register says to mail
    pin_checked: bool = False  # the library system confirmed the reader's PIN


def plan_issue(session: Session, snap: Snapshot, *, library_slug: str, card_number: str, now: datetime,
               pepper: str, platform_slug: str = "legimi", answer: CardAnswer | None = None,
               wants_email: bool = False) -> IssuePlan:
    """The reads of an issue that need no lock (kiosk.storage.database.take_write_lock).
    wants_email: the reader's address is looked up too (the online form)."""
    library, platform = snap.libraries.get(library_slug), snap.platforms.get(platform_slug)
    if library is None or platform is None:
        raise UnknownLibrary(library_slug if library is None else platform_slug)
    today = local_day(now, library.timezone)
    rules = snap.rules_for(library.id)
    card = normalise_card(card_number)
    fallback = answer is not None and answer.fallback
    record = None
    wants_record = check_format(card, library.card_pattern, library.card_check_digit) is None and (
        library.card_check == CardCheckKind.REGISTRY or fallback or rules.needs_reader_facts or wants_email)
    if wants_record:
        record = card_record(session, library.id, reader_key(pepper, card))  # the check and the facts: one read
    verdict = check_card(session, library, card_number, pepper, today, answer,
                         **({"record": record} if wants_record else {}))
    pools = snap.pools_of(library.id, platform.id, today)
    closed = snap.closed.get(library.id, frozenset()) if rules.counts_working_days else frozenset()
    facts = ReaderFacts()
    if verdict.accepted and rules.needs_reader_facts:
        # What the library system said, and the card register for what it did not (the
        # last loan, which SIP2 does not carry).
        register = facts_of_record(library, record)
        facts = register if answer is None or fallback else answer.facts.or_else(register)
    return IssuePlan(
        library=library, platform=platform, card=verdict.card, refusal=verdict.refusal,
        key=reader_key(pepper, verdict.card) if verdict.accepted else None,
        service_ended=snap.service_end is not None and today > snap.service_end, rules=rules,
        open_now=opening_of(pools, closed, library, rules, now), facts_refusal=facts_verdict(rules, facts, today),
        today=today, base=dict(library=library.slug, platform=platform.slug, service_end=snap.service_end),
        email=(answer.email if answer is not None else None) or (record.email if record is not None else None),
        pin_checked=answer is not None and answer.pin_checked)


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
    snap: Snapshot | None = None,
) -> IssueResult:
    """Hand the reader this window's code: a new one, the one they already have,
    or a refusal that says why (the card, the pool, the library's rules).

    For a library that checks cards over SIP2, `answer` is what its system said,
    asked before this transaction opened (kiosk.domain.library_system). `snap` is
    the settings a caller read this request already (kiosk.domain.snapshot)."""
    plan = plan_issue(session, snap or snapshot(session), library_slug=library_slug, card_number=card_number,
                      now=now, pepper=pepper, platform_slug=platform_slug, answer=answer)
    return carry_out(session, plan, channel=channel, actor=actor, now=now, note=note, show_reprint=show_reprint)


def carry_out(session: Session, plan: IssuePlan, *, channel: Channel, actor: Actor, now: datetime,
              note: str | None = None, show_reprint: bool = True) -> IssueResult:
    """The part of an issue that must see every other issuer's commit, under the
    write lock: the reader's codes, the rules about them, the claim, the records."""
    take_write_lock(session)
    library, platform, rules, base, today = plan.library, plan.platform, plan.rules, plan.base, plan.today
    if plan.refusal is not None:
        insert_event(session, kind=EventKind.CARD_REFUSED, actor=actor, library_id=library.id,
                     now=now, reason=plan.refusal, channel=channel)
        return IssueResult(Outcome.CARD_REFUSED, reason=plan.refusal, **base)
    if plan.service_ended:
        # Nothing after the service end, not even a reprint: no code can be activated.
        return _refuse(session, Outcome.SERVICE_ENDED, library, actor, channel, now, base, None)
    if rules.needs_reader_lock:
        # One reader at two kiosks choosing two platforms: one after the other.
        lock_for_transaction(session, f"reader:{library.id}:{plan.key}")
    window, upcoming = plan.open_now.window, plan.open_now.upcoming
    history = reader_history(session, library.id, plan.key)
    existing = history.live(platform.id, window, today)
    if existing is not None:
        return _again(session, existing, library, actor, channel, now, base, show_reprint)

    next_from = upcoming.released_at.date() if upcoming else None
    if window is None:
        if plan.open_now.not_yet(today):
            return _not_eligible(session, Ineligible(Ineligibility.NOT_YET, next_release=upcoming.released_at,
                                                     window_start=upcoming.start),
                                 library, actor, channel, now, base)
        return _refuse(session, Outcome.NO_POOL, library, actor, channel, now, base, next_from)

    ineligible = plan.facts_refusal or history_verdict(session, rules, library, platform, history, window, today)
    if ineligible is not None:
        return _not_eligible(session, ineligible, library, actor, channel, now, base)
    bound = bound_by(rules, window, today, first_timer=history.first_timer, channel=channel)
    if bound:
        # Who must leave a share for others queues for the count and the take; who
        # is owed every share need not wait (kiosk.domain.reserves).
        lock_window(session, window)
        held = reserves_verdict(session, rules, window, library.id, bound)
        if held is not None:
            return _not_eligible(session, held, library, actor, channel, now, base)

    picked = claim_code(session, window.pool_ids)
    if picked is None:
        # On PostgreSQL the claim may have waited for the last codes' holders: one of
        # them may have served this very reader (a double press), who hears "reprint".
        if session.connection().dialect.name == "postgresql":
            existing = reader_history(session, library.id, plan.key).live(platform.id, window, today)
            if existing is not None:
                return _again(session, existing, library, actor, channel, now, base, show_reprint)
        return _refuse(session, Outcome.NO_CODES_LEFT, library, actor, channel, now, base, next_from)
    code_id, value = picked
    issuance_id = session.connection().execute(_INSERT_ISSUANCE, dict(
        code_id=code_id, library_id=library.id, platform_id=platform.id, reader_key=plan.key,
        window_start=window.start, window_end=window.end, channel=channel.value, actor=actor.label,
        kiosk_id=actor.kiosk_id, staff_user_id=actor.staff_user_id, issued_at=now, print_count=1,
        card_hint=card_hint(plan.card), note=(note or "").strip() or None, first_timer=history.first_timer,
        voided_at=None)).scalar_one()  # the unique index speaks here if the reader was just served
    insert_event(session, kind=EventKind.ISSUE, actor=actor, library_id=library.id, now=now,
                 issuance_id=issuance_id, code_id=code_id, channel=channel)
    return IssueResult(Outcome.ISSUED, code=value, valid_from=window.start, valid_until=window.end,
                       issuance_id=issuance_id, issued_at=now, print_count=1, **base)


_INSERT_ISSUANCE = insert(Issuance.__table__).returning(Issuance.__table__.c.id)
# The claim in one statement: the pool's first free code, marked issued. On
# PostgreSQL SKIP LOCKED lets parallel issuers take the next one instead of waiting;
# SQLite's issuers hold the write lock. The outer condition never takes a taken code.
_CLAIM = """UPDATE codes SET status = 'issued'
WHERE id = (SELECT id FROM codes WHERE pool_id = :pool_id AND status = 'available' ORDER BY id LIMIT 1{lock})
AND status = 'available' RETURNING id, value"""
_CLAIMS = {"postgresql": text(_CLAIM.format(lock=" FOR UPDATE SKIP LOCKED")), "sqlite": text(_CLAIM.format(lock=""))}
# PostgreSQL: a free code another issuer holds (its transaction not yet ended), waited for,
# but not for ever: a session left open holding one (a hung worker) makes this a busy
# database (retried, then "try again"), never a queue of stuck requests.
_BOUNDED_WAIT = text("SET LOCAL lock_timeout = '5s'")
_WAIT_FOR_HELD = text("SELECT id FROM codes WHERE pool_id = ANY(:pool_ids) AND status = 'available' "
                      "ORDER BY id LIMIT 1 FOR UPDATE")


def claim_code(session: Session, pool_ids) -> tuple[int, str] | None:
    """(id, value) of the next free code of those pools, in the order given (the
    oldest import first), now marked issued; None when every one is taken.

    On PostgreSQL the skipped codes are held by issuers still in their
    transactions; one may yet roll back and free its code. So "none" is said only
    when no free code is left at all: the last readers wait for the holders
    instead of being told "no codes left" while a code comes free."""
    connection = session.connection()
    claim = _CLAIMS[connection.dialect.name]
    while True:
        for pool_id in pool_ids:
            picked = connection.execute(claim, {"pool_id": pool_id}).first()
            if picked is not None:
                return picked[0], picked[1]
        if connection.dialect.name != "postgresql":
            return None
        # Waits while a holder's transaction runs; none free and none held: none left.
        connection.execute(_BOUNDED_WAIT)
        if connection.execute(_WAIT_FOR_HELD, {"pool_ids": list(pool_ids)}).first() is None:
            return None


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
    same_window = session.scalars(select(Pool.id).where(
        Pool.library_id == library_id, Pool.platform_id == old.platform_id,
        Pool.valid_from == old.window_start, Pool.valid_until == old.window_end)
        .order_by(Pool.imported_at, Pool.id)).all()
    picked = claim_code(session, same_window)
    if picked is None:
        raise IssuanceRefused(IssuanceRefusal.NO_CODES_LEFT)
    code_id, value = picked
    new = Issuance(
        code_id=code_id, library_id=library_id, platform_id=old.platform_id, reader_key=old.reader_key,
        # The reader's channel stays (the online share counts by it); the staff member is the actor.
        window_start=old.window_start, window_end=old.window_end, channel=old.channel,
        actor=actor.label, staff_user_id=actor.staff_user_id, issued_at=now, print_count=1,
        card_hint=old.card_hint, note=old.note, first_timer=old.first_timer,
    )
    session.add(new)
    session.flush()
    record_event(session, kind=EventKind.VOID, actor=actor, library_id=library_id, now=now,
                 issuance_id=old.id, code_id=old.code_id, reason=reason)
    record_event(session, kind=EventKind.REPLACE, actor=actor, library_id=library_id, now=now,
                 issuance_id=new.id, replaces_issuance_id=old.id, code_id=code_id)
    return IssueResult(Outcome.ISSUED, code=value, valid_from=old.window_start, valid_until=old.window_end,
                       issuance_id=new.id, issued_at=now, print_count=1)


def _again(session: Session, existing, library: LibraryView, actor: Actor, channel: Channel, now: datetime,
           base: dict, show_reprint: bool) -> IssueResult:
    """The reader has this window's code already: shown again (counted), or withheld."""
    if not show_reprint:
        insert_event(session, kind=EventKind.REPRINT_WITHHELD, actor=actor, library_id=library.id, now=now,
                     issuance_id=existing.id, channel=channel)
        return IssueResult(Outcome.REPRINT_WITHHELD, **base)
    count = count_print(session, existing.id, library.id, actor, channel, now)
    return IssueResult(Outcome.REPRINT, code=existing.code, valid_from=existing.window_start,
                       valid_until=existing.window_end, issuance_id=existing.id,
                       issued_at=existing.issued_at, print_count=count, **base)


def _refuse(session: Session, outcome: Outcome, library: Library, actor: Actor,
            channel: Channel, now: datetime, base: dict, next_pool_from: date | None) -> IssueResult:
    insert_event(session, kind=EventKind(outcome.value), actor=actor, library_id=library.id, now=now,
                 channel=channel)
    return IssueResult(outcome, next_pool_from=next_pool_from, **base)


def _not_eligible(session: Session, ineligible: Ineligible, library: Library, actor: Actor, channel: Channel,
                  now: datetime, base: dict) -> IssueResult:
    insert_event(session, kind=EventKind.NOT_ELIGIBLE, actor=actor, library_id=library.id, now=now,
                 channel=channel, platform=base["platform"], reason=ineligible.reason,
                 **({"missing": ineligible.missing} if ineligible.missing else {}))
    return IssueResult(Outcome.NOT_ELIGIBLE, ineligible=ineligible, **base)
