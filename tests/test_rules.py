"""The rules libraries publish, each at its edges, with a frozen clock, on SQLite
and PostgreSQL: release day and hour, holidays and closed days, the early release,
age, activity, debt, the non-activation wait, the first-timer reserve and the
platforms rule. The verdict comes from the one issuing function every channel uses."""
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from helpers import TEST, WARSAW, codes, import_file, make_library, panel_file, warsaw, write
from kiosk.app.extensions import db
from kiosk.domain.actors import Actor
from kiosk.domain.eligibility import Fact, Ineligibility
from kiosk.domain.issuing import Outcome, issue_code
from kiosk.domain.readers import reader_key
from kiosk.domain.rules import parse_changes, save_rules
from kiosk.domain.working_days import add_closed_day
from kiosk.storage.models import ActivationImport, CardRecord, Channel, Code, Event, Library, Platform

MAY_2027 = (date(2027, 5, 1), date(2027, 5, 31))  # 1 May a Saturday, 3 May a holiday


def rules(library, **values):
    parsed = parse_changes({name: str(value) for name, value in values.items()})
    write(lambda s: save_rules(s, library.id, parsed, TEST, warsaw(2020, 1, 1, 8)))


def platform(slug: str) -> Platform:
    return db.session.scalar(select(Platform).where(Platform.slug == slug))


def pool(library, prefix, window, count=5, slug="legimi"):
    import_file(library, panel_file(codes(prefix, count)), window=window, filename=f"{prefix}.xlsx",
                now=datetime.combine(window[0], datetime.min.time(), WARSAW) - timedelta(days=3),
                platform=platform(slug))


def issue_at(app, card: str, at: datetime, slug: str = "legimi"):
    return write(lambda s: issue_code(s, library_slug="lib", card_number=card, channel=Channel.KIOSK,
                                      actor=Actor.system("kiosk"), now=at, pepper=app.config["READER_PEPPER"],
                                      platform_slug=slug))


def facts(app, library, card: str, **values):
    """The register's facts for one reader, as its import stores them."""
    key = reader_key(app.config["READER_PEPPER"], card)
    known = ",".join(name for name in ("birth_date", "last_loan", "debt") if name in values)

    def store(s):
        s.get(Library, library.id).register_facts = known or None
        s.add(CardRecord(library_id=library.id, reader_key=key, birth_date=values.get("birth_date"),
                         last_loan=values.get("last_loan"), debt_grosze=values.get("debt")))
    write(store)


def refused(result, reason: Ineligibility):
    assert result.outcome is Outcome.NOT_ELIGIBLE, result
    assert result.ineligible.reason is reason, result.ineligible
    return result.ineligible


# -- release day and hour -------------------------------------------------------------

def test_first_working_day_at_ten_may_2027_moves_past_the_weekend_and_the_holiday(app):
    library = make_library()
    pool(library, "MAY", MAY_2027)
    rules(library, release_day="first_working_day", release_time="10:00")

    for moment in (warsaw(2027, 5, 1, 12), warsaw(2027, 5, 3, 12), warsaw(2027, 5, 4, 9, 59)):
        not_yet = refused(issue_at(app, "R0001", moment), Ineligibility.NOT_YET)
        assert not_yet.next_release == warsaw(2027, 5, 4, 10)
    result = issue_at(app, "R0001", warsaw(2027, 5, 4, 10))
    assert result.outcome is Outcome.ISSUED
    assert result.valid_until == date(2027, 5, 31)


def test_not_yet_is_said_with_the_weekday_date_and_hour(app, runner):
    library = make_library()
    pool(library, "MAY", MAY_2027)
    rules(library, release_day="first_working_day", release_time="10:00")
    from kiosk.wording.eligibility import ineligible_sentences

    with app.test_request_context():
        why, then = ineligible_sentences(issue_at(app, "R0001", warsaw(2027, 5, 4, 9)).ineligible)
    assert why == "Kody na maj od wtorku 04.05.2027 o 10:00."
    assert then


