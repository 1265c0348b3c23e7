"""Who got which code: lookups by card and by code, always within one library."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.domain.clock import local_day
from kiosk.domain.consortium import service_end
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.domain.reprints import IssuanceRefusal, refusal_for
from kiosk.storage.models import Code, Issuance, Kiosk, Library, Platform


@dataclass(frozen=True)
class IssuanceRow:
    issuance_id: int
    code: str
    platform: str
    window_start: date
    window_end: date
    issued_at: datetime
    channel: str
    actor: str
    print_count: int
    card_hint: str | None
    note: str | None
    voided_at: datetime | None
    void_reason: str | None
    # Why it may not be printed again nor replaced (kiosk.domain.reprints), if so.
    refusal: IssuanceRefusal | None
    kiosk_name: str | None = None  # the kiosk it came from, by the name staff gave it
    platform_slug: str | None = None

    @property
    def masked_card(self) -> str:
        return f"••••{self.card_hint}" if self.card_hint else "—"

    @property
    def live(self) -> bool:
        return self.voided_at is None

    @property
    def reprintable(self) -> bool:
        return self.refusal is None

    @property
    def state(self) -> str:
        """"valid", "withdrawn" or "expired" (its month is over, or the service)."""
        if self.voided_at is not None:
            return "withdrawn"
        return "valid" if self.refusal is None else "expired"


def _rows(session: Session, library: Library, now: datetime, *conditions) -> list[IssuanceRow]:
    today, ends = local_day(now, library.timezone), service_end(session)
    found = session.execute(
        select(Issuance, Code.value, Code.void_reason, Platform.name, Kiosk.name, Platform.slug)
        .join(Code, Issuance.code_id == Code.id)
        .join(Platform, Issuance.platform_id == Platform.id)
        .outerjoin(Kiosk, Issuance.kiosk_id == Kiosk.id)
        .where(Issuance.library_id == library.id, *conditions)
        .order_by(Issuance.window_start.desc(), Issuance.issued_at.desc())
    )
    return [IssuanceRow(i.id, value, platform, i.window_start, i.window_end, i.issued_at, i.channel,
                        i.actor, i.print_count, i.card_hint, i.note, i.voided_at, reason,
                        refusal_for(i, today, ends), kiosk, slug)
            for i, value, reason, platform, kiosk, slug in found]


def issuances_of_card(session: Session, library: Library, card: str, pepper: str,
                      now: datetime) -> list[IssuanceRow]:
    """Every code this reader got in this library, newest window first."""
    key = reader_key(pepper, normalise_card(card))
    return _rows(session, library, now, Issuance.reader_key == key)


SLIP_NUMBER = re.compile(r"S0*(\d{1,9})")


def _folded(text: str) -> str:
    return re.sub(r"[\s\-]+", "", text).upper()


def issuances_of_code(session: Session, library: Library, code: str, now: datetime) -> list[IssuanceRow]:
    """Who got this code, typed as staff type it: any case, with the slip's spaces or
    the panel's dashes; or a slip number such as S000042."""
    typed = _folded(code)
    slip = SLIP_NUMBER.fullmatch(typed)
    if slip:
        return _rows(session, library, now, Issuance.id == int(slip.group(1)))
    stored = func.upper(func.replace(func.replace(Code.value, " ", ""), "-", ""))
    return _rows(session, library, now, stored == typed)


def issuance_row(session: Session, library: Library, issuance_id: int, now: datetime) -> IssuanceRow | None:
    rows = _rows(session, library, now, Issuance.id == issuance_id)
    return rows[0] if rows else None
