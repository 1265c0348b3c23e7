"""Kiosks: browsers enrolled by a library admin through a one-time link, the only
browsers that may issue codes without a staff login; and the pause that stops
anyone draining a pool or trying card numbers at a kiosk."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.cards import CardAnswer, CardRefusal, check_card
from kiosk.domain.clock import local_day
from kiosk.domain.eligibility import platform_held
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.issuing import IssueResult, Outcome, carry_out, plan_issue
from kiosk.domain.pools import availability
from kiosk.domain.limits import Limit, LimitKind, first_block, record_hits
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.domain.refusals import Problem
from kiosk.domain.rules import PlatformsRule
from kiosk.domain.settings import SettingProblem, SettingsRefused
from kiosk.domain.snapshot import KioskView, Snapshot, snapshot
from kiosk.storage.database import take_write_lock
from kiosk.storage.models import CardCheckKind, Channel, Kiosk, Library

ENROL_LINK_VALID = timedelta(hours=72)
MAX_NAME = 120
REFUSED_CARDS = Limit(LimitKind.KIOSK_REFUSED_CARDS, 5, timedelta(minutes=1))
# A reader needs more than ten seconds to scan, read and take a slip; more codes
# than this in a minute (new ones, reprints, or reprints withheld) is someone
# typing card numbers to drain the pool or to read other readers' codes.
CODES_SHOWN = Limit(LimitKind.KIOSK_CODES_SHOWN, 6, timedelta(minutes=1))
# One card scanned again and again (a reader who did not see the slip come out, or a
# child at the scanner) prints twice at most, then waits.
SAME_CARD = Limit(LimitKind.KIOSK_SAME_CARD, 2, timedelta(minutes=1))
# Wrong PINs for one card at any of the library's kiosks: five, then a quarter of an
# hour; ten in a day, then the rest of that day. A stranger guessing a four-digit PIN
# from kiosk to kiosk gets ten tries a day: about three years for all 10,000.
WRONG_PINS = Limit(LimitKind.CARD_WRONG_PINS, 5, timedelta(minutes=15))
WRONG_PINS_DAY = Limit(LimitKind.CARD_WRONG_PINS_DAY, 10, timedelta(days=1))
COUNTED = (Outcome.ISSUED, Outcome.REPRINT, Outcome.REPRINT_WITHHELD)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Enrolment:
    kiosk: Kiosk
    token: str  # goes into the link once; only its hash is stored
    expires_at: datetime


def check_kiosk_fields(name: str, printer: str, allowed_printers: list[str],
                       current_printer: str | None = None) -> tuple[str, str]:
    """A kiosk's name and printer as typed; a printer must be one the operator
    lists (or the one it already has)."""
    problems = []
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        problems.append(Problem(SettingProblem.NAME, {"limit": MAX_NAME}))
    printer = (printer or "").strip()
    if printer != current_printer and printer not in allowed_printers:
        problems.append(Problem(SettingProblem.PRINTER, {"value": printer[:40]}))
    if problems:
        raise SettingsRefused.of(problems)
    return name, printer


def enrol_kiosk(session: Session, *, library_id: int, name: str, actor: Actor, now: datetime,
                printer: str = "browser", kiosk_id: int | None = None) -> Enrolment:
    """A new kiosk, or a fresh link for an existing one (its old browser stops working
    once the new link is used)."""
    token = secrets.token_urlsafe(24)
    if kiosk_id is None:
        kiosk = Kiosk(library_id=library_id, name=name, printer=printer, created_at=now)
        session.add(kiosk)
    else:
        kiosk = session.get(Kiosk, kiosk_id)
    kiosk.enrol_token_hash = _hash(token)
    kiosk.enrol_expires_at = now + ENROL_LINK_VALID
    kiosk.revoked_at = None
    session.flush()
    record_event(session, kind=EventKind.KIOSK_ENROL_LINK, actor=actor, library_id=library_id, now=now,
                 kiosk_id=kiosk.id, name=kiosk.name)
    return Enrolment(kiosk=kiosk, token=token, expires_at=kiosk.enrol_expires_at)


def kiosk_for_link(session: Session, token: str, now: datetime) -> Kiosk | None:
    """The kiosk a valid, unused link would enrol (nothing changes)."""
    kiosk = session.scalar(select(Kiosk).where(Kiosk.enrol_token_hash == _hash(token)))
    if kiosk is None or kiosk.revoked_at is not None or kiosk.enrol_expires_at < now:
        return None
    return kiosk


def redeem_link(session: Session, token: str, now: datetime) -> Kiosk | None:
    """The kiosk the link enrols, once; None for a used, expired or unknown link."""
    kiosk = kiosk_for_link(session, token, now)
    if kiosk is None:
        return None
    kiosk.enrol_token_hash = None
    kiosk.enrol_expires_at = None
    kiosk.device_nonce = secrets.token_hex(16)
    kiosk.enrolled_at = now
    record_event(session, kind=EventKind.KIOSK_ENROLLED, actor=Actor.kiosk(kiosk.id), library_id=kiosk.library_id,
                 now=now, kiosk_id=kiosk.id)
    return kiosk


def enrolled_kiosk(snap: Snapshot, kiosk_id: int, nonce: str) -> KioskView | None:
    """The kiosk a browser's cookie names, if it is still enrolled and not revoked."""
    kiosk = snap.kiosks.get(kiosk_id)
    if kiosk is None or kiosk.revoked_at is not None or not kiosk.device_nonce:
        return None
    return kiosk if secrets.compare_digest(kiosk.device_nonce, nonce) else None


