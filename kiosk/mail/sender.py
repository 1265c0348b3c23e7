"""Sending what is due: each message claimed in one short transaction, sent outside
any transaction, marked in another (kiosk.domain.outbox). The serve thread
(kiosk.mail.background) and `kiosk send-mail` both call send_due."""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Callable

from sqlalchemy.orm import Session

from kiosk.domain.clock import utcnow
from kiosk.domain.outbox import Claim, MailProblem, claim_next, due_count, mark_not_sent, mark_sent
from kiosk.mail.compose import compose, read_letter
from kiosk.mail.settings import MailSettings
from kiosk.mail.smtp import NotSent, Postman
from kiosk.storage.database import DatabaseBusy, run_in_transaction

log = logging.getLogger("kiosk.mail")
# A server's answer often repeats the recipient ("550 <anna@example.pl> unknown"): the
# log keeps no reader's address (the panel shows it to staff, who may see it).
_ADDRESS = re.compile(r"[^\s<>@\"']+@[^\s<>@\"']+")


def without_addresses(text: str) -> str:
    return _ADDRESS.sub("<address>", text or "")
MARK_PATIENCE = 60.0  # seconds to keep trying to mark a message the server took


@dataclass
class Round:
    """What one call of send_due did."""

    sent: int = 0
    retrying: int = 0  # not sent; tried again after a pause
    given_up: int = 0  # not sent and never will be (failed_at): the panel lists them
    still_due: int = 0  # due, not tried: the round stopped at a server that failed
    stopped: NotSent | None = None  # why the round stopped early
    problems: list[NotSent] = field(default_factory=list)

    @property
    def all_sent(self) -> bool:
        return not (self.retrying or self.given_up or self.still_due)


def send_due(session: Session, settings: MailSettings, *, clock: Callable[[], datetime] = utcnow,
             limit: int | None = None, postman: Postman | None = None) -> Round:
    """Send every message due now (at most `limit`). A server that cannot be
    reached, or refuses the login or the sender, stops the round: the messages not
    tried yet stay due, with no attempt counted."""
    done, own_postman = Round(), postman is None
    postman = postman or Postman(settings)
    try:
        while limit is None or done.sent + done.retrying + done.given_up < limit:
            claim = run_in_transaction(session, lambda s: claim_next(s, now=clock()))
            if claim is None:
                break
            try:
                message, recipient = _prepared(session, claim, settings, clock())
                postman.send(message, recipient)
            except NotSent as not_sent:
                session.rollback()
                gave_up = run_in_transaction(session, lambda s, why=not_sent: mark_not_sent(
                    s, claim, problem=why.problem, detail=why.detail, permanent=why.permanent, now=clock()))
                done.problems.append(not_sent)
                if gave_up:
                    done.given_up += 1
                else:
                    done.retrying += 1
                log.warning("outbox row %s not sent, %s (%s): %s", claim.id,
                            "given up" if gave_up else "to be tried again", not_sent.problem,
                            without_addresses(not_sent.detail))
                if not_sent.whole_round:
                    done.stopped = not_sent
                    break
                continue
            _mark_sent(session, claim, clock)
            done.sent += 1
    finally:
        if own_postman:
            postman.close()
        session.rollback()
    if done.stopped is not None:
        done.still_due = due_count(session, clock())
        session.rollback()
    return done


def _prepared(session: Session, claim: Claim, settings: MailSettings, now: datetime) -> tuple[EmailMessage, str]:
    """The message and its recipient, or NotSent: why it must not go, or, when
    making it failed (a bug), a problem that is reported and tried again."""
    try:
        letter = read_letter(session, claim, now)
        session.rollback()  # the read ends before the SMTP conversation
        return compose(letter, claim, settings, now), letter.recipient
    except NotSent:
        raise
    except Exception as failed:  # noqa: BLE001 - one bad message must not stop the others
        log.exception("the message of outbox row %s could not be made", claim.id)
        raise NotSent(MailProblem.NOT_COMPOSED, f"{type(failed).__name__}: {failed}") from None


def _mark_sent(session: Session, claim: Claim, clock: Callable[[], datetime]) -> None:
    """The server has the message: marking it must not be lost to a busy database,
    or another sender would send it again once the lease ran out."""
    deadline = time.monotonic() + MARK_PATIENCE
    while True:
        try:
            run_in_transaction(session, lambda s: mark_sent(s, claim, now=clock()))
            return
        except DatabaseBusy:
            if time.monotonic() > deadline:
                log.error("outbox row %s was sent but could not be marked; it may be sent again", claim.id)
                raise
            time.sleep(1)

