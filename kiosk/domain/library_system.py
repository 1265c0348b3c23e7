"""The library system asked about a card over SIP2 (card check "sip2"), and its
answer turned into a card verdict and the reader facts the rules use.

Every channel asks here *before* its issuing transaction opens: a library system
that is slow or silent never holds the database. Nothing of the answer is kept
beyond the verdict: no name, no e-mail, no address."""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.cards import CardAnswer, CardRefusal, check_card, check_format
from kiosk.domain.clock import local_day
from kiosk.domain.eligibility import Fact, ReaderFacts
from kiosk.domain.readers import email_or_none, normalise_card, reader_key
from kiosk.domain.sip2_settings import OnFailure, Sip2Config
from kiosk.domain.snapshot import Snapshot, snapshot
from kiosk.sip2 import PatronAnswer, Sip2Unavailable, patron_information
from kiosk.sip2.protocol import field_value
from kiosk.storage.models import CardCheckKind, CardRecord, Library

log = logging.getLogger("kiosk.library_system")

# Positions of the SIP2 patron status (14 characters, 'Y' = true) that mean the
# library has stopped the reader: these refuse a code too. The others (renewal,
# recall and hold privileges, too many items charged, overdue or renewed, claims
# returned, recall overdue) limit loans, not membership; a library that refuses
# codes for debt says so with the max_debt rule.
BLOCKING_FLAGS = {
    0: "charge privileges denied",
    4: "card reported lost",
    9: "too many items lost",
    10: "excessive outstanding fines",
    11: "excessive outstanding fees",
    13: "too many items billed",
}


@dataclass(frozen=True)
class LibrarySystemCheck:
    """What a channel needs to know before asking: the library's SIP2 set-up."""

    config: Sip2Config
    timezone: str


def ask_before_issuing(session: Session, library_slug: str, card: str, *, pepper: str, now: datetime,
                       pin: str | None = None, snap: Snapshot | None = None) -> CardAnswer | None:
    """The library system's answer about the card, for issue_code; None for a
    library that does not check cards over SIP2. The read of the settings ends
    before the library system is asked (`snap`: the settings read already)."""
    snap = snap or snapshot(session)
    library = snap.libraries.get(library_slug)
    config = library and library.card_check == CardCheckKind.SIP2.value and snap.sip2_config(library.id, pepper)
    check = LibrarySystemCheck(config, library.timezone) if config else None
    if check is None:
        sip2_unset = library is not None and library.card_check == CardCheckKind.SIP2.value
        session.rollback()
        if sip2_unset:  # the settings were removed by hand: refuse, never wave cards through
            log.error("library %s checks cards over SIP2 but has no SIP2 settings", library_slug)
            return CardAnswer(refusal=CardRefusal.ILS_UNAVAILABLE)
        return None
    normalised = normalise_card(card)
    refusal = check_format(normalised, library.card_pattern, library.card_check_digit)
    session.rollback()  # hold no transaction while the library system answers
    if refusal is not None:
        return CardAnswer(refusal=refusal)  # garbage never reaches the library system
    return ask(check.config, normalised, pin, local_day(now, check.timezone))


MAX_PIN = 32


def ask(config: Sip2Config, card: str, pin: str | None, today: date) -> CardAnswer:
    if pin is not None and (not pin or len(pin) > MAX_PIN or not pin.isprintable() or "|" in pin):
        # No PIN has a field delimiter or a control character: such input is not sent on.
        return CardAnswer(refusal=CardRefusal.WRONG_PIN)
    try:
        for value, what in ((card, "card number"), (pin, "PIN")):
            if value is not None:
                field_value(value, what, config.settings.encoding)
    except ValueError:
        # A card or PIN the library system's encoding cannot carry: no such card or PIN there.
        return CardAnswer(refusal=CardRefusal.WRONG_PIN if pin is not None else CardRefusal.UNKNOWN)
    try:
        answer = patron_information(config.settings, card, pin)
    except Sip2Unavailable as failure:
        where = f"{config.settings.host}:{config.settings.port}"
        if config.on_failure is OnFailure.REGISTRY and pin is None:
            log.warning("library system %s did not answer (%s: %s); the card register decides", where,
                        failure.kind, failure)
            return CardAnswer(fallback=True, said={"error": failure.kind})
        # A PIN cannot be checked against the register: a reader who gave one waits.
        log.warning("library system %s did not answer (%s: %s); the card is refused for now", where,
                    failure.kind, failure)
        return CardAnswer(refusal=CardRefusal.ILS_UNAVAILABLE, said={"error": failure.kind})
    return verdict_of(answer, pin, today)


