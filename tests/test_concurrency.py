"""Many kiosks at once: 8+ workers, each with its own connection, issuing to
distinct and repeated readers against one pool. No code twice, no reader twice."""
import random
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from helpers import codes, issue_in_parallel, make_library, make_pool, warsaw
from kiosk.app.extensions import db
from kiosk.domain.actors import Actor
from kiosk.domain.issuing import Outcome, issue_code
from kiosk.storage.models import Channel, Code, CodeStatus, Issuance

WORKERS = 8
JANUARY = (date(2020, 1, 2), date(2020, 1, 31))


def issue_concurrently(app, cards: list[str]) -> list:
    """Each worker has its own engine, so its own connection, as separate kiosks do."""
    return issue_in_parallel(app, [cards[i::WORKERS] for i in range(WORKERS)], lambda s, card, pepper: issue_code(
        s, library_slug="lib", card_number=card, channel=Channel.KIOSK, actor=Actor.system("kiosk"),
        now=warsaw(2020, 1, 10, 12), pepper=pepper))


@pytest.mark.parametrize("pool_size,readers,visits", [(20, 30, 60), (50, 30, 60)])
def test_every_code_once_every_reader_once(app, pool_size, readers, visits):
    library = make_library()
    make_pool(library, codes("CC", pool_size), JANUARY)
    rng = random.Random(pool_size)
    distinct = [f"{900000 + n}" for n in range(readers)]
    # Every reader comes at least once, many twice or more, in random order.
    cards = distinct + [rng.choice(distinct) for _ in range(visits - readers)]
    rng.shuffle(cards)

    results = issue_concurrently(app, cards)
    db.session.commit()

    assert len(results) == visits
    issued = [r.code for _, r in results if r.outcome is Outcome.ISSUED]
    assert len(issued) == len(set(issued)), "a code was handed out twice"
    assert len(issued) == min(pool_size, readers)
    # Every answer a reader got names the same code.
    by_reader: dict[str, set] = {}
    for card, result in results:
        if result.code:
            by_reader.setdefault(card, set()).add(result.code)
    assert all(len(codes_seen) == 1 for codes_seen in by_reader.values())
    # And the database agrees.
    rows = db.session.execute(select(Issuance.reader_key, Issuance.code_id)).all()
    assert len(rows) == len(issued)
    assert max(Counter(key for key, _ in rows).values()) == 1
    issued_codes = db.session.scalar(
        select(func.count()).select_from(Code).where(Code.status == CodeStatus.ISSUED.value))
    assert issued_codes == len(issued)
    refused = [r for _, r in results if r.outcome is Outcome.NO_CODES_LEFT]
    assert len(refused) + len(issued) + sum(r.outcome is Outcome.REPRINT for _, r in results) == visits
