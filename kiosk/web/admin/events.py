"""The event log, filtered by what, who, from, to and code, a page of 200 at a
time; a library's own, and the consortium's (what belongs to no library: sign-ins,
consortium settings)."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import abort, request, url_for

from kiosk.app.extensions import db
from kiosk.domain.clock import DEFAULT_TIMEZONE, parse_iso_day
from kiosk.domain.events import LogFilters, LogRow, event_log
from kiosk.storage.models import Library, Role
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required
from kiosk.web.admin import bp
from kiosk.web.admin.common import page
from kiosk.wording.names import channel_name
from kiosk.wording.slips import slip_id

FILTERS = ("kind", "who", "from", "to", "code")
ID_KEYS = ("issuance_id", "replaces_issuance_id", "code_id")  # shown as the code and the slip instead


@bp.get("/<slug>/events")
@login_required(*ADMIN_ROLES)
def events(slug: str):
    library = library_in_scope(slug)
    return _events_page(library)


@bp.get("/events")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_events():
    return _events_page(None)


def _events_page(library: Library | None):
    args = {key: request.args.get(key, "").strip() for key in FILTERS}
    try:
        filters = LogFilters(kind=args["kind"], who=args["who"], code=args["code"],
                             since=_day_start(parse_iso_day(args["from"])) if args["from"] else None,
                             until=_day_start(parse_iso_day(args["to"]), plus_days=1) if args["to"] else None)
        number = int(request.args.get("page", "1") or 1)
    except ValueError:
        abort(400)
    if not 1 <= number <= 100_000:
        abort(400)
    log = event_log(db.session, library_id=library.id if library else None, filters=filters, page=number)
    kept = {key: value for key, value in args.items() if value}  # the filters stay on the older/newer links
    if library is not None:
        kept["slug"] = library.slug
    endpoint = "admin.events" if library else "admin.consortium_events"
    newer = url_for(endpoint, page=log.page - 1, **kept) if log.has_newer else None
    older = url_for(endpoint, page=log.page + 1, **kept) if log.has_older else None
    return page("admin/events.html", library=library, log=log, details=_details, filters=args, newer=newer,
                older=older)


def _day_start(day: date, plus_days: int = 0) -> datetime:
    """Midnight in Warsaw that begins the day (the log's filter dates are local)."""
    return datetime.combine(day + timedelta(days=plus_days), datetime.min.time(), ZoneInfo(DEFAULT_TIMEZONE))


def _details(row: LogRow) -> str:
    """The details as staff read them: the code and the slip number, not ids."""
    data, parts = row.details, []
    if "issuance_id" in data and isinstance(data["issuance_id"], int):
        parts.append(f"{row.codes.get('issuance_id', '?')} ({slip_id(data['issuance_id'])})")
    elif "code_id" in data:
        parts.append(row.codes.get("code_id", "?"))
    if isinstance(data.get("replaces_issuance_id"), int):
        parts.append("← " + f"{row.codes.get('replaces_issuance_id', '?')} "
                            f"({slip_id(data['replaces_issuance_id'])})")
    for key, value in data.items():
        if key in ID_KEYS:
            continue
        parts.append(f"{key}: {channel_name(value) if key == 'channel' else value}")
    return ", ".join(parts)
