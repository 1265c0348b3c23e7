"""Issuing by the rules of the seed procedure, on SQLite and PostgreSQL."""
from datetime import date

from sqlalchemy import func, select

from helpers import codes, issue, make_library, make_pool, warsaw
from kiosk.domain.cards import CardRefusal
from kiosk.app.extensions import db
from kiosk.domain.issuing import Outcome
from kiosk.domain.consortium import consortium
from kiosk.storage.models import Code, CodeStatus, Issuance

JANUARY_2020 = (date(2020, 1, 2), date(2020, 1, 31))  # the seed's first pool
FEBRUARY_2020 = (date(2020, 2, 1), date(2020, 2, 29))


def test_seed_windows_january_then_february_with_its_29th(app):
    library = make_library()
    make_pool(library, codes("JAN", 3), JANUARY_2020)
    make_pool(library, codes("FEB", 3), FEBRUARY_2020)

    january = issue(app, "1001", warsaw(2020, 1, 14, 10))
    assert january.outcome is Outcome.ISSUED
    assert january.code.startswith("JAN")
    assert (january.valid_from, january.valid_until) == JANUARY_2020

    february = issue(app, "1001", warsaw(2020, 2, 29, 18))
    assert february.outcome is Outcome.ISSUED
    assert february.code.startswith("FEB")
    assert february.valid_until == date(2020, 2, 29)


def test_first_of_january_is_before_the_seed_pool_and_names_its_start(app):
    library = make_library()
    make_pool(library, codes("JAN", 3), JANUARY_2020)

    result = issue(app, "1001", warsaw(2020, 1, 1, 12))

    assert result.outcome is Outcome.NO_POOL
    assert result.next_pool_from == date(2020, 1, 2)


def test_month_boundary_is_midnight_in_warsaw_not_utc(app):
    library = make_library()
    make_pool(library, codes("JAN", 3), JANUARY_2020)
    make_pool(library, codes("FEB", 3), FEBRUARY_2020)

    # 31.01 23:59:59 in Warsaw is still January, though UTC says 22:59.
    last_second = issue(app, "2001", warsaw(2020, 1, 31, 23, 59, 59))
    # 01.02 00:00 in Warsaw is February, though UTC still says 31.01 23:00.
    first_second = issue(app, "2002", warsaw(2020, 2, 1, 0, 0, 0))

    assert last_second.code.startswith("JAN")
    assert first_second.code.startswith("FEB")


def test_summer_time_boundary_uses_warsaw_offset(app):
    library = make_library()
    make_pool(library, codes("JUN", 2), (date(2020, 6, 1), date(2020, 6, 30)))
    make_pool(library, codes("JUL", 2), (date(2020, 7, 1), date(2020, 7, 31)))

    # 30.06 22:30 UTC is 01.07 00:30 in Warsaw (UTC+2 in summer).
    from datetime import datetime, timezone
    result = issue(app, "3001", datetime(2020, 6, 30, 22, 30, tzinfo=timezone.utc))

    assert result.code.startswith("JUL")


def test_same_reader_same_window_gets_the_same_code_again(app):
    library = make_library()
    make_pool(library, codes("JAN", 5), JANUARY_2020)

    first = issue(app, "4001", warsaw(2020, 1, 3, 9))
    again = issue(app, "4001", warsaw(2020, 1, 30, 16))

    assert again.outcome is Outcome.REPRINT
    assert again.code == first.code
    assert again.print_count == 2
    assert db.session.scalar(select(func.count()).select_from(Issuance)) == 1


def test_card_number_typed_differently_is_the_same_reader(app):
    library = make_library()
    make_pool(library, codes("JAN", 5), JANUARY_2020)

    first = issue(app, "ab-12 34", warsaw(2020, 1, 3, 9))
    again = issue(app, " AB1234 ", warsaw(2020, 1, 3, 10))

    assert again.outcome is Outcome.REPRINT
    assert again.code == first.code


def test_next_window_gives_a_new_code(app):
    library = make_library()
    make_pool(library, codes("JAN", 2), JANUARY_2020)
    make_pool(library, codes("FEB", 2), FEBRUARY_2020)

    january = issue(app, "5001", warsaw(2020, 1, 20, 9))
    february = issue(app, "5001", warsaw(2020, 2, 3, 9))

    assert february.outcome is Outcome.ISSUED
    assert february.code != january.code


def test_exhausted_pool_says_no_codes_left_and_when_the_next_starts(app):
    library = make_library()
    make_pool(library, codes("JAN", 2), JANUARY_2020)
    make_pool(library, codes("FEB", 2), FEBRUARY_2020)

    served = [issue(app, card, warsaw(2020, 1, 10, 9)) for card in ("6001", "6002")]
    late = issue(app, "6003", warsaw(2020, 1, 10, 10))

    assert [r.outcome for r in served] == [Outcome.ISSUED, Outcome.ISSUED]
    assert late.outcome is Outcome.NO_CODES_LEFT
    assert late.next_pool_from == date(2020, 2, 1)
    assert late.code is None
    # A reader already served still gets their code when the pool is empty.
    assert issue(app, "6001", warsaw(2020, 1, 11, 9)).outcome is Outcome.REPRINT


def test_no_pool_at_all(app):
    make_library()

    result = issue(app, "7001", warsaw(2020, 3, 5, 9))

    assert result.outcome is Outcome.NO_POOL
    assert result.next_pool_from is None