def change_kiosk(session: Session, kiosk_id: int, *, name: str, printer: str, actor: Actor, now: datetime) -> None:
    kiosk = session.get(Kiosk, kiosk_id)
    kiosk.name, kiosk.printer = name, printer
    record_event(session, kind=EventKind.KIOSK_CHANGED, actor=actor, library_id=kiosk.library_id, now=now,
                 kiosk_id=kiosk.id, name=name, printer=printer)


def revoke_kiosk(session: Session, kiosk_id: int, actor: Actor, now: datetime) -> None:
    kiosk = session.get(Kiosk, kiosk_id)
    kiosk.revoked_at = now
    kiosk.device_nonce = None
    kiosk.enrol_token_hash = None
    record_event(session, kind=EventKind.KIOSK_REVOKED, actor=actor, library_id=kiosk.library_id, now=now,
                 kiosk_id=kiosk.id)


# -- a card at the kiosk ---------------------------------------------------------

@dataclass(frozen=True)
class Scan:
    """What a card scanned at a kiosk gave: a result, or a pause until a moment."""

    result: IssueResult | None = None
    paused_until: datetime | None = None
    choices: tuple[tuple[str, str], ...] = ()  # (slug, name): the reader picks one, then scans again
    pin_checked: bool = False  # the library system said the PIN is right
    settings: Snapshot | None = None  # what the scan was judged by
    enrolled: bool = True  # False: the kiosk was revoked or enrolled anew a moment ago


def reprint_shown(library: Library, scanned: bool) -> bool:
    """May the kiosk show a reader's code again? Where only the card's format is
    checked, anyone can type a card-like number, so a code already handed out is
    shown again only to a card scanned at the reader (the SIP2 issue adds a PIN)."""
    return scanned or library.card_check != CardCheckKind.FORMAT


def card_subject(pepper: str, card: str) -> str:
    """A card as the limits name it: a hash of the reader key's hash, never the card."""
    return hashlib.sha256(reader_key(pepper, normalise_card(card)).encode()).hexdigest()[:24]


def wrong_pin_checks(library_id: int, card: str, pepper: str) -> list[tuple[Limit, str]]:
    """The card's wrong PINs at every kiosk of the library and on its online form."""
    subject = f"{library_id}:{card_subject(pepper, card)}"
    return [(WRONG_PINS, subject), (WRONG_PINS_DAY, subject)]


def _pause_checks(kiosk_id: int, library_id: int, card: str, pepper: str) -> list[tuple[Limit, str]]:
    """(limit, subject) of every pause a scan must respect: the kiosk's own, the card's
    at this kiosk, and the card's wrong PINs at all of the library's kiosks."""
    card_hash = card_subject(pepper, card)
    return [(REFUSED_CARDS, str(kiosk_id)), (CODES_SHOWN, str(kiosk_id)), (SAME_CARD, f"{kiosk_id}:{card_hash}"),
            (WRONG_PINS, f"{library_id}:{card_hash}"), (WRONG_PINS_DAY, f"{library_id}:{card_hash}")]


def paused_until(session: Session, *, kiosk_id: int, library_id: int, card: str, now: datetime,
                 pepper: str) -> datetime | None:
    """The pause, read before the library system is asked (a paused kiosk asks
    nothing of it, nor for a PIN); scan_card checks it again where it counts."""
    return first_block(session, _pause_checks(kiosk_id, library_id, card, pepper), now)


def pause_scan(session: Session, *, kiosk_id: int, card: str, now: datetime, pepper: str,
               device_nonce: str | None = None) -> Scan:
    """A scan at a kiosk found paused beforehand: logged, never issued for (the
    pause may have ended meanwhile; the reader simply scans again)."""
    if device_nonce is not None and enrolled_kiosk(snapshot(session), kiosk_id, device_nonce) is None:
        return Scan(enrolled=False)
    kiosk = session.get(Kiosk, kiosk_id)
    until = first_block(session, _pause_checks(kiosk_id, kiosk.library_id, card, pepper), now) or now
    return _paused(session, kiosk, until, now)


