"""The e-mail outbox: a message is written in the transaction that decided it (a
code issued or sent again) and sent after the commit (kiosk.mail.sender), so a
rolled-back issue mails nothing and an SMTP server that is down loses nothing."""
from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from kiosk.storage.models import OutboxMessage

_INSERT = insert(OutboxMessage.__table__).returning(OutboxMessage.__table__.c.id)


def enqueue_code_mail(session: Session, *, library_id: int, issuance_id: int, to_address: str, language: str,
                      now: datetime) -> int:
    """A message with the reader's code and slip, due now; its id."""
    return session.connection().execute(_INSERT, dict(
        library_id=library_id, issuance_id=issuance_id, to_address=to_address, language=language,
        created_at=now, attempts=0, next_attempt_at=now, claimed_until=None, sent_at=None, last_error=None,
        failed_at=None)).scalar_one()


# Set after a commit that wrote messages: a sender in this process (kiosk serve's
# thread) waits on it, so a reader's mail goes out at once, not at the next poll.
MESSAGES_WAITING = threading.Event()


def notify_sender() -> None:
    """Call after the commit (a message written in a transaction that rolled back
    is not there to send)."""
    MESSAGES_WAITING.set()
