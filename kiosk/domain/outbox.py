"""The e-mail outbox: a message is written in the transaction that decided it (a
code issued or sent again) and sent after the commit (kiosk.mail.sender), so a
rolled-back issue mails nothing and an SMTP server that is down loses nothing.

A sender takes one message at a time with a lease (claim_next: one short
transaction), sends it outside any transaction, and marks it (another): sent,
tried again later with a growing pause, or given up. Two senders (the serve
thread, a cron `kiosk send-mail`) never take the same message: a claim is a
conditional UPDATE that only one of them can win. The one way a message could go
twice is a sender that dies after the SMTP server took it and before the mark;
its Message-ID (kiosk.mail.compose) is the same both times, so the copy is
recognisable."""
from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.events import EventKind, insert_event
from kiosk.storage.models import Code, Consortium, Issuance, Library, OutboxMessage

_TABLE = OutboxMessage.__table__
_INSERT = insert(_TABLE).returning(_TABLE.c.id)

LEASE = timedelta(minutes=10)  # far longer than one message's SMTP timeouts together
FIRST_PAUSE = timedelta(minutes=1)  # then 2, 4, 8, … minutes, at most LONGEST_PAUSE
LONGEST_PAUSE = timedelta(hours=1)
MAX_ATTEMPTS = 16  # about eleven hours of an SMTP server that is down
ERROR_LENGTH = 500


class MailProblem(enum.StrEnum):
    """Why a message was not sent (stored at the start of last_error, before ": ")."""

    UNREACHABLE = "unreachable"  # refused, timed out, no such host, dropped
    TLS = "tls"  # STARTTLS/SSL failed or is not offered
    LOGIN_FAILED = "login_failed"  # MAIL_USERNAME/MAIL_PASSWORD not accepted
    SENDER_REFUSED = "sender_refused"  # MAIL_DEFAULT_SENDER refused
    TEMPORARY = "temporary"  # a 4xx answer: the server asks to try later
    RECIPIENT_REFUSED = "recipient_refused"  # a 5xx answer to the address: permanent
    REJECTED = "rejected"  # a 5xx answer to the message: permanent
    BAD_ADDRESS = "bad_address"  # not an address a message can go to: permanent
    NOT_COMPOSED = "not_composed"  # the message could not be made (a bug): reported, tried again
    CODE_WITHDRAWN = "code_withdrawn"  # voided since: the dead code is not mailed
    CODE_EXPIRED = "code_expired"  # its last day to activate passed before it could go
    INTERRUPTED = "interrupted"  # the sender stopped during the last attempt


# A second message with the same code to the same address within this time is a
# double press (a form sent twice without JavaScript), not a request to send it again.
SAME_MESSAGE_WINDOW = timedelta(minutes=2)


def queued_moments_ago(session: Session, *, issuance_id: int, to_address: str, now: datetime) -> bool:
    """Whether this code is on its way to this address already: a message of it
    made within SAME_MESSAGE_WINDOW that was not given up."""
    return session.scalar(select(func.count(_TABLE.c.id)).where(
        _TABLE.c.issuance_id == issuance_id, _TABLE.c.to_address == to_address, _TABLE.c.failed_at.is_(None),
        _TABLE.c.created_at > now - SAME_MESSAGE_WINDOW)) > 0


def enqueue_code_mail(session: Session, *, library_id: int, issuance_id: int, to_address: str, language: str,
                      now: datetime) -> int:
    """A message with the reader's code and slip, due now; its id."""
    return session.connection().execute(_INSERT, dict(
        library_id=library_id, issuance_id=issuance_id, to_address=to_address, language=language,
        created_at=now, attempts=0, next_attempt_at=now, claimed_until=None, sent_at=None, last_error=None,
        failed_at=None)).scalar_one()


# Set after a commit that wrote messages: a sender in this process (kiosk serve's
# thread, kiosk.mail.background) waits on it, so a reader's mail goes out at once,
# not at the next poll.
MESSAGES_WAITING = threading.Event()


def notify_sender() -> None:
    """Call after the commit (a message written in a transaction that rolled back
    is not there to send)."""
    MESSAGES_WAITING.set()


