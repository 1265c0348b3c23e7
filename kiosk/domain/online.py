"""The online request form (/r/<library>/): a reader asks for this month's code
from home, with the card number (and the PIN where the library checks cards over
SIP2). The form's whole decision is here; kiosk.web.online only parses and shows.

Who sees a code: without a PIN confirmed by the library system the code is never
shown, only mailed to the address the library has for the card (the register's
E-mail column, or BE from SIP2); with a confirmed PIN it is shown, and mailed too
where an address is known. A reader with neither gets no code at all: nothing
could deliver it.

Issuing goes the one way every channel goes (kiosk.domain.issuing: plan_issue,
carry_out), in one unit of work with the limits and the outbox message. The
limits (kiosk.domain.limits) stop the form being used to probe card numbers or
PINs or to flood a mailbox; they are read and counted under the write lock, each
subject queued (PostgreSQL: advisory locks), so parallel requests cannot pass them."""
from __future__ import annotations

import enum
import hashlib
import ipaddress
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.cards import CardAnswer, CardRefusal
from kiosk.domain.clock import local_day
from kiosk.domain.eligibility import Ineligibility, Ineligible, Opening, opening_of, reader_history
from kiosk.domain.events import EventKind, insert_event
from kiosk.domain.issuing import IssueResult, Outcome, carry_out, plan_issue
from kiosk.domain.kiosks import card_subject, wrong_pin_checks
from kiosk.domain.limits import Limit, LimitKind, blocking, record_hits
from kiosk.domain.outbox import enqueue_code_mail, queued_moments_ago
from kiosk.domain.snapshot import LibraryView, Snapshot, snapshot
from kiosk.storage.database import lock_for_transaction, take_write_lock
from kiosk.storage.models import CardCheckKind, Channel

ACTOR = Actor.online()
DEFAULT_PLATFORM = "legimi"
DAY = timedelta(days=1)


class OnlineOutcome(enum.StrEnum):
    ISSUED = "issued"  # a new code: mailed, and shown after a confirmed PIN
    SENT_AGAIN = "sent_again"  # the code the reader has this month, mailed (shown) again
    NO_ADDRESS = "no_address"  # no PIN, no address on file: come to the library
    NO_CODE_YET = "no_code_yet"  # "send it again", but the reader has no code of this month
    PIN_MISSING = "pin_missing"  # the library asks for the PIN and none was typed
    REFUSED = "refused"  # the issue said no: `result` says why (the card, the rules, the pool)
    LIMITED = "limited"  # a limit: `limited` says which, `until` when it lifts


class Limited(enum.StrEnum):
    ADDRESS = "address"  # too many requests (or refused cards) from one client address
    WRONG_PINS = "wrong_pins"  # too many wrong PINs for the card, here and at the kiosks
    RESENDS = "resends"  # the code sent again too often today
    MAILS = "mails"  # too many messages to the reader's address today


@dataclass(frozen=True)
class OnlineAnswer:
    outcome: OnlineOutcome
    result: IssueResult | None = None  # the issue's answer; its code only when `shown`
    shown: bool = False  # the library system confirmed the reader's PIN
    mailed_to: str | None = None  # the address the code goes to (the page masks it)
    limited: Limited | None = None
    until: datetime | None = None

    @property
    def code(self) -> str | None:
        return self.result.code if self.shown and self.result is not None else None

    @property
    def mailed(self) -> bool:
        return self.mailed_to is not None

    @property
    def said(self) -> str:
        """What happened, in one word (the page's data-outcome, for scripts and
        bench/rush.py): "sent", "shown", "sent_again", a rule's reason ("not_yet"),
        the issue's outcome ("no_codes_left", "card_refused"), or the outcome."""
        if self.outcome is OnlineOutcome.ISSUED:
            return "shown" if self.shown else "sent"
        if self.outcome is OnlineOutcome.REFUSED and self.result is not None:
            ineligible = self.result.ineligible
            return ineligible.reason.value if ineligible is not None else self.result.outcome.value
        return self.outcome.value


