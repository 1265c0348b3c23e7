"""The unit of work inside the app: every write of a request or a command runs
through write(), in a transaction of its own on the app's session."""
from __future__ import annotations

from typing import Callable, TypeVar

from flask import current_app, g
from sqlalchemy.orm import Session

from kiosk.app.extensions import db
from kiosk.domain.snapshot import Snapshot, last_snapshot, snapshot
from kiosk.storage.database import run_in_transaction

T = TypeVar("T")


def write(work: Callable[[Session], T], *, late_lock: bool = False) -> T:
    """work(session) in one transaction, committed; retried after a lost race or
    a busy database (DatabaseBusy when it stays busy). The request's reads before
    it end first; objects read before are reloaded on their next use. late_lock:
    work takes SQLite's write lock itself (issuing: kiosk.domain.issuing)."""
    return run_in_transaction(db.session, work, late_lock=late_lock)


def settings(asked_again_later: bool = False) -> Snapshot:
    """The settings the issuing path reads (kiosk.domain.snapshot), looked up once
    per request. asked_again_later: the request's unit of work reads them again in
    its own transaction, so the process's last copy will do until then."""
    if "settings_snapshot" not in g:
        if asked_again_later:
            return last_snapshot(db.session)
        g.settings_snapshot = snapshot(db.session)
    return g.settings_snapshot


def pepper() -> str:
    return current_app.config["READER_PEPPER"]
