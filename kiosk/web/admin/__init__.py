"""The admin panel, one module per area: a library's dashboard, imports, activations,
reports and event log, kiosks, users, settings, rules and closed days; the consortium's
overview. Every URL names its library and is scoped to the signed-in admin."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The areas add their routes to bp.
from kiosk.web.admin import (  # noqa: E402,F401
    activations, api_keys, closed_days, consortium, dashboard, events, imports, kiosks, library_system, mail,
    reports, rules, settings, users)
