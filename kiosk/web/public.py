"""The start page and a health check."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, render_template
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from kiosk.domain.clock import format_date, local_day, utcnow
from kiosk.app.extensions import db
from kiosk.storage.migrations import code_schema_heads

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    # Anyone may open this page: it says where to go, and shows no library's numbers.
    return render_template("index.html", today=local_day(utcnow()), format_date=format_date)


@bp.get("/healthz")
def health():
    """For a load balancer, a monitor or a person: 200 when the database answers and
    its schema is this program's, else 503 saying which. Says nothing of any library."""
    backend = db.engine.dialect.name
    started = time.perf_counter()
    try:
        try:
            revisions = _schema_revisions()
        except OperationalError as error:
            if not error.connection_invalidated:
                raise
            db.session.rollback()  # a connection the server closed (no ping per checkout): once more
            revisions = _schema_revisions()
    except Exception:  # the answer itself is the diagnosis; details go to the log
        current_app.logger.exception("health check: database unreachable")
        db.session.rollback()
        return {"status": "database unreachable", "database": {"backend": backend, "reachable": False}}, 503
    database = {"backend": backend, "reachable": True, "ms": round((time.perf_counter() - started) * 1000, 1),
                "schema": sorted(revisions), "schema_expected": sorted(code_schema_heads())}
    if revisions != code_schema_heads():
        current_app.logger.error("health check: the database schema is %s, this program needs %s: "
                                 "run `kiosk db upgrade`", database["schema"], database["schema_expected"])
        return {"status": "database schema out of date", "database": database}, 503
    return {"status": "ok", "database": database}


def _schema_revisions() -> frozenset[str]:
    try:
        return frozenset(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        db.session.rollback()  # a read: nothing held after it (SQLite readers block a checkpoint)