def test_24_december_2025_is_a_holiday_and_2024_was_not(app):
    library = make_library()
    pool(library, "XMAS", (date(2025, 12, 24), date(2025, 12, 31)))
    pool(library, "OLD", (date(2024, 12, 24), date(2024, 12, 31)))
    rules(library, release_day="first_working_day")

    assert issue_at(app, "R0001", warsaw(2024, 12, 24, 9)).outcome is Outcome.ISSUED
    # 24 (holiday), 25 and 26 (holidays), 27 and 28 (weekend): Monday 29.
    not_yet = refused(issue_at(app, "R0001", warsaw(2025, 12, 24, 9)), Ineligibility.NOT_YET)
    assert not_yet.next_release == warsaw(2025, 12, 29, 0)


def test_a_closed_day_moves_the_release(app):
    library = make_library()
    pool(library, "NOV", (date(2026, 11, 1), date(2026, 11, 30)))
    rules(library, release_day="first_working_day", release_time="9:00")
    write(lambda s: add_closed_day(s, library.id, date(2026, 11, 2), TEST, warsaw(2026, 10, 1, 8)))

    not_yet = refused(issue_at(app, "R0001", warsaw(2026, 11, 2, 12)), Ineligibility.NOT_YET)
    assert not_yet.next_release == warsaw(2026, 11, 3, 9)
    assert issue_at(app, "R0001", warsaw(2026, 11, 3, 9)).outcome is Outcome.ISSUED


def test_early_release_hands_out_next_month_from_the_last_working_day_before(app):
    library = make_library()
    pool(library, "JUN", (date(2023, 6, 1), date(2023, 6, 30)))
    pool(library, "JUL", (date(2023, 7, 1), date(2023, 7, 31)))
    rules(library, early_release="last_working_day_before", release_time="8:00")

    june = issue_at(app, "R0001", warsaw(2023, 6, 29, 12))
    assert june.code.startswith("JUN")
    # Friday 30 June before eight: still June's (a reprint for this reader).
    assert issue_at(app, "R0001", warsaw(2023, 6, 30, 7, 59)).outcome is Outcome.REPRINT
    july = issue_at(app, "R0001", warsaw(2023, 6, 30, 8))
    assert july.outcome is Outcome.ISSUED and july.code.startswith("JUL")
    assert (july.valid_from, july.valid_until) == (date(2023, 7, 1), date(2023, 7, 31))
    # Handed out early, it may be printed again (or replaced) at the desk the same day.
    from kiosk.domain.reprints import refusal_for
    from kiosk.storage.models import Issuance
    assert refusal_for(db.session.get(Issuance, july.issuance_id), date(2023, 6, 30), None) is None


def test_early_release_without_this_months_pool_names_the_release_day(app):
    library = make_library()
    pool(library, "JUL", (date(2023, 7, 1), date(2023, 7, 31)))
    rules(library, early_release="last_working_day_before")

    before = issue_at(app, "R0001", warsaw(2023, 6, 29, 12))
    assert before.outcome is Outcome.NO_POOL
    assert before.next_pool_from == date(2023, 6, 30)
    assert issue_at(app, "R0001", warsaw(2023, 6, 30, 0, 1)).outcome is Outcome.ISSUED


def test_without_rules_the_window_start_at_midnight_as_before(app):
    library = make_library()
    pool(library, "MAY", MAY_2027)
    assert issue_at(app, "R0001", warsaw(2027, 4, 30, 23, 59)).outcome is Outcome.NO_POOL
    assert issue_at(app, "R0001", warsaw(2027, 5, 1, 0, 0)).outcome is Outcome.ISSUED


# -- the reader's facts ---------------------------------------------------------------

