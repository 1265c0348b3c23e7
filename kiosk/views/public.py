"""The start page and a health check. Kiosk, desk, admin and API come as their
own blueprints."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template
from sqlalchemy import select, text

from kiosk.clock import format_date, local_day, utcnow
from kiosk.extensions import db
from kiosk.models import Library
from kiosk.pools import pool_summaries

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    now = utcnow()
    libraries = db.session.scalars(select(Library).order_by(Library.name)).all()
    pools = [p for p in pool_summaries(db.session, now) if p.left or p.valid_until >= local_day(now)]
    return render_template("index.html", libraries=libraries, pools=pools, today=local_day(now),
                           format_date=format_date)


@bp.get("/healthz")
def health():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # the answer itself is the diagnosis; details go to the log
        current_app.logger.exception("health check: database unreachable")
        return {"status": "database unreachable"}, 503
    return {"status": "ok"}
