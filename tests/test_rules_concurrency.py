"""Every rule at once, under a queue: 8 workers, each with its own connection, at
the release moment, with a first-timer reserve in force. A returning reader never
gets a reserved code; no code twice; no reader twice."""
import random
from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from helpers import TEST, codes, issue_in_parallel, import_file, make_library, panel_file, warsaw, write
from kiosk.app.extensions import db
from kiosk.domain.actors import Actor
from kiosk.domain.eligibility import Ineligibility
from kiosk.domain.issuing import Outcome, issue_code
from kiosk.domain.rules import parse_changes, save_rules
from kiosk.storage.models import Channel, Code, CodeStatus, Issuance, Platform

WORKERS = 8
APRIL = (date(2027, 4, 1), date(2027, 4, 30))
MAY = (date(2027, 5, 1), date(2027, 5, 31))
RELEASE = warsaw(2027, 5, 4, 10)  # the first working day of May 2027, at ten


def issue_at_moments(app, cards: list[str], moments: list[datetime]) -> list:
    jobs = list(zip(cards, moments))
    return [(card, result) for (card, _at), result in issue_in_parallel(
        app, [jobs[i::WORKERS] for i in range(WORKERS)], lambda s, job, pepper: issue_code(
            s, library_slug="lib", card_number=job[0], channel=Channel.KIOSK, actor=Actor.system("kiosk"),
            now=job[1], pepper=pepper))]


def test_at_the_release_with_a_reserve_no_returning_reader_gets_a_reserved_code(app):
    library = make_library()
    import_file(library, panel_file(codes("APR", 40)), window=APRIL, filename="apr.xlsx",
                now=warsaw(2027, 3, 28, 12))
    import_file(library, panel_file(codes("MAY", 40)), window=MAY, filename="may.xlsx",
                now=warsaw(2027, 4, 28, 12))
    returning = [f"R{n:05d}" for n in range(40)]
    for card in returning:  # April's readers: every one of them comes back in May
        write(lambda s, card=card: issue_code(s, library_slug="lib", card_number=card, channel=Channel.DESK,
                                              actor=TEST, now=warsaw(2027, 4, 2, 12),
                                              pepper=app.config["READER_PEPPER"]))
    parsed = parse_changes({"release_day": "first_working_day", "release_time": "10:00",
                            "first_timer_reserve": "25", "first_timer_until_day": "10"})  # 10 of 40 held
    write(lambda s: save_rules(s, library.id, parsed, TEST, warsaw(2027, 4, 1, 8)))
    newcomers = [f"N{n:05d}" for n in range(6)]
    rng = random.Random(11)
    cards = returning + newcomers + rng.sample(returning, 10)
    rng.shuffle(cards)
    # Some come a moment too early, most at the release and just after it.
    moments = [RELEASE - timedelta(seconds=1) if i % 9 == 0 else RELEASE + timedelta(seconds=i)
               for i in range(len(cards))]

    results = issue_at_moments(app, cards, moments)
    db.session.commit()

    outcomes = Counter(r.outcome for _, r in results)
    assert outcomes[Outcome.ISSUED] > 0
    new_issued = [r for card, r in results if card.startswith("N") and r.outcome is Outcome.ISSUED]
    old_issued = [r for card, r in results if card.startswith("R") and r.outcome is Outcome.ISSUED]
    # The reserve: 10 held; first-timers took len(new_issued) of them; the rest stay free.
    assert len(old_issued) <= 40 - 10, "a returning reader got a reserved code"
    free = db.session.scalar(select(func.count(Code.id)).where(Code.value.like("MAY%"),
                                                               Code.status == CodeStatus.AVAILABLE.value))
    assert free >= 10 - len(new_issued)
    held = [r for card, r in results if r.outcome is Outcome.NOT_ELIGIBLE
            and r.ineligible.reason is Ineligibility.RESERVED]
    assert held and all(card.startswith("R") for card, r in results if r in held)
    assert all(r.ineligible.reason in (Ineligibility.RESERVED, Ineligibility.NOT_YET)
               for _, r in results if r.outcome is Outcome.NOT_ELIGIBLE)
    # No code twice, no reader twice, and the database agrees with the answers.
    may = db.session.execute(select(Issuance.reader_key, Issuance.code_id)
                             .where(Issuance.window_start == MAY[0], Issuance.voided_at.is_(None))).all()
    assert len(may) == len({code for _, code in may}) == len({key for key, _ in may})
    assert len(may) == len(new_issued) + len(old_issued)
    assert sum(r.first_timer for r in db.session.scalars(
        select(Issuance).where(Issuance.window_start == MAY[0]))) == len(new_issued)


def test_one_reader_at_eight_kiosks_choosing_two_platforms_gets_one_code_a_month(app):
    library = make_library()
    import_file(library, panel_file(codes("LEG", 20)), window=MAY, filename="leg.xlsx", now=warsaw(2027, 4, 28, 12))
    empik = db.session.scalar(select(Platform).where(Platform.slug == "empik-go"))
    import_file(library, panel_file(codes("EMP", 20)), window=MAY, filename="emp.xlsx", now=warsaw(2027, 4, 28, 12),
                platform=empik)
    write(lambda s: save_rules(s, library.id, parse_changes({"platforms_rule": "one_per_month"}), TEST,
                               warsaw(2027, 4, 1, 8)))
    # Four kiosks choose Legimi and four Empik Go, for the same two readers.
    shares = [[(card, "legimi" if i % 2 else "empik-go") for card in ("12345678", "87654321")]
              for i in range(WORKERS)]
    finished = issue_in_parallel(app, shares, lambda s, job, pepper: issue_code(
        s, library_slug="lib", card_number=job[0], channel=Channel.KIOSK, actor=Actor.system("kiosk"),
        now=warsaw(2027, 5, 3, 12), pepper=pepper, platform_slug=job[1]))
    results = [(card, slug, result) for (card, slug), result in finished]
    db.session.commit()

    rows = db.session.execute(select(Issuance.reader_key, Issuance.platform_id)).all()
    assert len(rows) == 2 and len({key for key, _ in rows}) == 2, "a reader got two platforms' codes"
    for card, slug, result in results:
        assert result.outcome in (Outcome.ISSUED, Outcome.REPRINT, Outcome.NOT_ELIGIBLE)
        if result.outcome is Outcome.NOT_ELIGIBLE:
            assert result.ineligible.reason is Ineligibility.OTHER_PLATFORM