def test_thirteenth_birthday_on_the_day(app):
    library = make_library()
    pool(library, "MAY", MAY_2027)
    rules(library, min_age=13)
    facts(app, library, "R0001", birth_date=date(2014, 5, 10))

    young = refused(issue_at(app, "R0001", warsaw(2027, 5, 9, 23, 59)), Ineligibility.TOO_YOUNG)
    assert young.eligible_from == date(2027, 5, 10)
    assert issue_at(app, "R0001", warsaw(2027, 5, 10, 0, 1)).outcome is Outcome.ISSUED


def test_born_on_29_february_is_older_on_28_february_in_a_common_year(app):
    """Art. 112 of the Civil Code: a missing day is the month's last day."""
    library = make_library()
    pool(library, "FEB", (date(2025, 2, 1), date(2025, 2, 28)))
    rules(library, min_age=13)
    facts(app, library, "R0001", birth_date=date(2012, 2, 29))

    young = refused(issue_at(app, "R0001", warsaw(2025, 2, 27, 23, 59)), Ineligibility.TOO_YOUNG)
    assert young.eligible_from == date(2025, 2, 28)
    assert issue_at(app, "R0001", warsaw(2025, 2, 28, 0, 1)).outcome is Outcome.ISSUED


def test_a_loan_exactly_n_months_ago_counts(app):
    library = make_library()
    pool(library, "MAY", MAY_2027)
    rules(library, active_within_months=3)
    facts(app, library, "R0001", last_loan=date(2027, 2, 10))
    facts(app, library, "R0002", last_loan=date(2027, 2, 9))
    facts(app, library, "R0003", last_loan=None)

    assert issue_at(app, "R0001", warsaw(2027, 5, 10, 12)).outcome is Outcome.ISSUED
    assert refused(issue_at(app, "R0002", warsaw(2027, 5, 10, 12)), Ineligibility.INACTIVE).limit == 3
    refused(issue_at(app, "R0003", warsaw(2027, 5, 10, 12)), Ineligibility.INACTIVE)  # never borrowed


def test_debt_one_grosz_over_the_limit(app):
    library = make_library()
    pool(library, "MAY", MAY_2027)
    rules(library, max_debt="5,00")
    facts(app, library, "R0001", debt=500)
    facts(app, library, "R0002", debt=501)

    assert issue_at(app, "R0001", warsaw(2027, 5, 10, 12)).outcome is Outcome.ISSUED
    refused(issue_at(app, "R0002", warsaw(2027, 5, 10, 12)), Ineligibility.DEBT)
    rules(library, max_debt="0")
    facts(app, library, "R0003", debt=1)
    refused(issue_at(app, "R0003", warsaw(2027, 5, 10, 12)), Ineligibility.DEBT)
    # A rule never takes back a code handed out: R0001's is shown again.
    assert issue_at(app, "R0001", warsaw(2027, 5, 10, 12)).outcome is Outcome.REPRINT


def test_an_absurd_birth_year_in_the_register_is_refused_at_import(app):
    from helpers import csv_file
    from kiosk.domain.pool_files import ImportRefused
    from kiosk.domain.registry import prepare_cards

    with pytest.raises(ImportRefused) as refused_import:
        prepare_cards(csv_file([["Karta", "Data urodzenia"], ["R0001", "31.12.9999"]]), card_pattern=None,
                      check_digit=None, pepper=app.config["READER_PEPPER"])
    assert refused_import.value.details["row"] == 2


def test_a_rule_without_its_fact_refuses_with_no_data(app):
    library = make_library()
    pool(library, "MAY", MAY_2027)
    rules(library, min_age=13)
    missing = refused(issue_at(app, "R0001", warsaw(2027, 5, 10, 12)), Ineligibility.NO_DATA)
    assert missing.missing is Fact.BIRTH_DATE
    rules(library, min_age="off", max_debt=0)
    facts(app, library, "R0002", birth_date=date(1990, 1, 1))  # the register has no debt column
    assert refused(issue_at(app, "R0002", warsaw(2027, 5, 10, 12)), Ineligibility.NO_DATA).missing is Fact.DEBT