def _paused(session: Session, kiosk, until: datetime, now: datetime) -> Scan:
    record_event(session, kind=EventKind.KIOSK_PAUSED, actor=Actor.kiosk(kiosk.id), library_id=kiosk.library_id,
                 now=now)
    return Scan(paused_until=until)


_LOCK_KIOSK = select(Kiosk.id).where(Kiosk.id == bindparam("kiosk_id")).with_for_update()


def scan_card(session: Session, *, kiosk_id: int, card: str, now: datetime, pepper: str,
              scanned: bool = False, platform: str | None = None, answer: CardAnswer | None = None,
              device_nonce: str | None = None) -> Scan:
    """The kiosk's one step, in a unit of work with a late lock: what needs no lock
    is read first; then, under the write lock, the pause checked, the card issued
    for and the attempt counted, in one transaction. Where two platforms' codes are
    out and the reader has not picked one, a valid card is asked which. `answer` is
    the library system's, for a library that checks cards over SIP2. The
    settings are read here, in the transaction, with the kiosk's enrolment (the
    browser's `device_nonce`, when the caller knows it)."""
    snap = snapshot(session)
    kiosk = snap.kiosks.get(kiosk_id) if device_nonce is None else enrolled_kiosk(snap, kiosk_id, device_nonce)
    if kiosk is None:
        return Scan(enrolled=False)
    library = kiosk.library
    checks = _pause_checks(kiosk.id, library.id, card, pepper)
    (_, subject), _, (_, card_subject), (_, pin_subject), _ = checks
    choices: tuple = ()
    # A platform picked a moment ago stays picked, even if its last code went since.
    if platform is None or platform not in snap.platforms:
        platform, choices = _platform_to_offer(session, snap, library, card, now, pepper, answer)
    plan = None if choices else plan_issue(session, snap, library_slug=library.slug, card_number=card, now=now,
                                           pepper=pepper, platform_slug=platform, answer=answer)
    take_write_lock(session)
    if session.connection().dialect.name == "postgresql":
        # One scan per kiosk at a time, so parallel requests cannot pass the pause
        # (SQLite's write lock does this by itself).
        session.connection().execute(_LOCK_KIOSK, {"kiosk_id": kiosk.id})
    until = first_block(session, checks, now)
    if until is not None:
        return replace(_paused(session, kiosk, until, now), settings=snap)
    if choices:
        return Scan(choices=choices, pin_checked=bool(answer and answer.pin_checked), settings=snap)
    result = carry_out(session, plan, channel=Channel.KIOSK, actor=Actor.kiosk(kiosk.id), now=now,
                       show_reprint=reprint_shown(library, scanned))
    counted = []
    if result.outcome is Outcome.CARD_REFUSED and result.reason is not CardRefusal.ILS_UNAVAILABLE:
        # A wrong PIN counts like a refused card, and against the card everywhere; a
        # library system that is down does not count.
        counted.append((REFUSED_CARDS, subject))
        if result.reason is CardRefusal.WRONG_PIN:
            counted += [(WRONG_PINS, pin_subject), (WRONG_PINS_DAY, pin_subject)]
    elif result.outcome in COUNTED:
        counted.append((CODES_SHOWN, subject))
        if result.has_code:
            counted.append((SAME_CARD, card_subject))
    if counted:
        record_hits(session, counted, now)
    return Scan(result=result, settings=snap)


def _platform_to_offer(session: Session, snap: Snapshot, library, card: str, now: datetime, pepper: str,
                       answer: CardAnswer | None) -> tuple[str, tuple]:
    """(the platform to issue from, the choices to offer instead). Only where two
    platforms' pools are current is there anything to ask, and only then is what
    is left of them counted."""
    today = local_day(now, library.timezone)
    current = [platform.slug for platform_id, platform in sorted(snap.platforms_by_id.items())
               if snap.pools_of(library.id, platform_id, today)]
    if len(current) <= 1:
        return (current[0] if current else "legimi"), ()
    offer = availability(session, library.id, now)
    verdict = check_card(session, library, card, pepper, today, answer) if len(offer.choices) > 1 else None
    if verdict is None or not verdict.accepted:
        return offer.default_platform, ()
    # Under "one code a month" a reader who has this month's code is not asked to
    # choose: it can only be that code again.
    held = (platform_held(session, library.id, reader_key(pepper, verdict.card), offer.open_month)
            if snap.rules_for(library.id).platforms_rule is PlatformsRule.ONE_PER_MONTH else None)
    return (held, ()) if held is not None else (offer.default_platform, offer.choices)


def record_print_failure(session: Session, *, kiosk_id: int, library_id: int, issuance_id: int, error: str,
                         now: datetime) -> None:
    """The slip did not print; the issuance stands (the reader asks at the desk)."""
    record_event(session, kind=EventKind.PRINT_FAILED, actor=Actor.kiosk(kiosk_id), library_id=library_id,
                 now=now, issuance_id=issuance_id, error=error[:300])
