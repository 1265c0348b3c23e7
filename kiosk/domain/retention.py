"""Retention: what identifies a reader is kept for the consortium's number of months
(consortium.retention_months, 24 by default) and then removed, while the monthly
figures the reports give stay the same (`kiosk purge`, and the server once a day).

The cut-off is the first day of the month `months` months before this one (Europe/
Warsaw). Before it:
- an issuance loses its card hint and staff's note, and its reader key becomes
  "purged:<id>", the id of the reader's first issuance of that library in that
  month (the month the report counts it in): "readers, no repeats" of every month
  stays what it was, and no reader can be followed from one month to the next. A
  reader's issuances of a month are purged together, once every one of their
  windows has ended before the cut-off (a code of the next window handed out early
  waits for the next month's purge);
- an event loses the details that name a person (an address, a void's reason);
- a code of a pool that ended loses staff's reason for withdrawing it;
- messages sent or given up (the reader's e-mail address), library systems'
  idempotent answers (their bodies) and counted attempts (cards, addresses) go.
The card register (card_records) is today's data, replaced by each import: never
by age. The events' kinds, times and ids, the codes, pools and issuances stay, so
every count of the reports (kiosk.domain.report_figures) is unchanged.

What it means for the rules: a reader whose every code is older than the cut-off
has no earlier code any more, so counts as a first-timer again (the reserve for
readers never served becomes "not served within the kept months"). The shortest
retention allowed is the longest look-back of a rule (the wait after a code never
activated, up to 24 months), so no other decision changes."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, bindparam, cast, delete, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.clock import DEFAULT_TIMEZONE, add_months, local_day
from kiosk.domain.consortium import consortium_row
from kiosk.domain.events import EventKind, insert_event
from kiosk.domain.settings import DEFAULT_RETENTION, check_retention_months
from kiosk.storage.database import lock_for_transaction, run_and_roll_back, run_in_transaction
from kiosk.storage.models import Code, Event, Issuance, Library, LimitHit, Pool
from kiosk.storage.remote import IdempotentAnswer, OutboxMessage

PURGED = "purged:"  # a reader key that is no key: never a 64-digit hex HMAC
ACTOR = Actor.system("retention")
# Details of an event that name a person, whatever the event (login: the address
# signed in from); and free text staff typed, by the kind of event.
PERSONAL_DETAILS = ("address", "card", "card_hint", "email", "note", "reader_key", "to_address")
FREE_TEXT = {EventKind.VOID.value: ("reason",)}


@dataclass(frozen=True)
class Purged:
    """What a purge removed (or, in a dry run, would remove)."""

    months: int
    cut_off: date
    issuances: int  # reader key, card hint and note removed
    events: int  # personal details removed
    void_reasons: int
    outbox: int  # messages deleted
    api_answers: int  # idempotent answers deleted
    limit_hits: int  # counted attempts deleted

    @property
    def total(self) -> int:
        return (self.issuances + self.events + self.void_reasons + self.outbox + self.api_answers
                + self.limit_hits)

    def counts(self) -> dict[str, int]:
        return {key: value for key, value in asdict(self).items() if key not in ("months", "cut_off")}


def cut_off_day(months: int, now: datetime) -> date:
    """The first day of the month `months` months before this one (Warsaw)."""
    return add_months(local_day(now).replace(day=1), -months)


def _midnight(day: date, tz_name: str = DEFAULT_TIMEZONE) -> datetime:
    return datetime.combine(day, time.min, ZoneInfo(tz_name)).astimezone(timezone.utc)


def kept_months(session: Session) -> int:
    """The consortium's setting (24 when no row exists yet)."""
    row = consortium_row(session)
    return row.retention_months if row is not None else DEFAULT_RETENTION


def purge(session: Session, *, months: int, now: datetime, actor: Actor = ACTOR,
          once_a_day: bool = False) -> Purged | None:
    """Removes what identifies readers before the cut-off, and logs a `purge` event
    with the counts, in the caller's unit of work. SettingsRefused for months below
    the shortest safe retention. With once_a_day (the server's daily run), None when
    a purge was logged today already: several processes may try, one purges."""
    months = check_retention_months(months)
    lock_for_transaction(session, "retention")  # PostgreSQL; SQLite's writers queue anyway
    if once_a_day and _purged_today(session, now):
        return None
    cut = cut_off_day(months, now)
    moment = _midnight(cut)
    done = Purged(months=months, cut_off=cut, issuances=_issuances(session, cut),
                  events=_events(session, moment), void_reasons=_void_reasons(session, cut),
                  # Also one never sent (mail not set up): its code expired long ago, and the
                  # reader's address must not outlive the retention.
                  outbox=_deleted(session, delete(OutboxMessage).where(OutboxMessage.created_at < moment)),
                  api_answers=_deleted(session, delete(IdempotentAnswer).where(IdempotentAnswer.created_at < moment)),
                  limit_hits=_deleted(session, delete(LimitHit).where(LimitHit.at < moment)))
    insert_event(session, kind=EventKind.PURGE, actor=actor, now=now, months=months, cut_off=cut, **done.counts())
    return done


