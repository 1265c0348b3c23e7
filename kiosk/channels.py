"""Issuing from inside the app (kiosk, desk, API, CLI): the domain's issue_code with
this app's engine, pepper and clock."""
from __future__ import annotations

from flask import current_app

from kiosk.clock import utcnow
from kiosk.extensions import db
from kiosk.issuing import Actor, IssueResult, issue_code, replace_code
from kiosk.models import Channel


def issue_now(library_slug: str, card_number: str, channel: Channel, actor: Actor,
              platform_slug: str = "legimi", note: str | None = None) -> IssueResult:
    # issue_code works in its own transaction. End the request's read transaction
    # first: on SQLite (WAL) it would keep reading the moment before the issue.
    db.session.commit()
    return issue_code(db.engine, library_slug=library_slug, card_number=card_number, channel=channel,
                      actor=actor, now=utcnow(), pepper=current_app.config["READER_PEPPER"],
                      platform_slug=platform_slug, note=note)


def replace_now(library_id: int, issuance_id: int, reason: str, actor: Actor) -> IssueResult:
    db.session.commit()  # as above: let replace_code's own transaction take the lock
    return replace_code(db.engine, library_id=library_id, issuance_id=issuance_id, reason=reason,
                        actor=actor, now=utcnow())
