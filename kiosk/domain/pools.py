"""Pools of codes: an import checked against what is already stored and stored all
or nothing, and what is left of each pool."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import case, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.clock import local_day
from kiosk.domain.consortium import service_end
from kiosk.domain.eligibility import opening
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.pool_files import ImportProblem, ImportRefused, PreparedPool
from kiosk.domain.rules import rules_for
from kiosk.storage.bulk import insert_unless_taken, listed
from kiosk.storage.models import Code, CodeStatus, Library, Platform, Pool


@dataclass(frozen=True)
class ImportReport:
    library: str
    platform: str
    valid_from: date
    valid_until: date
    count: int
    filename: str
    sha256: str
    code_column: str
    pool_id: int | None = None
    sample: list[str] = field(default_factory=list)


# -- checking against the database and storing --------------------------------

def _pool_details(pool: Pool, library: Library) -> dict:
    """What a refusal may say of an earlier pool: everything for the library's own,
    nothing for another library's (its files and staff are not this admin's)."""
    if pool.library_id != library.id:
        return {"other_library": True}
    return {
        "filename": pool.source_filename,
        "library": pool.library.slug,
        "imported_at": pool.imported_at,
        "imported_by": pool.imported_by,
        "valid_from": pool.valid_from,
        "valid_until": pool.valid_until,
    }


def _refuse_same_file(session: Session, library: Library, platform: Platform, prepared: PreparedPool) -> None:
    earlier = session.scalar(
        select(Pool).where(Pool.platform_id == platform.id, Pool.source_sha256 == prepared.sha256)
    )
    if earlier is not None:
        raise ImportRefused(ImportProblem.SAME_FILE, **_pool_details(earlier, library))


def _window_refusal(session: Session, library: Library, platform: Platform,
                    prepared: PreparedPool) -> ImportRefused | None:
    """Why the file's window cannot be the library's, if it cannot."""
    valid_from, valid_until = prepared.window
    overlapping = session.scalar(
        select(Pool).where(
            Pool.library_id == library.id,
            Pool.platform_id == platform.id,
            Pool.valid_from <= valid_until,
            Pool.valid_until >= valid_from,
            # The same window again is a top-up of that month's pool: allowed.
            ~((Pool.valid_from == valid_from) & (Pool.valid_until == valid_until)),
        ).limit(1)
    )
    if overlapping is not None:
        return ImportRefused(ImportProblem.WINDOW_OVERLAP, **_pool_details(overlapping, library))
    ends = service_end(session)
    if ends and valid_from > ends:
        return ImportRefused(ImportProblem.AFTER_SERVICE_END, service_end=ends)
    return None


def _code_exists(session: Session, library: Library, platform: Platform, prepared: PreparedPool,
                 own_pool_id: int = 0) -> ImportRefused | None:
    """The file's first code (in the file's order) already in a pool of the platform,
    other than the one being imported (own_pool_id; 0 is none: ids start at 1),
    named with its row and that pool.

    One query for the whole file: its codes as a list-table, each looked up in the
    unique index (SQLite's CROSS JOIN keeps that order; PostgreSQL's planner is free).
    """
    source, params = listed(session, "listed", prepared.codes)
    found = session.execute(text(
        f"SELECT listed.key, codes.pool_id FROM {source} CROSS JOIN codes "
        "WHERE codes.platform_id = :platform AND codes.value = listed.value AND codes.pool_id <> :own "
        "ORDER BY listed.key LIMIT 1"), {**params, "platform": platform.id, "own": own_pool_id}).first()
    if found is None:
        return None
    place, pool_id = found
    return ImportRefused(ImportProblem.CODE_EXISTS, code=prepared.codes[place], row=prepared.rows[place],
                         **_pool_details(session.get(Pool, pool_id), library))


def _check_against_database(session: Session, library: Library, platform: Platform,
                            prepared: PreparedPool) -> None:
    """Every check, in the order an import makes them; writes nothing."""
    _refuse_same_file(session, library, platform, prepared)
    refusal = _code_exists(session, library, platform, prepared) or _window_refusal(
        session, library, platform, prepared)
    if refusal is not None:
        raise refusal


def _store_codes(session: Session, pool: Pool, platform: Platform, codes: list[str]) -> bool:
    """The pool's codes inserted in bulk, in the file's order; False when one is
    already stored for the platform."""
    return insert_unless_taken(
        session, "codes", {"pool_id": pool.id, "platform_id": platform.id, "status": CodeStatus.AVAILABLE.value},
        "value", codes, unique=("platform_id", "value"))


def _report(library: Library, platform: Platform, prepared: PreparedPool, pool_id: int | None) -> ImportReport:
    return ImportReport(library=library.slug, platform=platform.slug, valid_from=prepared.valid_from,
                        valid_until=prepared.valid_until, count=len(prepared.codes), filename=prepared.filename,
                        sha256=prepared.sha256, code_column=prepared.code_column, pool_id=pool_id,
                        sample=prepared.codes[:3])


def preview_pool(session: Session, *, library_id: int, platform_id: int, prepared: PreparedPool) -> ImportReport:
    """What importing the file would do, with every check; writes nothing."""
    library, platform = session.get(Library, library_id), session.get(Platform, platform_id)
    _check_against_database(session, library, platform, prepared)
    return _report(library, platform, prepared, None)


def import_pool(session: Session, *, library_id: int, platform_id: int, prepared: PreparedPool, actor: Actor,
                now: datetime) -> ImportReport:
    """Store a prepared file as a pool, all or nothing (inside a unit of work).
    Raises ImportRefused; a race lost to another import of the same codes ends in
    the unit of work's retry, which finds and names that import."""
    # One import per library at a time (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    # serialises): two overlapping windows could otherwise both pass the checks.
    # FOR NO KEY UPDATE: other imports wait, but not the kiosks, whose inserts need a
    # key-share lock on the library row for their foreign keys.
    library = session.scalar(select(Library).where(Library.id == library_id).with_for_update(key_share=True))
    platform = session.get(Platform, platform_id)
    _refuse_same_file(session, library, platform, prepared)
    window_refusal = _window_refusal(session, library, platform, prepared)
    if window_refusal is not None:
        # Refused either way: found without storing 100,000 codes first.
        raise _code_exists(session, library, platform, prepared) or window_refusal
    pool = Pool(
        library_id=library.id,
        platform_id=platform.id,
        valid_from=prepared.valid_from,
        valid_until=prepared.valid_until,
        code_count=len(prepared.codes),
        source_filename=prepared.filename,
        source_sha256=prepared.sha256,
        imported_by=actor.label,
        imported_at=now,
    )
    session.add(pool)
    session.flush()
    if not _store_codes(session, pool, platform, prepared.codes):
        # The unique index met a code already stored: name the first, and roll back.
        refusal = _code_exists(session, library, platform, prepared, own_pool_id=pool.id)
        if refusal is None:  # only a race could get here; the unit of work's retry sorts it out
            raise IntegrityError("codes", None, ValueError("a code of the file was stored meanwhile"))
        raise refusal
    record_event(session, kind=EventKind.IMPORT, actor=actor, library_id=library.id, now=now,
                 pool_id=pool.id, platform=platform.slug, filename=prepared.filename, sha256=prepared.sha256,
                 count=len(prepared.codes), valid_from=prepared.valid_from, valid_until=prepared.valid_until)
    return _report(library, platform, prepared, pool.id)


