"""The database: consortium, libraries, platforms, pools of codes, issuances,
reader registry, staff, kiosks and the event log (DESIGN.md §3).

Invariants the database itself enforces, so no code path can break them: a code is
unique per platform; a code is issued at most once (one issuance per code); a reader
has at most one live issuance per library, platform and window."""
from __future__ import annotations

import enum
import secrets
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.domain.clock import DEFAULT_TIMEZONE
from kiosk.storage.base import NAMING_CONVENTION, Base, UTCDateTime  # noqa: F401 (the models' names)


class CodeStatus(enum.StrEnum):
    AVAILABLE = "available"
    ISSUED = "issued"
    VOID = "void"


class Channel(enum.StrEnum):
    KIOSK = "kiosk"
    DESK = "desk"
    API = "api"  # a library system, with an API key (kiosk.web.api)
    ONLINE = "online"  # the reader, on the library's online request form (kiosk.web.online)


class Role(enum.StrEnum):
    DESK = "desk"
    LIBRARY_ADMIN = "library_admin"
    CONSORTIUM_ADMIN = "consortium_admin"


class CardCheckKind(enum.StrEnum):
    FORMAT = "format"
    REGISTRY = "registry"
    SIP2 = "sip2"  # asked live of the library system


def _values(enum_cls: type[enum.Enum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_cls)


class Consortium(Base):
    """One row: the deployment's consortium (or single library) settings."""

    __tablename__ = "consortium"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    service_end: Mapped[date | None] = mapped_column(Date)
    # An HMAC made with the reader-key pepper: a different pepper (a lost or new instance
    # folder) would silently make every reader new, so the app refuses it.
    pepper_check: Mapped[str | None] = mapped_column(String(64))
    # Replaced by database triggers at every change to what the issuing path keeps (migration 0008).
    settings_version: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(8),
                                                  server_default="0")
    # Readers' traces older than this many months are purged daily (kiosk.domain.retention).
    retention_months: Mapped[int] = mapped_column(Integer, default=24, server_default="24")


class Platform(Base):
    __tablename__ = "platforms"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    activation_url: Mapped[str] = mapped_column(String(300))
    # The slip's "how to start" steps, JSON {"pl": [...], "en": [...], "uk": [...]};
    # None prints the general steps (kiosk.wording.slips).
    slip_steps: Mapped[str | None] = mapped_column(Text)


class Library(Base):
    __tablename__ = "libraries"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    slip_header: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str] = mapped_column(String(60), default=DEFAULT_TIMEZONE)
    card_check: Mapped[str] = mapped_column(String(20), default=CardCheckKind.FORMAT.value)
    card_pattern: Mapped[str | None] = mapped_column(String(200))
    card_check_digit: Mapped[str | None] = mapped_column(String(20))
    low_pool_percent: Mapped[int] = mapped_column(Integer, default=10)
    kiosk_idle_seconds: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # The desk's printer, in the kiosks' notation (printing.printers).
    desk_printer: Mapped[str] = mapped_column(String(300), default="browser", server_default="browser")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The reader facts the last card register import gave ("birth_date,last_loan,debt"):
    # a rule needing a fact not given refuses with "no_data" (kiosk.domain.eligibility).
    register_facts: Mapped[str | None] = mapped_column(String(60))

    __table_args__ = (
        CheckConstraint(f"card_check IN ({_values(CardCheckKind)})", name="card_check_kind"),
    )


class Pool(Base):
    """One library's codes for one platform and one validity window (inclusive)."""

    __tablename__ = "pools"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"), index=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    code_count: Mapped[int] = mapped_column(Integer)
    source_filename: Mapped[str] = mapped_column(String(300))
    source_sha256: Mapped[str] = mapped_column(String(64))
    imported_by: Mapped[str] = mapped_column(String(120))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)

    library: Mapped[Library] = relationship()
    platform: Mapped[Platform] = relationship()

    __table_args__ = (
        UniqueConstraint("platform_id", "source_sha256", name="uq_pools_platform_file"),
        CheckConstraint("valid_until >= valid_from", name="window_order"),
    )


