"""A library's closed days besides weekends and public holidays: the coming ones,
add and remove; and the first working day of each of the coming 12 months, with
what moved it, so the admin sees what a closed day changes."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.domain.clock import format_date, format_moment, local_day, utcnow
from kiosk.domain.refusals import Refused
from kiosk.domain.rules import release_moment, rules_for
from kiosk.domain.working_days import (add_closed_day, closed_days as closed_days_of, month_starts,
                                       parse_closed_day, remove_closed_day)
from kiosk.storage.models import Library
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.fragments import is_fragment_request, render_part
from kiosk.wording.days import holiday_name, weekday_name, why_moved
from kiosk.wording.messages import describe_refusal
from kiosk.wording.slips import month_name

MONTHS_SHOWN = 12


def _calendar(library: Library, notice: str | None = None, error: str | None = None, status: int = 200):
    """The list and the months for htmx; the whole page around them otherwise."""
    today = local_day(utcnow(), library.timezone)
    closed = closed_days_of(db.session, library.id)
    starts = month_starts(today, MONTHS_SHOWN + 1, closed)
    if starts[0].day < today:  # this month's first working day is behind us
        starts = starts[1:]
    rules = rules_for(db.session, library.id)
    releases = {start.month: format_moment(release_moment(rules, start.month, closed, library.timezone),
                                           library.timezone) for start in starts[:MONTHS_SHOWN]}
    return render_part("admin/_closed_days.html", "admin/closed_days.html", status, library=library,
                       upcoming=sorted(day for day in closed if day >= today), starts=starts[:MONTHS_SHOWN],
                       releases=releases, notice=notice, error=error, format_date=format_date,
                       weekday_name=weekday_name, holiday_name=holiday_name, why_moved=why_moved,
                       month_name=month_name)


@bp.get("/<slug>/closed-days")
@login_required(*ADMIN_ROLES)
def closed_days(slug: str):
    return _calendar(library_in_scope(slug))


@bp.post("/<slug>/closed-days")
@login_required(*ADMIN_ROLES)
def closed_day_add(slug: str):
    return _change(library_in_scope(slug), add_closed_day,
                   lambda day: _("Dodano dzień zamknięcia %(day)s.", day=format_date(day)))


@bp.post("/<slug>/closed-days/remove")
@login_required(*ADMIN_ROLES)
def closed_day_remove(slug: str):
    return _change(library_in_scope(slug), remove_closed_day,
                   lambda day: _("Usunięto dzień zamknięcia %(day)s.", day=format_date(day)))


def _change(library: Library, change, done):
    library_id, actor = library.id, staff_actor()
    try:
        day = parse_closed_day(request.form.get("day", ""))
        write(lambda s: change(s, library_id, day, actor, utcnow()))
    except Refused as refused:
        return _calendar(library, error=describe_refusal(refused), status=400)
    notice = done(day)
    if is_fragment_request():
        return _calendar(library, notice=notice)
    flash(notice)  # without JavaScript: post, redirect, get
    return redirect(url_for("admin.closed_days", slug=library.slug))
