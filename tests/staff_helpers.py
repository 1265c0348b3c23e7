"""Signing staff in through the real login form, and posting forms with their token."""
from __future__ import annotations

import re

from kiosk.accounts import create_user
from kiosk.clock import utcnow
from kiosk.extensions import db

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_of(client, url: str = "/login") -> str:
    return TOKEN.search(client.get(url).get_data(as_text=True)).group(1)


def post(client, url: str, data: dict | None = None, token_from: str = "/login", **kwargs):
    return client.post(url, data={**(data or {}), "csrf_token": token_of(client, token_from)}, **kwargs)


def login(client, username: str, password: str):
    return post(client, "/login", {"username": username, "password": password})


def signed_in(app, role: str, library=None, username: str | None = None):
    """A test client signed in as a new user of that role (and library)."""
    name = username or f"{role.replace('_', '-')}-{library.slug if library else 'all'}"
    user, password = create_user(db.session, username=name, role=role,
                                 library_id=library.id if library else None, actor="test", now=utcnow())
    client = app.test_client()
    assert login(client, name, password).status_code == 302
    return client, user, password