class RuleSet(Base):
    """A library's published rules for handing out codes (kiosk.domain.rules).
    NULL (or the first choice) is "off": a library without rules keeps today's
    behaviour, a valid card gets one code per window."""

    __tablename__ = "rule_sets"

    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"), primary_key=True)
    release_day: Mapped[str] = mapped_column(String(30), default="window_start", server_default="window_start")
    release_time: Mapped[str] = mapped_column(String(5), default="00:00", server_default="00:00")
    early_release: Mapped[str] = mapped_column(String(30), default="off", server_default="off")
    min_age: Mapped[int | None] = mapped_column(Integer)
    active_within_months: Mapped[int | None] = mapped_column(Integer)
    max_debt_grosze: Mapped[int | None] = mapped_column(Integer)
    non_activation_wait: Mapped[int | None] = mapped_column(Integer)
    first_timer_reserve: Mapped[int | None] = mapped_column(Integer)
    first_timer_until_day: Mapped[int | None] = mapped_column(Integer)
    platforms_rule: Mapped[str] = mapped_column(String(30), default="independent", server_default="independent")
    priority_until_day: Mapped[int | None] = mapped_column(Integer)
    online_share: Mapped[int | None] = mapped_column(Integer)  # percent of each pool kept for the online form


class Sip2Setting(Base):
    """How a library's system is asked about cards; the password is sealed (kiosk.storage.secrets)."""

    __tablename__ = "sip2_settings"

    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    tls: Mapped[bool] = mapped_column(default=False, server_default=false())
    ca_file: Mapped[str | None] = mapped_column(String(500))
    login_user: Mapped[str | None] = mapped_column(String(100))
    password_sealed: Mapped[str | None] = mapped_column(Text)
    institution: Mapped[str] = mapped_column(String(100), default="", server_default="")
    location: Mapped[str | None] = mapped_column(String(100))
    encoding: Mapped[str] = mapped_column(String(10), default="utf-8", server_default="utf-8")
    timeout_ms: Mapped[int] = mapped_column(Integer, default=3000, server_default="3000")
    on_failure: Mapped[str] = mapped_column(String(10), default="refuse", server_default="refuse")
    require_pin: Mapped[bool] = mapped_column(default=False, server_default=false())
    __table_args__ = (CheckConstraint("on_failure IN ('refuse', 'registry')", name="on_failure"),)


class ClosedDay(Base):
    """A day the library is closed besides weekends and public holidays."""

    __tablename__ = "closed_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    day: Mapped[date] = mapped_column(Date)

    __table_args__ = (UniqueConstraint("library_id", "day", name="uq_closed_days_library_day"),)


class ActivationImport(Base):
    """A platform's list of activated codes, imported: a code of a window that ended
    before such an import and not on it counts as not activated."""

    __tablename__ = "activation_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id"))
    # The day the platform's list was true on, in the library's time zone.
    as_of: Mapped[date] = mapped_column(Date)
    marked: Mapped[int] = mapped_column(Integer)
    source_filename: Mapped[str] = mapped_column(String(300))
    imported_by: Mapped[str] = mapped_column(String(120))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_activation_imports_library_platform", "library_id", "platform_id", "as_of"),)


class Code(Base):
    __tablename__ = "codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"))
    # Kept beside pool_id so the database can hold codes unique per platform.
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id"))
    value: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default=CodeStatus.AVAILABLE.value)
    void_reason: Mapped[str | None] = mapped_column(Text)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by an activation import (kiosk.domain.activations); the date when the list gave one.
    activation_marked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_on: Mapped[date | None] = mapped_column(Date)

    pool: Mapped[Pool] = relationship()

    __table_args__ = (
        UniqueConstraint("platform_id", "value", name="uq_codes_platform_value"),
        CheckConstraint(f"status IN ({_values(CodeStatus)})", name="status"),
        Index("ix_codes_pool_status", "pool_id", "status", "id"),
    )


