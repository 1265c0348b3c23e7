"""Races at the kiosk over real HTTP: gunicorn with several gthread workers on
127.0.0.1 serving the test's database, requests released together from threads.

- One card scanned at 16 kiosks at once (PostgreSQL): one issuance, and its
  print_count is the number of answers that showed the code: no count lost.
- 32 new cards at once from one kiosk: at most CODES_SHOWN.count codes handed out,
  every other answer the pause screen, no 5xx: parallel requests do not pass the pause.
"""
from __future__ import annotations

import re
import threading
import uuid

import pytest
from sqlalchemy import func, select

from helpers import codes, make_library, make_pool, this_month
from kiosk.app.extensions import db
from kiosk.domain.kiosks import CODES_SHOWN
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.storage.models import Issuance
from servers import Served

SLIP_CODE = re.compile(r'id="slip-code">([^<]*)<')


@pytest.fixture
def served(app, tmp_path):
    server = Served(app, tmp_path)
    yield server
    server.stop()


def at_once(jobs: list) -> list:
    """The callables run in threads released together; their results in order."""
    results: list = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(n: int) -> None:
        start.wait()
        try:
            results[n] = jobs[n]()
        except BaseException as exc:  # noqa: BLE001 - asserted on below
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def shown_code(page: str) -> str | None:
    match = SLIP_CODE.search(page)
    return re.sub(r"[\s-]", "", match[1]) if match else None


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_one_card_at_16_kiosks_at_once_counts_every_slip_shown(app, served):
    library = make_library()
    make_pool(library, codes("RACE", 20), this_month())
    kiosks = [served.enrolled(library) for _ in range(16)]

    for round_ in range(3):  # three cards, one after another; each at all 16 kiosks at once
        card = f"5{round_}{uuid.uuid4().int % 10**10:010d}"
        answers = at_once([lambda kiosk=kiosk: kiosk.scan(card) for kiosk in kiosks])

        assert not [a for a in answers if isinstance(a, BaseException)], answers
        db.session.rollback()  # see what the server wrote
        rows = db.session.execute(select(Issuance.print_count).where(
            Issuance.reader_key == reader_key(app.config["READER_PEPPER"], normalise_card(card)))).all()
        shown = [shown_code(page) for _status, page in answers if shown_code(page)]
        assert len(rows) == 1, f"{len(rows)} issuances for one reader"
        assert rows[0].print_count == len(shown), (
            f"print_count {rows[0].print_count}, but {len(shown)} answers showed the code: "
            f"{len(shown) - rows[0].print_count} counts lost")
        assert len(set(shown)) == 1, "one reader was shown different codes"
        assert [status for status, _page in answers] == [200] * 16
        assert len(shown) == 16, "a kiosk did not show the reader's code"


def test_32_new_cards_at_once_from_one_kiosk_get_at_most_the_limit(app, served):
    library = make_library()
    make_pool(library, codes("RUSH", 60), this_month())
    kiosk = served.enrolled(library)

    answers = at_once([lambda n=n: kiosk.scan(f"7{n:02d}{uuid.uuid4().int % 10**9:09d}") for n in range(32)])

    assert not [a for a in answers if isinstance(a, BaseException)], answers
    statuses = [status for status, _page in answers]
    assert all(status < 500 for status in statuses), f"server errors: {statuses}"
    slips = [page for status, page in answers if status == 200 and shown_code(page)]
    paused = [page for status, page in answers if status == 200 and "Chwila przerwy" in page]
    assert len(slips) <= CODES_SHOWN.count, f"{len(slips)} codes from one kiosk at once, past the limit"
    assert len(slips) + len(paused) == 32, [page[:200] for _s, page in answers
                                            if not shown_code(page) and "Chwila przerwy" not in page]
    db.session.rollback()  # see what the server wrote
    issued = db.session.scalar(select(func.count()).select_from(Issuance))
    assert issued == len(slips)
    # The pause does not stop a kiosk from serving at all: the first codes went out.
    assert len(slips) >= 1