# -- what a kiosk's idle screen says -------------------------------------------

@dataclass(frozen=True)
class Availability:
    """Whether codes are out now, of which platforms, and when the next come."""

    platforms: list[str]     # names of the platforms whose codes are handed out now
    left: int                # codes still free now, all platforms together
    next_from: date | None   # the day the next pool is handed out from, when one is imported
    next_release: datetime | None = None  # that moment (a rule may set an hour), in the library's zone
    next_window_start: date | None = None
    choices: tuple[tuple[str, str], ...] = ()  # (slug, name) with codes free now: the kiosk asks if two
    default_platform: str = "legimi"  # the one to issue from when there is nothing to choose
    open_month: date | None = None  # the first day of the newest open window

    @property
    def codes_out(self) -> bool:
        return self.left > 0


def availability(session: Session, library_id: int, now: datetime) -> Availability:
    """What the library hands out now, by its rules (a release day and hour)."""
    library = session.get(Library, library_id)
    today = local_day(now, library.timezone)
    rules = rules_for(session, library_id)
    platforms = session.scalars(select(Platform).where(Platform.id.in_(
        select(Pool.platform_id).where(Pool.library_id == library_id, Pool.valid_until >= today)))
        .order_by(Platform.id)).all()
    open_now, upcoming, starts = [], [], []
    for platform in platforms:
        found = opening(session, library, platform.id, rules, now)
        if found.window is not None:
            starts.append(found.window.start)
            free = session.scalar(select(func.count(Code.id)).where(
                Code.pool_id.in_(found.window.pool_ids), Code.status == CodeStatus.AVAILABLE.value))
            open_now.append((platform, free))
        if found.upcoming is not None:
            upcoming.append((found.upcoming.released_at, found.upcoming.start, platform.slug))
    ends = service_end(session)
    left = 0 if ends and today > ends else sum(free for _platform, free in open_now)
    following = min(upcoming) if upcoming else None
    with_codes = [platform for platform, free in open_now if free > 0]
    default = (with_codes[0].slug if with_codes else open_now[0][0].slug if open_now
               else following[2] if following else "legimi")
    return Availability(
        platforms=[platform.name for platform, _free in open_now], left=left,
        next_from=following[0].date() if following else None,
        next_release=following[0] if following else None,
        next_window_start=following[1] if following else None,
        choices=tuple((platform.slug, platform.name) for platform, free in open_now if free > 0),
        default_platform=default, open_month=max(starts).replace(day=1) if starts else None)