# -- not activated --------------------------------------------------------------------

def mark_activations(library, as_of: date, activated: list[str] = ()):
    def store(s):
        for value in activated:
            s.scalar(select(Code).where(Code.value == value)).activation_marked_at = warsaw(2020, 1, 1, 8)
        s.add(ActivationImport(library_id=library.id, platform_id=platform("legimi").id, as_of=as_of, marked=0,
                               source_filename="aktywacje.xlsx", imported_by="test",
                               imported_at=datetime.combine(as_of, datetime.min.time(), timezone.utc)))
    write(store)


@pytest.mark.parametrize("wait,eligible_from", [(1, date(2027, 3, 1)), (3, date(2027, 5, 1))])
def test_the_wait_ends_on_the_first_day_of_the_month_after_n(app, wait, eligible_from):
    library = make_library()
    for month in range(1, 6):
        pool(library, f"M{month}X", (date(2027, month, 1), date(2027, month, 28)), count=3)
    rules(library, non_activation_wait=wait)
    january = issue_at(app, "R0001", warsaw(2027, 1, 5, 12))
    issue_at(app, "R0002", warsaw(2027, 1, 5, 12))
    mark_activations(library, date(2027, 2, 1), activated=[])

    for month in range(2, 6):
        at = warsaw(2027, month, 2, 12)
        result = issue_at(app, "R0001", at)
        if date(2027, month, 1) < eligible_from:
            assert refused(result, Ineligibility.NOT_ACTIVATED).eligible_from == eligible_from
        else:
            assert result.outcome is Outcome.ISSUED, (month, result)
            break
    assert january.code


def test_an_activated_code_keeps_no_one_waiting_and_an_unknown_one_says_no_data(app):
    library = make_library()
    pool(library, "JAN", (date(2027, 1, 1), date(2027, 1, 31)))
    pool(library, "FEB", (date(2027, 2, 1), date(2027, 2, 28)))
    rules(library, non_activation_wait=3)
    activated = issue_at(app, "R0001", warsaw(2027, 1, 5, 12)).code
    issue_at(app, "R0002", warsaw(2027, 1, 5, 12))

    # No activation list imported since January ended: the library does not know.
    unknown = refused(issue_at(app, "R0002", warsaw(2027, 2, 2, 12)), Ineligibility.NO_DATA)
    assert unknown.missing is Fact.ACTIVATIONS
    mark_activations(library, date(2027, 2, 3), activated=[activated])
    assert issue_at(app, "R0001", warsaw(2027, 2, 4, 12)).outcome is Outcome.ISSUED
    refused(issue_at(app, "R0002", warsaw(2027, 2, 4, 12)), Ineligibility.NOT_ACTIVATED)


def test_an_early_release_does_not_judge_the_month_that_is_still_running(app):
    """Jasło: July's codes from 30 June, and a code not activated keeps one waiting:
    on 30 June June's code may still be activated, so it is not held against anyone."""
    library = make_library()
    pool(library, "JUN", (date(2023, 6, 1), date(2023, 6, 30)))
    pool(library, "JUL", (date(2023, 7, 1), date(2023, 7, 31)))
    rules(library, early_release="last_working_day_before", non_activation_wait=3)
    issue_at(app, "R0001", warsaw(2023, 6, 5, 12))

    assert issue_at(app, "R0001", warsaw(2023, 6, 30, 9)).outcome is Outcome.ISSUED


# -- the first-timer reserve ---------------------------------------------------------