def run_purge(session: Session, *, months: int, now: datetime, actor: Actor = ACTOR, dry_run: bool = False,
              once_a_day: bool = False) -> Purged | None:
    """purge() in a unit of work of its own, committed; with dry_run the same work
    rolled back: the same counts, nothing written."""
    run = run_and_roll_back if dry_run else run_in_transaction
    return run(session, lambda s: purge(s, months=months, now=now, actor=actor, once_a_day=once_a_day))


def _purged_today(session: Session, now: datetime) -> bool:
    return bool(session.scalar(select(exists().where(Event.kind == EventKind.PURGE.value,
                                                     Event.at >= _midnight(local_day(now))))))


def _deleted(session: Session, statement) -> int:
    return session.execute(statement, execution_options={"synchronize_session": False}).rowcount


# -- issuances: month by month, as the reports count them -------------------------

def _unpurged():
    return Issuance.reader_key.not_like(f"{PURGED}%")


def _issuances(session: Session, cut: date) -> int:
    """Per time zone of the libraries (Warsaw, nearly always), month by month from
    the oldest issuance not yet purged: one UPDATE a month."""
    zones: dict[str, list[int]] = {}
    for library_id, tz_name in session.execute(select(Library.id, Library.timezone)):
        zones.setdefault(tz_name, []).append(library_id)
    changed = 0
    for tz_name, library_ids in zones.items():
        end = _midnight(cut, tz_name)
        oldest = session.scalar(select(func.min(Issuance.issued_at)).where(
            Issuance.library_id.in_(library_ids), Issuance.issued_at < end, _unpurged()))
        if oldest is None:
            continue
        month = local_day(oldest, tz_name).replace(day=1)
        while month < cut:
            following = add_months(month, 1)
            changed += _purge_month(session, library_ids, _midnight(month, tz_name), _midnight(following, tz_name),
                                    cut)
            month = following
    return changed


def _purge_month(session: Session, library_ids: list[int], start: datetime, end: datetime, cut: date) -> int:
    """One report month: each reader's issuances (per library) get one pseudonym,
    the id of the first of them, when all of their windows ended before the cut-off."""
    reader = (Issuance.library_id, Issuance.reader_key)
    month = (select(Issuance.id, func.min(Issuance.id).over(partition_by=reader).label("first_id"),
                    func.max(Issuance.window_end).over(partition_by=reader).label("last_end"))
             .where(Issuance.library_id.in_(library_ids), Issuance.issued_at >= start, Issuance.issued_at < end,
                    _unpurged())
             .subquery())
    statement = (update(Issuance)
                 .where(Issuance.id == month.c.id, month.c.last_end < cut)
                 .values(reader_key=literal(PURGED) + cast(month.c.first_id, String), card_hint=None, note=None))
    return _deleted(session, statement)


# -- the log and the codes -------------------------------------------------------

def _events(session: Session, moment: datetime) -> int:
    """Events before the cut-off whose details name a person, rewritten without
    those keys (in Python, as record_event writes them: the log's look-up by code
    reads that form). Few rows: sign-ins and voids."""
    named = [Event.details.like(f'%"{key}":%') for key in PERSONAL_DETAILS]
    named += [and_(Event.kind == kind, Event.details.like(f'%"{key}":%'))
              for kind, keys in FREE_TEXT.items() for key in keys]
    rows = session.execute(select(Event.id, Event.kind, Event.details).where(Event.at < moment, or_(*named))).all()
    changes = []
    for event_id, kind, details in rows:
        try:
            data = json.loads(details or "{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            changes.append({"row_id": event_id, "new": "{}"})
            continue
        dropped = set(PERSONAL_DETAILS) | set(FREE_TEXT.get(kind, ()))
        if dropped & data.keys():
            kept = {key: value for key, value in data.items() if key not in dropped}
            changes.append({"row_id": event_id, "new": json.dumps(kept, ensure_ascii=False, sort_keys=True)})
    if changes:
        table = Event.__table__
        session.connection().execute(update(table).where(table.c.id == bindparam("row_id"))
                                     .values(details=bindparam("new")), changes)
    return len(changes)


def _void_reasons(session: Session, cut: date) -> int:
    ended = select(Pool.id).where(Pool.valid_until < cut)
    return _deleted(session, update(Code).where(Code.void_reason.is_not(None), Code.pool_id.in_(ended))
                    .values(void_reason=None))