# -- what is left -------------------------------------------------------------

@dataclass(frozen=True)
class PoolSummary:
    pool_id: int
    library: str
    platform: str
    valid_from: date
    valid_until: date
    total: int
    issued: int
    void: int
    left: int
    expired: int
    source_filename: str
    imported_at: datetime

    def as_json(self) -> dict:
        data = dict(self.__dict__)
        for key in ("valid_from", "valid_until", "imported_at"):
            data[key] = data[key].isoformat()
        return data


def pool_summaries(session: Session, now: datetime, library_id: int | None = None) -> list[PoolSummary]:
    """Counts per pool. Codes not issued by the end of the window are expired:
    derived from today's date, never stored, so no nightly job can be missed."""
    counts = (
        select(
            Code.pool_id,
            func.sum(case((Code.status == CodeStatus.AVAILABLE.value, 1), else_=0)).label("available"),
            func.sum(case((Code.status == CodeStatus.ISSUED.value, 1), else_=0)).label("issued"),
            func.sum(case((Code.status == CodeStatus.VOID.value, 1), else_=0)).label("void"),
        )
        .group_by(Code.pool_id)
        .subquery()
    )
    query = (
        select(Pool, Library, Platform, counts.c.available, counts.c.issued, counts.c.void)
        .join(Library, Pool.library_id == Library.id)
        .join(Platform, Pool.platform_id == Platform.id)
        .join(counts, counts.c.pool_id == Pool.id)
        .order_by(Library.slug, Pool.valid_from, Pool.imported_at, Pool.id)
    )
    if library_id is not None:
        query = query.where(Pool.library_id == library_id)
    summaries = []
    for pool, library, platform, available, issued, void in session.execute(query):
        over = local_day(now, library.timezone) > pool.valid_until
        summaries.append(PoolSummary(
            pool_id=pool.id,
            library=library.slug,
            platform=platform.slug,
            valid_from=pool.valid_from,
            valid_until=pool.valid_until,
            total=pool.code_count,
            issued=int(issued),
            void=int(void),
            left=0 if over else int(available),
            expired=int(available) if over else 0,
            source_filename=pool.source_filename,
            imported_at=pool.imported_at,
        ))
    return summaries
