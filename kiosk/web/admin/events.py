"""The event log, filtered by what, who, from and to; a library's own, and the
consortium's (what belongs to no library: sign-ins, consortium settings)."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import abort, request
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.domain.clock import DEFAULT_TIMEZONE, parse_iso_day
from kiosk.storage.models import Event, Library, Role
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required
from kiosk.web.admin import bp
from kiosk.web.admin.common import page

EVENTS_PAGE = 200


@bp.get("/<slug>/events")
@login_required(*ADMIN_ROLES)
def events(slug: str):
    library = library_in_scope(slug)
    return _events_page(Event.library_id == library.id, library=library)


@bp.get("/events")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_events():
    return _events_page(Event.library_id.is_(None), library=None)


def _events_page(scope, library: Library | None):
    query = select(Event).where(scope)
    kind, who = request.args.get("kind", "").strip(), request.args.get("who", "").strip()
    since, until = request.args.get("from", "").strip(), request.args.get("to", "").strip()
    if kind:
        query = query.where(Event.kind == kind)
    if who:
        query = query.where(Event.actor.contains(who))
    try:
        if since:
            query = query.where(Event.at >= _day_start(parse_iso_day(since)))
        if until:
            query = query.where(Event.at < _day_start(parse_iso_day(until), plus_days=1))
    except ValueError:
        abort(400)
    rows = db.session.scalars(query.order_by(Event.at.desc(), Event.id.desc()).limit(EVENTS_PAGE)).all()
    kinds = db.session.scalars(select(Event.kind).where(scope).distinct()).all()
    return page("admin/events.html", library=library, rows=rows, kinds=sorted(kinds), details=_details,
                filters={"kind": kind, "who": who, "from": since, "to": until})


def _day_start(day: date, plus_days: int = 0) -> datetime:
    """Midnight in Warsaw that begins the day (the log's filter dates are local)."""
    return datetime.combine(day + timedelta(days=plus_days), datetime.min.time(), ZoneInfo(DEFAULT_TIMEZONE))


def _details(event: Event) -> str:
    data = json.loads(event.details or "{}")
    return ", ".join(f"{key}: {value}" for key, value in data.items())
