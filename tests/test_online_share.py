"""The online share of a pool (the rule online_share) and where a reader's code may
be mailed (the register's E-mail column, SIP2's BE). The share is kept for the
online form and the API; readers in the building take the rest. On SQLite and
PostgreSQL."""
from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from helpers import TEST, WARSAW, codes, import_file, issue_in_parallel, make_library, panel_file, warsaw, write
from kiosk.app.extensions import db
from kiosk.domain.actors import Actor
from kiosk.domain.clock import utcnow
from kiosk.domain.eligibility import Ineligibility
from kiosk.domain.issuing import Outcome, issue_code, plan_issue
from kiosk.domain.library_system import verdict_of
from kiosk.domain.readers import email_or_none
from kiosk.domain.registry import import_cards, prepare_cards
from kiosk.domain.rules import parse_changes, save_rules
from kiosk.domain.snapshot import snapshot
from kiosk.domain.pool_files import ImportRefused
from kiosk.domain.refusals import Refused
from kiosk.sip2.protocol import PatronAnswer
from kiosk.storage.models import Channel, Code, CodeStatus, Issuance

MAY = (date(2027, 5, 3), date(2027, 5, 31))  # the window starts on a working day, at midnight
IN_MAY = warsaw(2027, 5, 4, 12)


def rules(library, **values):
    parsed = parse_changes({name: str(value) for name, value in values.items()})
    write(lambda s: save_rules(s, library.id, parsed, TEST, warsaw(2020, 1, 1, 8)))


def pool(library, prefix: str, count: int, window=MAY):
    import_file(library, panel_file(codes(prefix, count)), window=window, filename=f"{prefix}.xlsx",
                now=datetime.combine(window[0], datetime.min.time(), WARSAW) - timedelta(days=3))


def issue_by(app, card: str, channel: Channel, at: datetime = IN_MAY):
    return write(lambda s: issue_code(s, library_slug="lib", card_number=card, channel=channel,
                                      actor=Actor.system(channel.value), now=at,
                                      pepper=app.config["READER_PEPPER"]))


def held_online(result) -> None:
    assert result.outcome is Outcome.NOT_ELIGIBLE, result
    assert result.ineligible.reason is Ineligibility.ONLINE_RESERVED


def test_the_building_takes_what_the_online_share_leaves_and_the_form_takes_the_rest(app):
    library = make_library()
    pool(library, "MAY", 10)
    rules(library, online_share=40)  # 4 of 10 kept for the form and the API

    for n in range(6):
        assert issue_by(app, f"K{n:04d}", (Channel.KIOSK, Channel.DESK)[n % 2]).outcome is Outcome.ISSUED
    held_online(issue_by(app, "K0006", Channel.KIOSK))
    held_online(issue_by(app, "K0007", Channel.DESK))
    for n, channel in enumerate((Channel.ONLINE, Channel.API, Channel.ONLINE, Channel.ONLINE)):
        assert issue_by(app, f"W{n:04d}", channel).outcome is Outcome.ISSUED
    assert issue_by(app, "W0009", Channel.ONLINE).outcome is Outcome.NO_CODES_LEFT
    # The last code gone, the building hears "no codes left", not "kept for the form".
    assert issue_by(app, "K0006", Channel.KIOSK).outcome is Outcome.NO_CODES_LEFT
    channels = Counter(db.session.scalars(select(Issuance.channel)))
    assert channels == {"kiosk": 3, "desk": 3, "online": 3, "api": 1}


def test_a_share_rounds_up_and_once_the_form_had_it_the_building_takes_the_rest(app):
    library = make_library()
    pool(library, "MAY", 5)
    rules(library, online_share=30)  # 30 % of 5 is a code and a half: two are kept
    for n in range(3):
        assert issue_by(app, f"K{n:04d}", Channel.KIOSK).outcome is Outcome.ISSUED
    held_online(issue_by(app, "K0003", Channel.KIOSK))
    assert issue_by(app, "W0000", Channel.ONLINE).outcome is Outcome.ISSUED
    held_online(issue_by(app, "K0003", Channel.KIOSK))  # one still owed to the form
    assert issue_by(app, "W0001", Channel.API).outcome is Outcome.ISSUED
    assert issue_by(app, "K0003", Channel.KIOSK).outcome is Outcome.NO_CODES_LEFT