class Kiosk(Base):
    """A browser enrolled by a library admin to issue without a staff login."""

    __tablename__ = "kiosks"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    # Where its slips go: "browser", "cups:QUEUE", "escpos-tcp:HOST[:PORT]",
    # "escpos-usb:VENDOR:PRODUCT" or "escpos-file:PATH" (printing.printers).
    printer: Mapped[str] = mapped_column(String(300), default="browser", server_default="browser")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The one-time enrolment link: only its hash is kept, until it is used.
    enrol_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrol_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Changes at every enrolment, so an older browser's cookie stops working.
    device_nonce: Mapped[str | None] = mapped_column(String(32))
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    library: Mapped[Library] = relationship()


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    # None only for a consortium admin, who serves every library.
    library_id: Mapped[int | None] = mapped_column(ForeignKey("libraries.id"))
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped when the password changes or the account is disabled: older sessions end.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A generated password (a new account, a reset) must be changed at the first sign-in.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())

    library: Mapped[Library | None] = relationship()

    __table_args__ = (
        CheckConstraint(f"role IN ({_values(Role)})", name="role"),
        CheckConstraint(
            "library_id IS NOT NULL OR role = 'consortium_admin'", name="library_unless_consortium"
        ),
    )


class Issuance(Base):
    """A code handed to a reader. Voiding (a faulty code) ends it being live."""

    __tablename__ = "issuances"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id"), unique=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id"))
    reader_key: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(120))
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosks.id"))
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    print_count: Mapped[int] = mapped_column(Integer, default=1)
    # The card's last characters ("5678"), so staff can tell readers apart on screen.
    card_hint: Mapped[str | None] = mapped_column(String(8))
    # Staff's note, e.g. a proxy collecting for a reader with a disability.
    note: Mapped[str | None] = mapped_column(Text)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The reader had no earlier code of this library: counted against the reserve.
    first_timer: Mapped[bool] = mapped_column(default=False, server_default=false())

    code: Mapped[Code] = relationship()

    __table_args__ = (
        CheckConstraint(f"channel IN ({_values(Channel)})", name="channel"),
        # The rule "one code per reader per window", held by the database itself.
        Index(
            "uq_issuances_live_reader_window",
            "library_id",
            "platform_id",
            "reader_key",
            "window_start",
            unique=True,
            sqlite_where=text("voided_at IS NULL"),
            postgresql_where=text("voided_at IS NULL"),
        ),
        Index("ix_issuances_library_issued_at", "library_id", "issued_at"),
        Index("ix_issuances_library_reader", "library_id", "reader_key"),
    )


class CardRecord(Base):
    """A valid card from the library system's export, known only by its reader key."""

    __tablename__ = "card_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    library_id: Mapped[int] = mapped_column(ForeignKey("libraries.id"))
    reader_key: Mapped[str] = mapped_column(String(64))
    expires_on: Mapped[date | None] = mapped_column(Date)
    blocked: Mapped[bool] = mapped_column(default=False)
    # Reader facts for the rules, where the register gives them (Library.register_facts).
    birth_date: Mapped[date | None] = mapped_column(Date)
    last_loan: Mapped[date | None] = mapped_column(Date)
    debt_grosze: Mapped[int | None] = mapped_column(Integer)
    # Where the online form mails the reader's code (the register's "E-mail" column).
    email: Mapped[str | None] = mapped_column(String(254))

    __table_args__ = (
        UniqueConstraint("library_id", "reader_key", name="uq_card_records_library_reader"),
    )


class Event(Base):
    """Append-only log: who did what, for the question "who got this code?"."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    library_id: Mapped[int | None] = mapped_column(ForeignKey("libraries.id"), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    details: Mapped[str] = mapped_column(Text, default="{}")


class LimitHit(Base):
    """One counted attempt against a rate limit (kiosk.domain.limits)."""

    __tablename__ = "limit_hits"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_limit_hits_kind_subject_at", "kind", "subject", "at"),)


# The tables of what reaches beyond the building (API keys, the outbox): kept apart
# for length, named here too so every table is one import away.
from kiosk.storage.remote import ApiKey, ApiUsage, IdempotentAnswer, OutboxMessage  # noqa: E402,F401
