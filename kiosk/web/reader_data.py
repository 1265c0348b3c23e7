"""A reader's data (GDPR art. 15) for the library's staff, desk and admins alike:
the card number comes by POST only (never in a URL, so never in an access log),
the report is shown in the page, printed from it or downloaded as JSON (a POST
too), and every lookup is logged without the card (kiosk.domain.reader_data)."""
from __future__ import annotations

import json

from flask import Blueprint, make_response, request

from kiosk.app.units import pepper, write
from kiosk.domain.clock import local_day, utcnow
from kiosk.domain.reader_data import look_up
from kiosk.domain.refusals import Refused
from kiosk.storage.database import DatabaseBusy
from kiosk.storage.models import Library
from kiosk.web.access import DESK_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.fragments import render_part
from kiosk.wording import reader_data as words
from kiosk.wording.messages import describe_refusal

bp = Blueprint("reader_data", __name__, url_prefix="/desk")


def _render(library: Library, status: int = 200, **context):
    return render_part("desk/_reader_data.html", "desk/reader_data.html", status, library=library, words=words,
                       **context)


def _looked_up(library: Library, form: str):
    """(the report, None) or (None, the refusal's answer)."""
    card, actor, library_id = request.form.get("card", ""), staff_actor(), library.id
    try:
        return write(lambda s: look_up(s, library_id=library_id, card=card, pepper=pepper(), actor=actor,
                                       now=utcnow(), form=form)), None
    except Refused as refused:
        return None, _render(library, 400, error=describe_refusal(refused))
    except DatabaseBusy:
        return None, _render(library, 503, busy=True)


@bp.get("/<slug>/reader-data")
@login_required(*DESK_ROLES)
def page(slug: str):
    return _render(library_in_scope(slug))


@bp.post("/<slug>/reader-data")
@login_required(*DESK_ROLES)
def report(slug: str):
    library = library_in_scope(slug)
    data, refused = _looked_up(library, "page")
    if refused is not None:
        return refused
    # The card stays in the page only inside the download's form, so JSON comes by POST too.
    return _render(library, data=data, card=request.form.get("card", ""))


@bp.post("/<slug>/reader-data.json")
@login_required(*DESK_ROLES)
def download(slug: str):
    library = library_in_scope(slug)
    data, refused = _looked_up(library, "json")
    if refused is not None:
        return refused
    response = make_response(json.dumps(words.as_json(data), ensure_ascii=False, indent=2))
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    day = local_day(data.generated_at, library.timezone).isoformat()
    response.headers["Content-Disposition"] = (
        f'attachment; filename="dane-czytelnika-{library.slug}-{data.reader_key[:8]}-{day}.json"')
    return response