def test_the_form_may_take_more_than_its_share(app):
    library = make_library()
    pool(library, "MAY", 4)
    rules(library, online_share=25)
    for n in range(3):
        assert issue_by(app, f"W{n:04d}", Channel.ONLINE).outcome is Outcome.ISSUED
    assert issue_by(app, "K0000", Channel.KIOSK).outcome is Outcome.ISSUED  # the form had its one and more


def test_the_online_share_beside_the_first_timer_reserve(app):
    """10 codes: 2 for first-timers, 3 for the form. Returning readers in the building
    leave 5; a first-timer in the building leaves only the form's; a returning
    reader on the form leaves only the first-timers'."""
    library = make_library()
    pool(library, "APR", 10, window=(date(2027, 4, 1), date(2027, 4, 30)))
    pool(library, "MAY", 10)
    returning = [f"R{n:04d}" for n in range(10)]
    for card in returning:
        assert issue_by(app, card, Channel.DESK, warsaw(2027, 4, 2, 12)).outcome is Outcome.ISSUED
    rules(library, first_timer_reserve=20, online_share=30)

    for card in returning[:5]:
        assert issue_by(app, card, Channel.KIOSK).outcome is Outcome.ISSUED
    held_online(issue_by(app, returning[5], Channel.KIOSK))
    assert issue_by(app, "NEW0001", Channel.KIOSK).outcome is Outcome.ISSUED  # 4 free, 1 + 3 owed
    held_online(issue_by(app, returning[5], Channel.KIOSK))
    assert issue_by(app, returning[6], Channel.ONLINE).outcome is Outcome.ISSUED  # leaves the first-timer's
    assert issue_by(app, returning[7], Channel.ONLINE).outcome is Outcome.ISSUED
    assert issue_by(app, returning[8], Channel.ONLINE).outcome is Outcome.ISSUED  # 2 free, 1 owed to first-timers
    reserved = issue_by(app, returning[9], Channel.ONLINE)
    assert reserved.outcome is Outcome.NOT_ELIGIBLE and reserved.ineligible.reason is Ineligibility.RESERVED
    assert issue_by(app, "NEW0002", Channel.ONLINE).outcome is Outcome.ISSUED
    assert db.session.scalar(select(func.count()).select_from(Code).where(
        Code.status == CodeStatus.AVAILABLE.value, Code.value.like("MAY%"))) == 0


def test_at_the_release_the_building_never_takes_the_forms_share(app):
    """40 codes, half kept for the form; 8 workers, the building and the form at
    once, more readers than codes: the building gets at most 20, the form the rest,
    every code once and every reader once."""
    library = make_library()
    pool(library, "MAY", 40)
    rules(library, online_share=50)
    readers = [(f"K{n:04d}", Channel.KIOSK) for n in range(35)] + [(f"W{n:04d}", Channel.ONLINE) for n in range(35)]
    random.Random(5).shuffle(readers)
    db.session.commit()

    results = issue_in_parallel(app, [readers[i::8] for i in range(8)], lambda s, job, pepper: issue_code(
        s, library_slug="lib", card_number=job[0], channel=job[1], actor=Actor.system("rush"), now=IN_MAY,
        pepper=pepper))
    db.session.commit()

    issued = Counter(job[1] for job, result in results if result.outcome is Outcome.ISSUED)
    assert issued[Channel.KIOSK] <= 20
    assert issued[Channel.KIOSK] + issued[Channel.ONLINE] == 40
    assert len({result.code for _, result in results if result.outcome is Outcome.ISSUED}) == 40
    assert db.session.scalar(select(func.count(func.distinct(Issuance.reader_key)))) == 40
    refused = {(result.outcome, result.ineligible.reason if result.ineligible else None)
               for job, result in results if result.outcome is not Outcome.ISSUED}
    assert refused <= {(Outcome.NO_CODES_LEFT, None), (Outcome.NOT_ELIGIBLE, Ineligibility.ONLINE_RESERVED)}


