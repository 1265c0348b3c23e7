"""A library's dashboard: its pools, issues per day, alerts."""
from __future__ import annotations

from kiosk.app.extensions import db
from kiosk.domain.alerts import library_alerts
from kiosk.domain.clock import utcnow
from kiosk.domain.dashboard import dashboard_for
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required
from kiosk.web.admin import bp
from kiosk.web.admin.common import page


@bp.get("/<slug>/")
@login_required(*ADMIN_ROLES)
def dashboard(slug: str):
    library = library_in_scope(slug)
    return page("admin/dashboard.html", library=library, board=dashboard_for(db.session, library, utcnow()),
                alerts=library_alerts(db.session, library, utcnow()))
