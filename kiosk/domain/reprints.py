"""Printing an issued code again, and replacing a faulty one: which issuances may
be, in one rule, and the one way a print is counted and logged.

A slip may be printed again (or its code replaced) while the issuance is live
(not withdrawn) and today is inside its window and not after the service end:
last month's code has expired, so printing it would hand out a dead code."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.clock import local_day
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.consortium import service_end
from kiosk.domain.refusals import Refused
from kiosk.storage.models import Channel, Code, Issuance, Library


class IssuanceRefusal(enum.StrEnum):
    NOT_FOUND = "not_found"          # no such issuance (in this library)
    WITHDRAWN = "withdrawn"          # its code was withdrawn
    WINDOW_OVER = "window_over"      # its month is over
    SERVICE_ENDED = "service_ended"  # the consortium's service has ended
    REASON_MISSING = "reason_missing"  # a replacement needs a reason
    NO_CODES_LEFT = "no_codes_left"  # no free code of that month to replace it with


class IssuanceRefused(Refused):
    pass


def refusal_for(issuance: Issuance, today: date, ends: date | None) -> IssuanceRefusal | None:
    """The rule: may this issuance be printed again or replaced today?"""
    if issuance.voided_at is not None:
        return IssuanceRefusal.WITHDRAWN
    # Before the window's start only when it was handed out early (an early release).
    if today > issuance.window_end:
        return IssuanceRefusal.WINDOW_OVER
    if ends and today > ends:
        return IssuanceRefusal.SERVICE_ENDED
    return None


def printable_issuance(session: Session, issuance_id: int, library_id: int | None,
                       now: datetime) -> Issuance:
    """The issuance, if the rule lets it be printed; IssuanceRefused otherwise.
    library_id=None is for the command line, which serves every library."""
    issuance = session.get(Issuance, issuance_id)
    if issuance is None or (library_id is not None and issuance.library_id != library_id):
        raise IssuanceRefused(IssuanceRefusal.NOT_FOUND)
    library = session.get(Library, issuance.library_id)
    refusal = refusal_for(issuance, local_day(now, library.timezone), service_end(session))
    if refusal is not None:
        raise IssuanceRefused(refusal, code=session.get(Code, issuance.code_id).value)
    return issuance


def issuance_of_code(session: Session, code_value: str) -> int | None:
    """The issuance behind a code typed by staff (the slip's grouping spaces and
    dashes allowed); a code is handed out at most once, so there is one."""
    value = code_value.replace(" ", "").strip()
    return session.scalar(select(Issuance.id).join(Code, Issuance.code_id == Code.id)
                          .where(Code.value == value).order_by(Issuance.id.desc()).limit(1))


def count_print(session: Session, issuance_id: int, library_id: int, actor: Actor, channel: Channel,
                now: datetime, **details) -> int:
    """One more print of the slip, counted in SQL (no lost update between kiosks)
    and logged; the new count."""
    count = session.scalar(update(Issuance).where(Issuance.id == issuance_id)
                           .values(print_count=Issuance.print_count + 1)
                           .returning(Issuance.print_count))
    record_event(session, kind=EventKind.REPRINT, actor=actor, library_id=library_id, now=now,
                 issuance_id=issuance_id, channel=channel, **details)
    return count


@dataclass(frozen=True)
class Reprint:
    issuance_id: int
    library_id: int
    print_count: int


def reprint(session: Session, *, issuance_id: int, library_id: int | None, actor: Actor, channel: Channel,
            now: datetime, **details) -> Reprint:
    """Print an issued code's slip again: every channel calls this. Raises
    IssuanceRefused when the rule says no."""
    issuance = printable_issuance(session, issuance_id, library_id, now)
    count = count_print(session, issuance.id, issuance.library_id, actor, channel, now, **details)
    return Reprint(issuance.id, issuance.library_id, count)