@pytest.mark.parametrize("value", ["0", "101", "half", "-5"])
def test_a_bad_share_is_refused_naming_the_rule(app, value):
    with pytest.raises(Refused) as refused:
        parse_changes({"online_share": value})
    assert refused.value.problems[0].details["rule"] == "online_share"


def test_the_share_is_off_by_default_and_can_be_switched_off(app):
    assert parse_changes({"online_share": "off"}) == {"online_share": None}
    assert parse_changes({"online_share": "50"}) == {"online_share": 50}


# -- where the code may be mailed -------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("anna.kowalska@example.pl", "anna.kowalska@example.pl"),
    ("  jan@poczta.onet.pl ", "jan@poczta.onet.pl"),
    ("", None), (None, None), ("601 234 567", None), ("anna@localhost", None), ("a@b@c.pl", None),
    ("anna @example.pl", None), ("x" * 65 + "@example.pl", None), ("a@" + "b" * 250 + ".pl", None),
])
def test_an_address_is_kept_only_when_it_looks_like_one(text, expected):
    assert email_or_none(text) == expected


def test_the_register_keeps_each_readers_address_and_the_plan_finds_it(app):
    library = make_library(card_check="registry")
    data = "Karta;Ważna do;E-mail\n11112222;2030-12-31;anna@example.pl\n33334444;2030-12-31;601 234 567\n" \
           "55556666;2030-12-31;\n".encode()
    prepared = prepare_cards(data, card_pattern=None, check_digit=None, pepper=app.config["READER_PEPPER"])
    assert prepared.with_email == 1
    library_id = library.id
    write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))

    def plan(card: str):
        return plan_issue(db.session, snapshot(db.session), library_slug="lib", card_number=card, now=utcnow(),
                          pepper=app.config["READER_PEPPER"], wants_email=True)
    assert plan("11112222").email == "anna@example.pl"
    assert plan("33334444").email is None  # a phone number in the wrong column is never mailed
    assert plan("55556666").email is None
    assert plan("99990000").email is None and plan("99990000").refusal is not None
    db.session.rollback()


def test_an_import_with_an_address_in_every_shape_is_never_refused_for_it(app):
    data = "Karta;E-mail\n11112222;=HYPERLINK(\"x\")\n33334444;" + "a" * 500 + "\n"
    prepared = prepare_cards(data.encode(), card_pattern=None, check_digit=None,
                             pepper=app.config["READER_PEPPER"])
    assert [r["email"] for r in prepared.records] == [None, None]


def test_the_library_systems_address_comes_from_be():
    def answer(**fields):
        return PatronAnswer(command="64", patron_status=" " * 14, valid_patron=True, valid_password=None,
                            fields={key: (value,) for key, value in fields.items()}, counts={}, ms=1.0)
    assert verdict_of(answer(BE="ola@example.pl"), None, date(2027, 5, 4)).email == "ola@example.pl"
    assert verdict_of(answer(BE="not an address"), None, date(2027, 5, 4)).email is None
    assert verdict_of(answer(), None, date(2027, 5, 4)).email is None


def test_a_register_file_with_a_bad_card_is_still_refused_whole(app):
    data = "Karta;E-mail\n11112222;anna@example.pl\n;\nabc def ghi jkl mno pqr stu vwx yz0 123;b@example.pl\n"
    with pytest.raises(ImportRefused):
        prepare_cards(data.encode(), card_pattern=r"\d{8}", check_digit=None, pepper=app.config["READER_PEPPER"])