@dataclass(frozen=True)
class OnlineLimits:
    """The form's limits; a count of 0 switches that limit off (the app's config:
    ONLINE_REQUESTS_PER_ADDRESS and the others, kiosk.web.online)."""

    requests_per_address: int = 30  # in address_window, every request counted
    refused_per_address: int = 10  # in address_window, refused cards only: probing card numbers
    address_window: timedelta = timedelta(minutes=10)
    resends_per_card: int = 3  # a day: the code sent or shown again
    mails_per_address: int = 5  # a day: messages to one address (a family shares one)

    def of_client(self, client: str) -> list[tuple[Limit, str]]:
        """The client address's limits: every request, and refused cards."""
        return [(limit, client) for limit in (
            Limit(LimitKind.ONLINE_REQUESTS, self.requests_per_address, self.address_window),
            Limit(LimitKind.ONLINE_REFUSED_CARDS, self.refused_per_address, self.address_window)) if limit.count]

    @property
    def resends(self) -> Limit | None:
        return Limit(LimitKind.ONLINE_RESENDS, self.resends_per_card, DAY) if self.resends_per_card else None

    @property
    def mails(self) -> Limit | None:
        return Limit(LimitKind.ONLINE_MAILS, self.mails_per_address, DAY) if self.mails_per_address else None


def client_subject(remote_addr: str | None) -> str:
    """A client address as the limits name it: an IPv6 client by its /48 (a
    household or a phone may be given a whole /64, a customer often a /48: one
    client could otherwise change its address for every request), IPv4 as it is."""
    try:
        address = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/48", strict=False))
    return str(address)