# -- the sender's side: claim, then mark ------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """A message a sender holds until `until` (its lease, which is also its token)."""

    id: int
    library_id: int
    issuance_id: int
    to_address: str
    language: str
    created_at: datetime
    attempts: int  # this one included
    until: datetime


_OPEN = and_(_TABLE.c.sent_at.is_(None), _TABLE.c.failed_at.is_(None))


def _free(now: datetime):
    return or_(_TABLE.c.claimed_until.is_(None), _TABLE.c.claimed_until <= now)


def claim_next(session: Session, *, now: datetime, lease: timedelta = LEASE,
               max_attempts: int = MAX_ATTEMPTS) -> Claim | None:
    """The due message waiting longest, held for `lease` and its attempt counted;
    None when nothing is due. The UPDATE repeats the conditions, so of two senders
    that read the same row only one gets it (PostgreSQL re-reads the row after the
    other's commit; SQLite's write transactions run one at a time)."""
    connection = session.connection()
    # A sender that died during a message's last attempt: nothing left to try.
    connection.execute(update(_TABLE).where(_OPEN, _TABLE.c.attempts >= max_attempts,
                                            _TABLE.c.claimed_until <= now)
                       .values(failed_at=now, claimed_until=None,
                               last_error=f"{MailProblem.INTERRUPTED}: "))
    due = (select(_TABLE.c.id).where(_OPEN, _TABLE.c.next_attempt_at <= now, _free(now))
           .order_by(_TABLE.c.next_attempt_at, _TABLE.c.id).limit(8)
           .with_for_update(skip_locked=True))  # PostgreSQL: skip rows another sender is claiming
    until = now + lease
    for message_id in connection.execute(due).scalars().all():
        taken = connection.execute(
            update(_TABLE).where(_TABLE.c.id == message_id, _OPEN, _free(now))
            .values(claimed_until=until, attempts=_TABLE.c.attempts + 1)
            .returning(_TABLE.c.library_id, _TABLE.c.issuance_id, _TABLE.c.to_address, _TABLE.c.language,
                       _TABLE.c.created_at, _TABLE.c.attempts)).one_or_none()
        if taken is not None:
            return Claim(message_id, *taken, until=until)
    return None


def due_count(session: Session, now: datetime) -> int:
    """Messages to be tried now that no sender holds."""
    return session.scalar(select(func.count()).select_from(_TABLE)
                          .where(_OPEN, _TABLE.c.next_attempt_at <= now, _free(now)))


def mark_sent(session: Session, claim: Claim, *, now: datetime) -> bool:
    """The SMTP server took it. Marked even if the lease ran out meanwhile (the
    message did go); False if it was marked already."""
    done = session.connection().execute(
        update(_TABLE).where(_TABLE.c.id == claim.id, _TABLE.c.sent_at.is_(None))
        .values(sent_at=now, claimed_until=None, failed_at=None))
    return done.rowcount == 1


def pause_after(attempts: int) -> timedelta:
    return min(FIRST_PAUSE * 2 ** max(attempts - 1, 0), LONGEST_PAUSE)


def mark_not_sent(session: Session, claim: Claim, *, problem: MailProblem, detail: str, permanent: bool,
                  now: datetime, max_attempts: int = MAX_ATTEMPTS) -> bool:
    """Tried again after a pause, or given up (failed_at): at once when `permanent`,
    else after the last attempt. True when it was given up. Nothing changes if
    another sender holds the message now (the lease ran out)."""
    give_up = permanent or claim.attempts >= max_attempts
    values = dict(claimed_until=None, last_error=f"{problem}: {detail}"[:ERROR_LENGTH])
    if give_up:
        values["failed_at"] = now
    else:
        values["next_attempt_at"] = now + pause_after(claim.attempts)
    session.connection().execute(
        update(_TABLE).where(_TABLE.c.id == claim.id, _OPEN, _TABLE.c.claimed_until == claim.until).values(**values))
    return give_up


@dataclass(frozen=True)
class CodeState:
    """What decides whether the code may still be mailed."""

    withdrawn: bool
    activate_by: date  # the window's end, never after the service's
    timezone: str
    library: str


