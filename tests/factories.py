"""Builders for test data: libraries, panel files, pools, and issuing at a moment."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import func, select

from kiosk import create_app
from kiosk.extensions import db
from kiosk.issuing import Actor, IssueResult, issue_code
from kiosk.libraries import add_library
from kiosk.models import Channel, Code, Event, Library, Platform, Pool
from kiosk.pools import import_pool

WARSAW = ZoneInfo("Europe/Warsaw")


class IsolatedClient(FlaskClient):
    """Each request in an app context of its own, as in production: the test keeps
    one pushed for its own queries, and requests must not share its `g`."""

    def open(self, *args, **kwargs):
        db.session.commit()  # the test's own transaction must not hold SQLite's lock
        with self.application.app_context():
            return super().open(*args, **kwargs)


def make_app(url: str, instance: Path):
    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": url,
        "READER_PEPPER": "test-pepper",
        "SECRET_KEY": "test-secret",
    })
    app.test_client_class = IsolatedClient
    return app


def warsaw(*args) -> datetime:
    """A moment given in Warsaw wall-clock time."""
    return datetime(*args, tzinfo=WARSAW)


def make_library(slug: str = "lib", **settings) -> Library:
    return add_library(db.session, slug=slug, name=f"Biblioteka {slug}", actor="test",
                       now=warsaw(2020, 1, 1, 8), **settings)


def legimi() -> Platform:
    return db.session.scalar(select(Platform).where(Platform.slug == "legimi"))


def codes(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:06d}" for n in range(1, count + 1)]


def xlsx_file(rows: list[list]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xls_file(rows: list[list]) -> bytes:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Kody")
    date_style = xlwt.easyxf(num_format_str="DD.MM.YYYY")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, date):
                sheet.write(r, c, datetime(value.year, value.month, value.day), date_style)
            else:
                sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_file(rows: list[list], delimiter: str = ";", encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode(encoding)


def panel_file(values: list[str], window: tuple[date, date] | None = None) -> bytes:
    """An XLSX like the panel's export: a 'Kod' column, the window where given."""
    if window is None:
        return xlsx_file([["Kod"]] + [[v] for v in values])
    return xlsx_file([["Kod", "Ważny od", "Ważny do"]] + [[v, *window] for v in values])


def make_pool(library: Library, values: list[str], window: tuple[date, date],
              filename: str = "kody.xlsx", now: datetime | None = None) -> Pool:
    report = import_pool(db.session, library=library, platform=legimi(), data=panel_file(values),
                         filename=filename, window=window, actor="test",
                         now=now or datetime.combine(window[0], datetime.min.time(), WARSAW))
    return db.session.get(Pool, report.pool_id)


def issue(app, card: str, at: datetime, library: str = "lib",
          channel: Channel = Channel.KIOSK) -> IssueResult:
    db.session.commit()  # end the test's read snapshot, as a request would end
    return issue_code(db.engine, library_slug=library, card_number=card, channel=channel,
                      actor=Actor("test"), now=at, pepper=app.config["READER_PEPPER"])


def counts() -> dict[str, int]:
    """What is stored, to show a refused operation left nothing behind."""
    return {
        "pools": db.session.scalar(select(func.count()).select_from(Pool)),
        "codes": db.session.scalar(select(func.count()).select_from(Code)),
        "events": db.session.scalar(select(func.count()).select_from(Event)),
    }
