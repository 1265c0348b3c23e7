"""The last codes of a pool on PostgreSQL, where parallel issuers skip the codes
others hold: a reader is told "no codes left" only when none is left, not while
another issuer holds the last one and may yet give it back; and a reader served
meanwhile by their own double press hears "reprint", not "no codes left"."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from datetime import date

from helpers import codes, make_library, make_pool, warsaw
from kiosk.app.extensions import db
from kiosk.domain.actors import Actor
from kiosk.domain.issuing import Outcome, claim_code, issue_code
from kiosk.storage.database import configure_engine, run_in_transaction
from kiosk.storage.models import Channel, Code, CodeStatus, Issuance, Pool

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgresql"], indirect=True)]
AT = warsaw(2020, 1, 5, 9)
JANUARY_2020 = (date(2020, 1, 1), date(2020, 1, 31))


@pytest.fixture
def holder(app):
    """A session of its own, as another issuer's; ended whatever the test found, so
    a failing test never leaves locks behind for the next."""
    session = own_session(app)
    yield session
    session.rollback()
    session.close()
    session.bind.dispose()


def own_session(app) -> Session:
    return Session(configure_engine(create_engine(app.config["SQLALCHEMY_DATABASE_URI"])))


def issue_in_own_session(app, card: str, found: dict) -> threading.Thread:
    def work():
        session = own_session(app)
        try:
            found[card] = run_in_transaction(session, lambda s: issue_code(
                s, library_slug="lib", card_number=card, channel=Channel.ONLINE, actor=Actor.online(), now=AT,
                pepper=app.config["READER_PEPPER"]), late_lock=True)
        finally:
            session.close()
            session.bind.dispose()
    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_a_code_given_back_by_a_holder_goes_to_the_reader_who_waited(app, holder):
    make_pool(make_library(), codes("JAN", 1), JANUARY_2020)
    pool_id = db.session.scalar(select(Pool.id))
    db.session.commit()
    assert claim_code(holder, [pool_id]) is not None  # the last code held, its transaction open

    found: dict = {}
    waiting = issue_in_own_session(app, "20002000", found)
    time.sleep(0.5)
    assert waiting.is_alive(), found  # not told "no codes left" while the code may come back
    holder.rollback()  # e.g. the holder's reader was refused after all
    waiting.join(timeout=30)

    assert found["20002000"].outcome is Outcome.ISSUED
    assert db.session.scalar(select(func.count()).select_from(Code).where(
        Code.status == CodeStatus.AVAILABLE.value)) == 0


def test_when_the_holder_keeps_the_last_code_the_waiting_reader_hears_no_codes_left(app, holder):
    make_pool(make_library(), codes("JAN", 2), JANUARY_2020)
    db.session.commit()
    found: dict = {}
    issue_in_own_session(app, "10001000", found).join(timeout=30)
    holding = {}

    def hold():
        holding["result"] = issue_code(holder, library_slug="lib", card_number="30003000", channel=Channel.KIOSK,
                                       actor=Actor.system("kiosk"), now=AT, pepper=app.config["READER_PEPPER"])
    hold()
    waiting = issue_in_own_session(app, "40004000", found)
    time.sleep(0.5)
    assert waiting.is_alive()
    holder.commit()
    waiting.join(timeout=30)

    assert holding["result"].outcome is Outcome.ISSUED
    assert found["40004000"].outcome is Outcome.NO_CODES_LEFT


def test_a_double_press_on_the_last_code_is_a_reprint_not_no_codes_left(app, holder):
    make_pool(make_library(), codes("JAN", 1), JANUARY_2020)
    db.session.commit()
    first = holder
    result = issue_code(first, library_slug="lib", card_number="50005000", channel=Channel.ONLINE,
                        actor=Actor.online(), now=AT, pepper=app.config["READER_PEPPER"])
    assert result.outcome is Outcome.ISSUED  # not committed yet: the second press comes now

    found: dict = {}
    second = issue_in_own_session(app, "50005000", found)
    time.sleep(0.5)
    first.commit()
    second.join(timeout=30)

    assert found["50005000"].outcome is Outcome.REPRINT
    assert found["50005000"].code == result.code
    assert db.session.scalar(select(func.count(Issuance.id))) == 1