def test_expired_pool_is_not_used_and_its_codes_count_as_expired(app):
    from kiosk.domain.pools import pool_summaries

    library = make_library()
    make_pool(library, codes("JAN", 4), JANUARY_2020)
    issue(app, "8001", warsaw(2020, 1, 5, 9))

    assert issue(app, "8002", warsaw(2020, 2, 1, 9)).outcome is Outcome.NO_POOL
    (january,) = pool_summaries(db.session, warsaw(2020, 2, 1, 9))
    assert (january.total, january.issued, january.left, january.expired) == (4, 1, 0, 3)
    (same_pool_in_january,) = pool_summaries(db.session, warsaw(2020, 1, 31, 23, 59))
    assert (same_pool_in_january.left, same_pool_in_january.expired) == (3, 0)


def test_oldest_imported_pool_is_used_first(app):
    library = make_library()
    make_pool(library, codes("OLD", 1), JANUARY_2020, filename="a.xlsx", now=warsaw(2020, 1, 1, 9))
    make_pool(library, codes("TOP", 2), JANUARY_2020, filename="b.xlsx", now=warsaw(2020, 1, 2, 9))

    first = issue(app, "9001", warsaw(2020, 1, 5, 9))
    second = issue(app, "9002", warsaw(2020, 1, 5, 9))

    assert first.code.startswith("OLD")
    assert second.code.startswith("TOP")


def test_void_code_is_never_handed_out(app):
    library = make_library()
    make_pool(library, codes("JAN", 2), JANUARY_2020)
    faulty = db.session.scalar(select(Code).order_by(Code.id).limit(1))
    faulty.status = CodeStatus.VOID.value
    db.session.commit()

    first = issue(app, "1101", warsaw(2020, 1, 5, 9))
    second = issue(app, "1102", warsaw(2020, 1, 5, 9))

    assert first.code != faulty.value
    assert second.outcome is Outcome.NO_CODES_LEFT


def test_december_and_the_service_end(app):
    settings = consortium(db.session)
    settings.service_end = date(2021, 1, 2)
    db.session.commit()
    library = make_library()
    make_pool(library, codes("DEC", 3), (date(2020, 12, 1), date(2020, 12, 31)))
    make_pool(library, codes("JAN", 3), (date(2021, 1, 1), date(2021, 1, 31)))

    december = issue(app, "1201", warsaw(2020, 12, 31, 23, 59))
    on_the_last_day = issue(app, "1202", warsaw(2021, 1, 2, 12))
    after_the_end = issue(app, "1203", warsaw(2021, 1, 3, 0, 0))

    assert december.code.startswith("DEC")
    assert december.valid_until == date(2020, 12, 31)
    assert december.service_end == date(2021, 1, 2)
    assert on_the_last_day.code.startswith("JAN")
    assert after_the_end.outcome is Outcome.SERVICE_ENDED


def test_other_library_pool_is_never_used(app):
    make_library("a")
    other = make_library("b")
    make_pool(other, codes("BBB", 3), JANUARY_2020)

    result = issue(app, "1301", warsaw(2020, 1, 5, 9), library="a")

    assert result.outcome is Outcome.NO_POOL


def test_issue_and_refusals_are_logged_without_the_card_number(app):
    from kiosk.storage.models import Event

    library = make_library()
    make_pool(library, codes("JAN", 1), JANUARY_2020)
    issue(app, "55501234", warsaw(2020, 1, 5, 9))
    issue(app, "55501234", warsaw(2020, 1, 5, 9))
    issue(app, "55509999", warsaw(2020, 1, 5, 9))
    issue(app, "?", warsaw(2020, 1, 5, 9))

    events = db.session.scalars(select(Event).order_by(Event.id)).all()
    kinds = [e.kind for e in events if e.kind not in ("library_added", "import")]
    assert kinds == ["issue", "reprint", "no_codes_left", "card_refused"]
    assert not any("5550" in e.details for e in events)


def test_refused_cards_get_a_reason(app):
    make_library("digits", card_pattern=r"\d{8}", check_digit="luhn")

    def refusal(card):
        return issue(app, card, warsaw(2020, 1, 5, 9), library="digits")

    assert refusal("   ").reason is CardRefusal.EMPTY
    assert refusal("ABC").reason is CardRefusal.FORMAT
    assert refusal("12345678").reason is CardRefusal.CHECK_DIGIT  # Luhn wants ...674
    assert refusal("12345674").outcome is Outcome.NO_POOL  # a good card reaches the pools


def test_default_card_format_is_permissive_but_refuses_garbage(app):
    make_library()

    assert issue(app, "abc", warsaw(2020, 1, 5, 9)).reason is CardRefusal.FORMAT  # too short
    assert issue(app, "x" * 33, warsaw(2020, 1, 5, 9)).reason is CardRefusal.FORMAT
    assert issue(app, "'; DROP TABLE codes;--", warsaw(2020, 1, 5, 9)).reason is CardRefusal.FORMAT
    assert issue(app, "ab12", warsaw(2020, 1, 5, 9)).outcome is Outcome.NO_POOL


def test_a_failing_transaction_loses_no_code(app, monkeypatch):
    import kiosk.domain.issuing

    library = make_library()
    make_pool(library, codes("JAN", 1), JANUARY_2020)

    def broken_log(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(kiosk.domain.issuing, "insert_event", broken_log)
    try:
        issue(app, "1401", warsaw(2020, 1, 5, 9))
    except RuntimeError:
        pass
    monkeypatch.undo()
    db.session.commit()

    assert db.session.scalar(select(Code.status)) == CodeStatus.AVAILABLE.value
    assert db.session.scalar(select(func.count()).select_from(Issuance)) == 0
    assert issue(app, "1402", warsaw(2020, 1, 5, 9)).outcome is Outcome.ISSUED