def code_state(session: Session, issuance_id: int) -> CodeState:
    voided_at, status, window_end, timezone, library = session.execute(
        select(Issuance.voided_at, Code.status, Issuance.window_end, Library.timezone, Library.name)
        .join(Code, Issuance.code_id == Code.id).join(Library, Issuance.library_id == Library.id)
        .where(Issuance.id == issuance_id)).one()
    service_end = session.scalar(select(Consortium.service_end).limit(1))
    return CodeState(withdrawn=voided_at is not None or status == "void",
                     activate_by=min(window_end, service_end) if service_end else window_end, timezone=timezone,
                     library=library)


# -- the panel's side: what did not go, and sending it again ------------------------------

@dataclass(frozen=True)
class OutboxRow:
    id: int
    library: str
    library_slug: str
    created_at: datetime
    to_address: str
    attempts: int
    next_attempt_at: datetime
    failed_at: datetime | None
    problem: MailProblem | None
    detail: str
    issuance_id: int
    code: str


@dataclass(frozen=True)
class OutboxState:
    waiting: int  # not sent yet, still to be tried (now or after a pause)
    failed: int
    sent: int
    failures: list[OutboxRow]  # given up, newest first
    retrying: list[OutboxRow]  # tried and not sent yet, to be tried again


def split_error(text: str | None) -> tuple[MailProblem | None, str]:
    """last_error as its problem and the server's own words."""
    head, _sep, detail = (text or "").partition(": ")
    try:
        return MailProblem(head), detail
    except ValueError:
        return None, text or ""


def _rows(session: Session, *conditions, order, limit: int) -> list[OutboxRow]:
    query = (select(OutboxMessage, Library.name, Library.slug, Code.value)
             .join(Library, OutboxMessage.library_id == Library.id)
             .join(Issuance, OutboxMessage.issuance_id == Issuance.id).join(Code, Issuance.code_id == Code.id)
             .where(*conditions).order_by(*order).limit(limit))
    rows = []
    for message, library, slug, code in session.execute(query):
        problem, detail = split_error(message.last_error)
        rows.append(OutboxRow(message.id, library, slug, message.created_at, message.to_address, message.attempts,
                              message.next_attempt_at, message.failed_at, problem, detail, message.issuance_id,
                              code))
    return rows


def outbox_state(session: Session, library_id: int | None, *, limit: int = 200) -> OutboxState:
    """A library's outbox (None: every library's), for the panel."""
    scope = [OutboxMessage.library_id == library_id] if library_id is not None else []
    failed = session.scalar(select(func.count()).select_from(OutboxMessage)
                            .where(*scope, OutboxMessage.failed_at.isnot(None), OutboxMessage.sent_at.is_(None)))
    sent = session.scalar(select(func.count()).select_from(OutboxMessage)
                          .where(*scope, OutboxMessage.sent_at.isnot(None)))
    waiting = session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(*scope, OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None)))
    failures = _rows(session, *scope, OutboxMessage.failed_at.isnot(None), OutboxMessage.sent_at.is_(None),
                     order=(OutboxMessage.failed_at.desc(), OutboxMessage.id.desc()), limit=limit)
    retrying = _rows(session, *scope, OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
                     OutboxMessage.attempts > 0, order=(OutboxMessage.created_at, OutboxMessage.id), limit=limit)
    return OutboxState(waiting, failed, sent, failures, retrying)


def send_again(session: Session, *, message_id: int, library_id: int, actor: Actor, now: datetime) -> bool:
    """A message given up, due again now with every attempt back (once the mail
    server's settings are mended, or the reader's mailbox works again). False when
    it is not this library's message given up (sent again already, or never)."""
    again = session.connection().execute(
        update(_TABLE).where(_TABLE.c.id == message_id, _TABLE.c.library_id == library_id,
                             _TABLE.c.failed_at.isnot(None), _TABLE.c.sent_at.is_(None))
        .values(failed_at=None, attempts=0, next_attempt_at=now, claimed_until=None)
        .returning(_TABLE.c.issuance_id)).one_or_none()
    if again is None:
        return False
    insert_event(session, kind=EventKind.MAIL_SENT_AGAIN, actor=actor, now=now, library_id=library_id,
                 issuance_id=again.issuance_id, outbox_id=message_id)
    return True
