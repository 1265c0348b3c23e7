"""A library's monthly XLSX report."""
from __future__ import annotations

from flask import make_response

from kiosk.app.extensions import db
from kiosk.domain.clock import utcnow
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required
from kiosk.web.admin import bp
from kiosk.web.admin.common import month_arg

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(data: bytes, filename: str):
    response = make_response(data)
    response.headers["Content-Type"] = XLSX
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/<slug>/report.xlsx")
@login_required(*ADMIN_ROLES)
def report(slug: str):
    library = library_in_scope(slug)
    first, _last = month_arg()
    from kiosk.domain.reports import monthly_report  # openpyxl: loaded by the first report, not by every worker

    data = monthly_report(db.session, year=first.year, month=first.month, library_ids=[library.id], now=utcnow())
    return xlsx_response(data, f"kodomat-{library.slug}-{first:%Y-%m}.xlsx")