def test_reserve_edges(app):
    """10 codes, 20 % (2) held until the 10th: 8 returning readers get codes, the
    9th is refused until the 10th; a first-timer takes one of the two; on the 10th
    the last one goes to a returning reader."""
    library = make_library()
    pool(library, "APR", (date(2027, 4, 1), date(2027, 4, 30)), count=10)
    pool(library, "MAY", MAY_2027, count=10)
    returning = [f"R{n:04d}" for n in range(1, 11)]
    for card in returning:
        assert issue_at(app, card, warsaw(2027, 4, 2, 12)).outcome is Outcome.ISSUED
    rules(library, first_timer_reserve=20, first_timer_until_day=10)

    for card in returning[:8]:
        assert issue_at(app, card, warsaw(2027, 5, 3, 12)).outcome is Outcome.ISSUED
    held = refused(issue_at(app, returning[8], warsaw(2027, 5, 3, 12)), Ineligibility.RESERVED)
    assert held.eligible_from == date(2027, 5, 10)
    assert issue_at(app, "NEW0001", warsaw(2027, 5, 4, 12)).outcome is Outcome.ISSUED
    refused(issue_at(app, returning[8], warsaw(2027, 5, 9, 23, 59)), Ineligibility.RESERVED)
    assert issue_at(app, returning[8], warsaw(2027, 5, 10, 0, 0)).outcome is Outcome.ISSUED
    assert issue_at(app, returning[9], warsaw(2027, 5, 10, 0, 1)).outcome is Outcome.NO_CODES_LEFT


# -- several platforms ------------------------------------------------------------------

@pytest.mark.parametrize("rule,day,expected", [
    ("independent", 3, Outcome.ISSUED),
    ("one_per_month", 3, Outcome.NOT_ELIGIBLE),
    ("one_per_month", 25, Outcome.NOT_ELIGIBLE),
    ("priority_without_other", 14, Outcome.NOT_ELIGIBLE),
    ("priority_without_other", 15, Outcome.ISSUED),
])
def test_a_reader_with_empik_gos_code_this_month(app, rule, day, expected):
    library = make_library()
    pool(library, "LEG", MAY_2027)
    pool(library, "EMP", MAY_2027, slug="empik-go")
    rules(library, platforms_rule=rule, priority_until_day=15)
    assert issue_at(app, "R0001", warsaw(2027, 5, 2, 12), slug="empik-go").outcome is Outcome.ISSUED

    result = issue_at(app, "R0001", warsaw(2027, 5, day, 12))
    assert result.outcome is expected
    if expected is Outcome.NOT_ELIGIBLE:
        other = refused(result, Ineligibility.OTHER_PLATFORM)
        assert (other.platform, other.platform_name) == ("empik-go", "Empik Go")
        assert other.eligible_from == (date(2027, 5, 15) if rule == "priority_without_other" else None)


def test_every_refusal_is_logged_with_its_reason(app):
    library = make_library()
    pool(library, "MAY", MAY_2027)
    rules(library, release_day="first_working_day", release_time="10:00")
    issue_at(app, "R0001", warsaw(2027, 5, 4, 9))
    event = db.session.scalar(select(Event).where(Event.kind == "not_eligible"))
    assert '"reason": "not_yet"' in event.details and '"platform": "legimi"' in event.details


def test_this_months_code_is_the_month_its_window_starts_in(app):
    """IBUK Libra's windows may run from the 15th: its code of 15.06–14.07 is June's,
    so under "one a month" it stops a June code of Legimi, not a July one."""
    library = make_library()
    pool(library, "JUN", (date(2027, 6, 1), date(2027, 6, 30)))
    pool(library, "JUL", (date(2027, 7, 1), date(2027, 7, 31)))
    pool(library, "IBUK", (date(2027, 6, 15), date(2027, 7, 14)), slug="ibuk-libra")
    rules(library, platforms_rule="one_per_month")
    assert issue_at(app, "R0001", warsaw(2027, 6, 20, 12), slug="ibuk-libra").outcome is Outcome.ISSUED

    held = refused(issue_at(app, "R0001", warsaw(2027, 6, 21, 12)), Ineligibility.OTHER_PLATFORM)
    assert held.platform == "ibuk-libra"
    assert issue_at(app, "R0001", warsaw(2027, 7, 2, 12)).outcome is Outcome.ISSUED
