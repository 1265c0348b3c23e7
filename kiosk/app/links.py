"""Absolute links (a kiosk's enrolment link, a QR code of it) come from the
configuration, never from the request's Host header, which anyone can forge."""
from __future__ import annotations

from flask import current_app


def public_url(path: str) -> str:
    return current_app.config["KIOSK_BASE_URL"].rstrip("/") + "/" + path.lstrip("/")


def enrol_url(token: str) -> str:
    return public_url(f"/kiosk/enrol/{token}")
