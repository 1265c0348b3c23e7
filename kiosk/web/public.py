"""The start page and a health check."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from kiosk.domain.clock import format_date, local_day, utcnow
from kiosk.app.extensions import db

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    # Anyone may open this page: it says where to go, and shows no library's numbers.
    return render_template("index.html", today=local_day(utcnow()), format_date=format_date)


@bp.get("/healthz")
def health():
    try:
        try:
            db.session.execute(text("SELECT 1"))
        except OperationalError as error:
            if not error.connection_invalidated:
                raise
            db.session.rollback()  # a connection the server closed (no ping per checkout): once more
            db.session.execute(text("SELECT 1"))
    except Exception:  # the answer itself is the diagnosis; details go to the log
        current_app.logger.exception("health check: database unreachable")
        return {"status": "database unreachable"}, 503
    return {"status": "ok"}