def mail_subject(address: str) -> str:
    """An e-mail address as the limits name it: a hash, never the address."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:24]


# -- what the page shows ------------------------------------------------------------

@dataclass(frozen=True)
class OnlineForm:
    library: LibraryView
    platform: str  # the platform's slug the form issues from
    opening: Opening
    open_now: bool
    asks_pin: bool  # the library checks cards over SIP2: the PIN field is shown
    requires_pin: bool

    @property
    def next_release(self) -> tuple[datetime, date] | None:
        """(the moment, the window's first day) of the next codes, when none are out now."""
        upcoming = self.opening.upcoming
        return None if self.open_now or upcoming is None else (upcoming.released_at, upcoming.start)


def online_form(snap: Snapshot, library_slug: str, now: datetime, pepper: str) -> OnlineForm | None:
    """The library's form as it stands now, from the settings alone (no other
    read: the page is loaded by everyone waiting for the release minute); None
    when there is no such library."""
    library = snap.libraries.get(library_slug)
    if library is None:
        return None
    today = local_day(now, library.timezone)
    platform = _platform_of(snap, library, today)
    rules = snap.rules_for(library.id)
    closed = snap.closed.get(library.id, frozenset()) if rules.counts_working_days else frozenset()
    opening = opening_of(snap.pools_of(library.id, snap.platforms[platform].id, today), closed, library, rules, now)
    asks_pin = library.card_check == CardCheckKind.SIP2
    config = snap.sip2_config(library.id, pepper) if asks_pin else None
    return OnlineForm(library=library, platform=platform, opening=opening, open_now=opening.window is not None,
                      asks_pin=asks_pin, requires_pin=bool(config and config.require_pin))


def _platform_of(snap: Snapshot, library: LibraryView, today: date) -> str:
    """The first platform (by id) with a pool of the library not over yet; Legimi
    when there is none."""
    for platform_id, platform in sorted(snap.platforms_by_id.items()):
        if snap.pools_of(library.id, platform_id, today):
            return platform.slug
    return DEFAULT_PLATFORM if DEFAULT_PLATFORM in snap.platforms else next(iter(snap.platforms))


def answer_early(session: Session, form: OnlineForm, *, card_number: str, pin: str | None, now: datetime,
                 pepper: str, client: str, limits: OnlineLimits) -> OnlineAnswer | None:
    """What is answered before the library system is asked and before any write:
    a PIN the library requires not typed, the release not come yet, a client or a
    card held back by a limit. request_code checks the limits again where they count."""
    if form.requires_pin and not pin:
        return OnlineAnswer(OnlineOutcome.PIN_MISSING)
    today = local_day(now, form.library.timezone)
    if form.opening.not_yet(today):
        upcoming = form.opening.upcoming
        ineligible = Ineligible(Ineligibility.NOT_YET, next_release=upcoming.released_at,
                                window_start=upcoming.start)
        return OnlineAnswer(OnlineOutcome.REFUSED, result=IssueResult(
            Outcome.NOT_ELIGIBLE, ineligible=ineligible, library=form.library.slug, platform=form.platform))
    checks = limits.of_client(client) + (wrong_pin_checks(form.library.id, card_number, pepper) if pin else [])
    found = blocking(session, checks, now)
    session.rollback()  # hold no transaction while the library system answers
    return _limited(found) if found else None


# PINs of one card sent to the library system, counted before it is asked: parallel
# posts cannot try more PINs there than this, whatever their answers turn out to be.
PIN_ASKS = Limit(LimitKind.ONLINE_PIN_ASKS, 5, timedelta(minutes=1))


def count_pin_ask(session: Session, library_id: int, *, card_number: str, now: datetime,
                  pepper: str) -> OnlineAnswer | None:
    """Before the library system is asked a PIN (a unit of work of its own, which
    commits): the card's PIN asks and wrong PINs checked under the card's lock, and
    this ask counted; a limit reached answers instead. Library systems lock a
    reader's account after some wrong PINs: the form must never be the way there."""
    card = f"{library_id}:{card_subject(pepper, card_number)}"
    take_write_lock(session)
    lock_for_transaction(session, f"online:card:{card}")
    checks = [(PIN_ASKS, card), *wrong_pin_checks(library_id, card_number, pepper)]
    found = blocking(session, checks, now)
    if found:
        return OnlineAnswer(OnlineOutcome.LIMITED, limited=Limited.WRONG_PINS, until=max(found.values()))
    record_hits(session, [(PIN_ASKS, card)], now)
    return None


def _limited(found: dict[tuple[Limit, str], datetime]) -> OnlineAnswer:
    kinds = {limit.kind for limit, _subject in found}
    which = (Limited.WRONG_PINS if kinds & {LimitKind.CARD_WRONG_PINS, LimitKind.CARD_WRONG_PINS_DAY}
             else Limited.MAILS if LimitKind.ONLINE_MAILS in kinds
             else Limited.RESENDS if LimitKind.ONLINE_RESENDS in kinds else Limited.ADDRESS)
    return OnlineAnswer(OnlineOutcome.LIMITED, limited=which, until=max(found.values()))


# -- the request ---------------------------------------------------------------------

def request_code(session: Session, snap: Snapshot | None, *, library_slug: str, card_number: str,
                 answer: CardAnswer | None, language: str, now: datetime, pepper: str, again: bool,
                 client: str = "unknown", limits: OnlineLimits = OnlineLimits(), pin_given: bool = False,
                 platform_slug: str = DEFAULT_PLATFORM) -> OnlineAnswer:
    """The form's one step, in a unit of work with a late lock (kiosk.app.units.write):
    what needs no lock is read first (the settings, the card); then, under the write
    lock, the limits, the issue, the outbox message and the counts, in one
    transaction. `answer`: the library system's, asked before (SIP2 libraries).
    `again`: the reader says they have this month's code ("send it again")."""
    snap = snap or snapshot(session)
    plan = plan_issue(session, snap, library_slug=library_slug, card_number=card_number, now=now, pepper=pepper,
                      platform_slug=platform_slug, answer=answer, wants_email=True)
    library = plan.library
    card = f"{library.id}:{card_subject(pepper, card_number)}"
    client_checks = limits.of_client(client)
    pin_checks = wrong_pin_checks(library.id, card_number, pepper) if pin_given else []
    resends = [(limits.resends, card)] if limits.resends else []
    mails = [(limits.mails, mail_subject(plan.email))] if limits.mails and plan.email else []
    take_write_lock(session)
    # One request per client, card and address at a time, so parallel requests
    # cannot pass a limit (SQLite's write lock does this by itself). Always in the
    # same order: no two requests wait for each other.
    lock_for_transaction(session, *sorted({f"online:client:{client}", f"online:card:{card}",
                                           *(f"online:mail:{subject}" for _limit, subject in mails)}))
    found = blocking(session, client_checks + pin_checks + resends + mails, now)
    stop = {check: until for check, until in found.items() if check in client_checks or check in pin_checks}
    if stop:
        return _limited(stop)
    held = {check[0].kind: {check: until} for check, until in found.items()}
    counted = [check for check in client_checks if check[0].kind is LimitKind.ONLINE_REQUESTS]

    if plan.refusal is not None:
        result = carry_out(session, plan, channel=Channel.ONLINE, actor=ACTOR, now=now)  # logs the refusal
        if result.reason is not CardRefusal.ILS_UNAVAILABLE:  # a library system that is down does not count
            counted += [check for check in client_checks if check[0].kind is LimitKind.ONLINE_REFUSED_CARDS]
            if result.reason is CardRefusal.WRONG_PIN:
                counted += pin_checks or wrong_pin_checks(library.id, card_number, pepper)
        _record(session, counted, now)
        return OnlineAnswer(OnlineOutcome.REFUSED, result=result)

    shown = plan.pin_checked
    mail_to = plan.email if plan.email and LimitKind.ONLINE_MAILS not in held else None
    if not shown and mail_to is None:
        # Nothing could deliver a code: none is taken from the pool.
        _record(session, counted, now)
        if plan.email:
            return _limited(held[LimitKind.ONLINE_MAILS])
        insert_event(session, kind=EventKind.NO_ADDRESS, actor=ACTOR, library_id=library.id, now=now,
                     channel=Channel.ONLINE)
        # Counted as a refused card: a prober learns that the card exists, nothing more.
        _record(session, [check for check in client_checks if check[0].kind is LimitKind.ONLINE_REFUSED_CARDS],
                now)
        return OnlineAnswer(OnlineOutcome.NO_ADDRESS)
    resend_held = LimitKind.ONLINE_RESENDS in held
    if again or resend_held:
        # Read under the lock: whether this would be the reader's code again.
        live = reader_history(session, library.id, plan.key).live(plan.platform.id, plan.open_now.window,
                                                                  plan.today)
        if again and live is None:
            _record(session, counted, now)
            return OnlineAnswer(OnlineOutcome.NO_CODE_YET)
        if live is not None and resend_held:
            _record(session, counted, now)
            return _limited(held[LimitKind.ONLINE_RESENDS])

    result = carry_out(session, plan, channel=Channel.ONLINE, actor=ACTOR, now=now)
    if not result.has_code:
        _record(session, counted, now)
        return OnlineAnswer(OnlineOutcome.REFUSED, result=replace(result, code=None))
    # "Odbierz kod" pressed twice (a form sent twice without JavaScript) mails once;
    # "send it again" is the reader's own request and always mails.
    if mail_to is not None and not (not again and result.outcome is Outcome.REPRINT and queued_moments_ago(
            session, issuance_id=result.issuance_id, to_address=mail_to, now=now)):
        enqueue_code_mail(session, library_id=library.id, issuance_id=result.issuance_id, to_address=mail_to,
                          language=language, now=now)
        counted += mails
    if result.outcome is Outcome.REPRINT:
        counted += resends
    _record(session, counted, now)
    outcome = OnlineOutcome.ISSUED if result.outcome is Outcome.ISSUED else OnlineOutcome.SENT_AGAIN
    return OnlineAnswer(outcome, result=result if shown else replace(result, code=None), shown=shown,
                        mailed_to=mail_to)


def _record(session: Session, counted: list[tuple[Limit, str]], now: datetime) -> None:
    if counted:
        record_hits(session, counted, now)
