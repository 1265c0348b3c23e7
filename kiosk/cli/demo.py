"""A clearly marked demo library, so a newcomer can try Kodomat at once.

The demo pool goes through the same import as a real panel file; every step is a
unit of work of its own."""
from __future__ import annotations

import io
import secrets
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.accounts import create_user, reset_password
from kiosk.domain.actors import Actor
from kiosk.domain.clock import format_date, local_day, month_window
from kiosk.domain.kiosks import enrol_kiosk
from kiosk.domain.libraries import add_library
from kiosk.domain.pool_files import prepare_pool
from kiosk.domain.pools import import_pool
from kiosk.domain.settings import parse_new_library
from kiosk.storage.database import run_in_transaction
from kiosk.storage.models import Kiosk, Library, Platform, Role, StaffUser

DEMO_SLUG = "demo"
DEMO_NAME = "Biblioteka Demonstracyjna (DEMO)"
DEMO_ADMIN = "demo-admin"
DEMO_POOL_SIZE = 50
DEMO = Actor.system("demo")
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to read


def demo_pool_file(valid_from, valid_until, size: int = DEMO_POOL_SIZE) -> bytes:
    """An XLSX laid out like a panel export, with codes that say DEMO."""
    book = Workbook()
    sheet = book.active
    sheet.append(["Kod", "Ważny od", "Ważny do"])
    for _ in range(size):
        code = "DEMO" + "".join(secrets.choice(_ALPHABET) for _ in range(8))
        sheet.append([code, valid_from, valid_until])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def seed_demo(session: Session, *, instance: Path, now: datetime) -> str:
    if session.scalar(select(Library.id).limit(1)) is not None:
        return "Baza ma już biblioteki: nie dodaję danych demonstracyjnych."
    new = parse_new_library(slug=DEMO_SLUG, name=DEMO_NAME,
                            slip_header=f"{DEMO_NAME} — kody testowe, nie działają w Legimi")
    library_id = run_in_transaction(session, lambda s: add_library(s, new, actor=DEMO, now=now).id)
    today = local_day(now)
    data = demo_pool_file(*month_window(today.year, today.month))
    folder = instance / "demo"
    folder.mkdir(exist_ok=True)
    path = folder / f"demo-legimi-{today:%Y-%m}.xlsx"
    path.write_bytes(data)
    prepared = prepare_pool(data, path.name, None)
    legimi = session.scalar(select(Platform.id).where(Platform.slug == "legimi"))
    report = run_in_transaction(session, lambda s: import_pool(
        s, library_id=library_id, platform_id=legimi, prepared=prepared, actor=DEMO, now=now))
    return (f"Dodano bibliotekę demonstracyjną „{DEMO_SLUG}” z pulą {report.count} kodów DEMO "
            f"ważnych {format_date(report.valid_from)}–{format_date(report.valid_until)} "
            f"(plik {path}).\nSpróbuj: kiosk issue --library {DEMO_SLUG} --card 1234567890")


def _demo_library_id(session: Session) -> int | None:
    return session.scalar(select(Library.id).where(Library.slug == DEMO_SLUG))


def demo_admin_password(session: Session, *, now: datetime) -> str | None:
    """A fresh password for the demo library's admin account (made on first use),
    printed by `kiosk demo` so a newcomer can sign in (and must then choose their
    own); None without a demo library."""
    library_id = _demo_library_id(session)
    if library_id is None:
        return None

    def work(s: Session) -> str:
        user_id = s.scalar(select(StaffUser.id).where(StaffUser.username == DEMO_ADMIN))
        if user_id is None:
            return create_user(s, username=DEMO_ADMIN, role=Role.LIBRARY_ADMIN, library_id=library_id,
                               actor=DEMO, now=now, must_change_password=True)[1]
        return reset_password(s, user_id, DEMO, now)

    return run_in_transaction(session, work)


def demo_kiosk_link(session: Session, *, now: datetime) -> str | None:
    """A fresh one-time link for the demo library's kiosk, so a newcomer can open
    the kiosk at once; None when there is no demo library."""
    library_id = _demo_library_id(session)
    if library_id is None:
        return None
    kiosk_id = session.scalar(select(Kiosk.id).where(Kiosk.library_id == library_id).order_by(Kiosk.id).limit(1))
    return run_in_transaction(session, lambda s: enrol_kiosk(
        s, library_id=library_id, name="Kiosk demonstracyjny", actor=DEMO, now=now, kiosk_id=kiosk_id).token)