def verdict_of(answer: PatronAnswer, pin: str | None, today: date) -> CardAnswer:
    """The card verdict and the reader facts an answer gives."""
    expiry = sip_date(answer.first("PA"))
    birth = sip_date(answer.first("PB") or answer.first("BC"))
    debt = grosze(answer.first("BV"))
    blocked = [name for position, name in BLOCKING_FLAGS.items()
               if answer.patron_status[position:position + 1].upper() == "Y"]
    said = {"valid": answer.valid_patron, "pin": answer.valid_password, "blocked": bool(blocked),
            "flags": blocked, "expiry": expiry.isoformat() if expiry else None,
            "debt": in_zloty(debt),
            "birth_date": birth.isoformat() if birth else None}
    known = frozenset(fact for fact, value in ((Fact.BIRTH_DATE, birth), (Fact.DEBT, debt)) if value is not None)
    facts = ReaderFacts(known=known, birth_date=birth, debt_grosze=debt)
    # A server that does not say the card is valid is not taken as saying so.
    refusal = None if answer.valid_patron else CardRefusal.UNKNOWN
    if pin is not None and (refusal is not None or answer.valid_password is not True):
        # With a PIN, an unknown card and a wrong PIN read alike: a stranger typing
        # numbers learns nothing about which cards exist.
        refusal = CardRefusal.WRONG_PIN
    elif refusal is None and expiry is not None and expiry < today:
        # Before the flags: Koha also denies an expired reader's charge privileges, and
        # "expired, renew it at the desk" is the sentence that helps that reader.
        refusal = CardRefusal.EXPIRED
    elif refusal is None and blocked:
        refusal = CardRefusal.BLOCKED
    return CardAnswer(refusal=refusal, facts=facts, said=said, ms=round(answer.ms, 1),
                      pin_checked=pin is not None and refusal is None,
                      email=email_or_none(answer.first("BE")))


_DATE = re.compile(r"\s*(\d{4})-?(\d{2})-?(\d{2})")


def sip_date(value: str | None) -> date | None:
    """A SIP2 date: YYYYMMDD, optionally followed by a zone and a time as in the
    transaction date (YYYYMMDDZZZZHHMMSS), or ISO YYYY-MM-DD; None if unreadable."""
    match = _DATE.match(value or "")
    if match is None:
        if value and value.strip():
            log.warning("a date field from the library system could not be read; ignored")
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        log.warning("a date field from the library system is not a date; ignored")
        return None


def in_zloty(grosze: int | None) -> str | None:
    """An amount as the check reports it: "12.50"."""
    return None if grosze is None else f"{grosze / 100:.2f}"


_AMOUNT = re.compile(r"\d+(?:\.\d{1,2})?")


def grosze(value: str | None) -> int | None:
    """BV (fee amount) in grosze: "12.50", "12,50", "PLN 1 234,50", "1,234.50"; a credit
    ("-3.00", "3.00-", "(3.00)") is no debt; anything else is not known (None), never a
    wrong number."""
    text = re.sub(r"[^\d.,()\-]", "", value or "")  # currency, spaces (a no-break one too)
    if not any(ch.isdigit() for ch in text):
        return None
    credit = text.startswith(("-", "(")) or text.endswith(("-", ")"))
    text = text.strip("-()")
    if "." in text and "," in text:  # the last of them is the decimal point
        decimal = max(text.rfind("."), text.rfind(","))
        text = text[:decimal].replace(".", "").replace(",", "") + "." + text[decimal + 1:]
    elif text.count(",") + text.count(".") > 1 or re.fullmatch(r"\d{1,3}[.,]\d{3}", text):
        text = text.replace(",", "").replace(".", "")  # thousands only: 1.234.567, 1,234
    else:
        text = text.replace(",", ".")
    if not _AMOUNT.fullmatch(text):
        return None
    whole, _, part = text.partition(".")
    return 0 if credit else int(whole) * 100 + int((part + "00")[:2])


# -- the admin's check: what the library system says of one card ---------------------

@dataclass(frozen=True)
class CardCheckReport:
    accepted: bool
    reason: CardRefusal | None
    facts: dict  # what the answer (or the register) said: valid, blocked, expiry, debt, birth date
    ms: float  # the whole check, the library system's round trip included
    source: str  # "sip2", "registry" (a fallback too), or "format"

    def as_json(self) -> dict:
        return {"accepted": self.accepted, "reason": self.reason.value if self.reason else None,
                "facts": self.facts, "ms": self.ms, "source": self.source}


def check_card_now(session: Session, library: Library, card: str, *, pin: str | None, pepper: str,
                   now: datetime) -> CardCheckReport:
    """The card checked as a kiosk would check it, nothing issued or written."""
    slug, library_id, timezone = library.slug, library.id, library.timezone
    started = time.perf_counter()
    answer = ask_before_issuing(session, slug, card, pin=pin, pepper=pepper, now=now)
    library = session.get(Library, library_id)
    verdict = check_card(session, library, card, pepper, local_day(now, timezone), answer)
    ms = round((time.perf_counter() - started) * 1000, 1)
    if answer is not None and not answer.fallback:
        return CardCheckReport(verdict.accepted, verdict.refusal, answer.said, ms, "sip2")
    record = session.scalar(select(CardRecord).where(CardRecord.library_id == library_id,
                                                     CardRecord.reader_key == reader_key(pepper, verdict.card)))
    facts = {} if record is None else {
        "valid": True, "blocked": record.blocked,
        "expiry": record.expires_on.isoformat() if record.expires_on else None,
        "debt": in_zloty(record.debt_grosze),
        "birth_date": record.birth_date.isoformat() if record.birth_date else None}
    if answer is not None:
        facts["library_system"] = answer.said.get("error")
    source = "format" if library.card_check == CardCheckKind.FORMAT.value else "registry"
    session.rollback()
    return CardCheckReport(verdict.accepted, verdict.refusal, facts, ms, source)
