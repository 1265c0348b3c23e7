"""Tables for what reaches beyond the building: library systems' API keys, their
use and their idempotent answers (kiosk.domain.api_keys), and the e-mail outbox
(kiosk.domain.outbox)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.storage.base import Base, UTCDateTime


class ApiKey(Base):
    """A named key a library system sends as `Authorization: Bearer`. Only a hash
    of the secret is kept; the secret is shown once, when the key is made."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # None: a consortium key, which may name any library.
    library_id: Mapped[int | None] = mapped_column(ForeignKey("libraries.id"))
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))  # the secret's start, to tell keys apart on screen
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    per_minute: Mapped[int] = mapped_column(Integer, default=1000, server_default="1000")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(120))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # One live key of a name per library, and among the consortium's keys.
        Index("uq_api_keys_live_name", "library_id", "name", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
        Index("uq_api_keys_live_consortium_name", "name", unique=True,
              sqlite_where=text("revoked_at IS NULL AND library_id IS NULL"),
              postgresql_where=text("revoked_at IS NULL AND library_id IS NULL")),
    )


class ApiUsage(Base):
    """Requests a key made in one minute: its rate limit and its last use in one row."""

    __tablename__ = "api_usage"

    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)


class IdempotentAnswer(Base):
    """The first answer to a POST sent with an Idempotency-Key, written in the same
    transaction as what the request did: a retry gets it back, never a second code."""

    __tablename__ = "api_idempotent_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))  # the same key with another request is refused
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("api_key_id", "key", name="uq_api_idempotent_answers_key"),)


class OutboxMessage(Base):
    """An e-mail to send, written in the transaction that decided it (an issue, a
    reprint) and sent after the commit by kiosk.mail.sender. The code and
    the slip are read from the issuance when the message is sent, never copied here."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    issuance_id: Mapped[int] = mapped_column(ForeignKey("issuances.id"))
    to_address: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A sender's lease: another sender leaves the message alone until then.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Given up after the last attempt (the panel lists these).
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_outbox_due", "next_attempt_at", sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
              postgresql_where=text("sent_at IS NULL AND failed_at IS NULL")),
        Index("ix_outbox_library_created", "library_id", "created_at"),
    )
