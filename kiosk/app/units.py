"""The unit of work inside the app: every write of a request or a command runs
through write(), in a transaction of its own on the app's session."""
from __future__ import annotations

from typing import Callable, TypeVar

from flask import current_app
from sqlalchemy.orm import Session

from kiosk.app.extensions import db
from kiosk.storage.database import run_in_transaction

T = TypeVar("T")


def write(work: Callable[[Session], T]) -> T:
    """work(session) in one transaction, committed; retried after a lost race or
    a busy database (DatabaseBusy when it stays busy). The request's reads before
    it end first; objects read before are reloaded on their next use."""
    return run_in_transaction(db.session, work)


def pepper() -> str:
    return current_app.config["READER_PEPPER"]
