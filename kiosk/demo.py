"""A clearly marked demo library, so a newcomer can try Kodomat at once.

The demo pool goes through the same import as a real panel file."""
from __future__ import annotations

import io
import secrets
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.clock import format_date, local_day, month_window
from kiosk.libraries import add_library
from kiosk.kiosks import enrol_kiosk
from kiosk.models import Kiosk, Library, Platform
from kiosk.pools import import_pool

DEMO_SLUG = "demo"
DEMO_NAME = "Biblioteka Demonstracyjna (DEMO)"
DEMO_POOL_SIZE = 50
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
    if session.scalar(select(Library).limit(1)) is not None:
        return "Baza ma już biblioteki: nie dodaję danych demonstracyjnych."
    library = add_library(session, slug=DEMO_SLUG, name=DEMO_NAME, actor="demo", now=now,
                          slip_header=f"{DEMO_NAME} — kody testowe, nie działają w Legimi")
    today = local_day(now, library.timezone)
    window = month_window(today.year, today.month)
    data = demo_pool_file(*window)
    folder = instance / "demo"
    folder.mkdir(exist_ok=True)
    path = folder / f"demo-legimi-{today:%Y-%m}.xlsx"
    path.write_bytes(data)
    legimi = session.scalar(select(Platform).where(Platform.slug == "legimi"))
    report = import_pool(session, library=library, platform=legimi, data=data, filename=path.name,
                         window=None, actor="demo", now=now)
    return (f"Dodano bibliotekę demonstracyjną „{DEMO_SLUG}” z pulą {report.count} kodów DEMO "
            f"ważnych {format_date(report.valid_from)}–{format_date(report.valid_until)} "
            f"(plik {path}).\nSpróbuj: kiosk issue --library {DEMO_SLUG} --card 1234567890")


DEMO_ADMIN = "demo-admin"


def demo_admin_password(session: Session, *, now: datetime) -> str | None:
    """A fresh password for the demo library's admin account (made on first use),
    printed by `kiosk demo` so a newcomer can sign in; None without a demo library."""
    from werkzeug.security import generate_password_hash

    from kiosk.accounts import create_user, new_password
    from kiosk.models import Role, StaffUser

    library = session.scalar(select(Library).where(Library.slug == DEMO_SLUG))
    if library is None:
        return None
    user = session.scalar(select(StaffUser).where(StaffUser.username == DEMO_ADMIN))
    if user is None:
        return create_user(session, username=DEMO_ADMIN, role=Role.LIBRARY_ADMIN, library_id=library.id,
                           actor="demo", now=now)[1]
    password = new_password()
    user.password_hash, user.session_version = generate_password_hash(password), user.session_version + 1
    session.commit()
    return password


def demo_kiosk_link(session: Session, *, now: datetime) -> str | None:
    """A fresh one-time link for the demo library's kiosk, so a newcomer can open
    the kiosk at once; None when there is no demo library."""
    library = session.scalar(select(Library).where(Library.slug == DEMO_SLUG))
    if library is None:
        return None
    kiosk = session.scalar(select(Kiosk).where(Kiosk.library_id == library.id).order_by(Kiosk.id).limit(1))
    enrolment = enrol_kiosk(session, library=library, name="Kiosk demonstracyjny", actor="demo", now=now,
                            kiosk=kiosk)
    return enrolment.token
