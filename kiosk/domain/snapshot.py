"""What the issuing path reads on every scan and what almost never changes: the
libraries, platforms, rule sets, SIP2 connections, closed days, kiosks, pools and
the service end. Read once per process and database, kept until the settings
version says they changed: consortium.settings_version, replaced by database
triggers at every change to those tables, whoever makes it (migration 0008).
One read of one row per scan instead of a read per table.

The copies are plain frozen records, not ORM objects: they outlive the session
that read them and are shared by every thread."""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType, SimpleNamespace
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session

from kiosk.domain.rules import Rules, rules_of
from kiosk.domain.sip2_settings import Sip2Config, config_of
from kiosk.storage.models import ClosedDay, Consortium, Kiosk, Library, Platform, Pool, RuleSet, Sip2Setting


def _copy(row, columns) -> dict:
    return {column: getattr(row, column) for column in columns}


@dataclass(frozen=True)
class LibraryView:
    id: int
    slug: str
    name: str
    slip_header: str | None
    timezone: str
    card_check: str
    card_pattern: str | None
    card_check_digit: str | None
    low_pool_percent: int
    kiosk_idle_seconds: int
    desk_printer: str
    register_facts: str | None


@dataclass(frozen=True)
class PlatformView:
    id: int
    slug: str
    name: str
    activation_url: str
    slip_steps: str | None


@dataclass(frozen=True)
class PoolView:
    id: int
    library_id: int
    platform_id: int
    valid_from: date
    valid_until: date
    code_count: int
    imported_at: datetime


@dataclass(frozen=True)
class KioskView:
    id: int
    library_id: int
    name: str
    printer: str
    device_nonce: str | None
    revoked_at: datetime | None
    library: LibraryView


@dataclass(frozen=True)
class Snapshot:
    version: str | None
    libraries: Mapping[str, LibraryView]
    libraries_by_id: Mapping[int, LibraryView]
    platforms: Mapping[str, PlatformView]
    platforms_by_id: Mapping[int, PlatformView]
    rules: Mapping[int, Rules]
    closed: Mapping[int, frozenset[date]]
    kiosks: Mapping[int, KioskView]
    pools: Mapping[tuple[int, int], tuple[PoolView, ...]]  # (library, platform), by valid_from, id
    service_end: date | None
    sip2_rows: Mapping[int, SimpleNamespace]
    _sip2: dict = field(default_factory=dict, compare=False)  # (library, pepper) -> config: unsealed once

    def rules_for(self, library_id: int) -> Rules:
        return self.rules.get(library_id, Rules())

    def pools_of(self, library_id: int, platform_id: int, today: date) -> list[PoolView]:
        return [pool for pool in self.pools.get((library_id, platform_id), ()) if pool.valid_until >= today]

    def sip2_config(self, library_id: int, pepper: str) -> Sip2Config | None:
        key = (library_id, pepper)
        if key not in self._sip2:
            self._sip2[key] = config_of(self.sip2_rows.get(library_id), library_id, pepper)
        return self._sip2[key]


_VERSION = select(Consortium.settings_version).limit(1)
_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> Snapshot


def snapshot(session: Session) -> Snapshot:
    """The settings as they are now: one read of the version, the whole set read
    again only after a change."""
    real = session() if isinstance(session, scoped_session) else session  # Flask-SQLAlchemy's proxy
    first_statement = not real.in_transaction()
    try:
        version = session.connection().execute(_VERSION).scalar()
    except OperationalError as error:
        # A connection the server closed: once more on a fresh one, where nothing was
        # read or written before; inside a unit of work, its own retry does that.
        if not (first_statement and getattr(error, "connection_invalidated", False)):
            raise
        session.rollback()
        version = session.connection().execute(_VERSION).scalar()
    engine = session.get_bind()
    cached = _cache.get(engine)
    if cached is not None and version is not None and cached.version == version:
        return cached
    fresh = _load(session, version)
    if version is not None:  # read before the data: a change in between is seen next time
        _cache[engine] = fresh
    return fresh


def last_snapshot(session: Session) -> Snapshot:
    """The settings as this process last saw them, without asking whether they
    changed (no read once there is a copy): for a step that asks again inside its
    own transaction, as the kiosk's scan does (kiosk.domain.kiosks.scan_card)."""
    cached = _cache.get(session.get_bind())
    return cached if cached is not None else snapshot(session)


def _frozen(mapping: dict) -> Mapping:
    return MappingProxyType(mapping)


def _load(session: Session, version: str | None) -> Snapshot:
    library_columns = [name for name in LibraryView.__dataclass_fields__]
    libraries = [LibraryView(**_copy(row, library_columns)) for row in session.scalars(select(Library))]
    by_id = {library.id: library for library in libraries}
    platforms = [PlatformView(**_copy(row, PlatformView.__dataclass_fields__))
                 for row in session.scalars(select(Platform))]
    # Every pool, past ones too: "today" is the caller's (a test's, a dry run's) and
    # a library gathers a dozen pools a year.
    pools: dict[tuple[int, int], list[PoolView]] = {}
    for row in session.scalars(select(Pool).order_by(Pool.valid_from, Pool.id)):
        pools.setdefault((row.library_id, row.platform_id), []).append(
            PoolView(**_copy(row, PoolView.__dataclass_fields__)))
    closed: dict[int, set[date]] = {}
    for library_id, day in session.execute(select(ClosedDay.library_id, ClosedDay.day)):
        closed.setdefault(library_id, set()).add(day)
    kiosk_columns = [name for name in KioskView.__dataclass_fields__ if name != "library"]
    kiosks = {row.id: KioskView(**_copy(row, kiosk_columns), library=by_id[row.library_id])
              for row in session.scalars(select(Kiosk))}
    sip2_columns = [column.key for column in Sip2Setting.__table__.columns]
    return Snapshot(
        version=version,
        libraries=_frozen({library.slug: library for library in libraries}),
        libraries_by_id=_frozen(by_id),
        platforms=_frozen({platform.slug: platform for platform in platforms}),
        platforms_by_id=_frozen({platform.id: platform for platform in platforms}),
        rules=_frozen({row.library_id: rules_of(row) for row in session.scalars(select(RuleSet))}),
        closed=_frozen({library_id: frozenset(days) for library_id, days in closed.items()}),
        kiosks=_frozen(kiosks),
        pools=_frozen({key: tuple(found) for key, found in pools.items()}),
        service_end=session.scalar(select(Consortium.service_end).limit(1)),
        sip2_rows=_frozen({row.library_id: SimpleNamespace(**_copy(row, sip2_columns))
                           for row in session.scalars(select(Sip2Setting))}),
    )
