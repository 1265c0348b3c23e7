"""Retention (`kiosk purge`, the server's daily purge): what identifies readers goes
after the kept months, the reports of those months stay the same, today's data is
never touched, and one purge happens a day however many processes try."""
from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.orm import Session

from helpers import (TEST, codes, import_file, make_library, make_pool, panel_file, post, signed_in, warsaw,
                     write)
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.actors import Actor
from kiosk.domain.clock import add_months, local_day, month_window, utcnow
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.issuing import issue_code, replace_code
from kiosk.domain.readers import reader_key
from kiosk.domain.report_figures import library_month
from kiosk.domain.reports import CODES_HEADERS, monthly_report
from kiosk.domain.retention import PURGED, cut_off_day, purge, run_purge
from kiosk.domain.settings import RETENTION_RANGE, SettingsRefused
from kiosk.storage.database import configure_engine, run_and_roll_back
from kiosk.storage.models import Base, Channel, Code, Event, Issuance, LimitHit, Platform
from kiosk.storage.remote import ApiKey, IdempotentAnswer, OutboxMessage

NOW = warsaw(2027, 5, 14, 12)  # 24 months kept: the cut-off is 01.05.2025
OLD_MONTHS = [(2025, 1), (2025, 2), (2025, 3), (2025, 4)]
KEPT_MONTHS = [(2025, 5), (2027, 4), (2027, 5)]
NOTE = "pełnomocnik: Jan Kowalski"
VOID_REASON = "zgłosiła Anna Nowak, kod nie działa"
ADDRESS = "203.0.113.77"
EMAIL = "anna.nowak@example.pl"
CARDS = {"A": "10000001", "B": "20000002", "C": "30000003", "D": "40000004"}


def _key(app, who: str) -> str:
    return reader_key(app.config["READER_PEPPER"], CARDS[who])


def _issue(app, who: str, at: datetime, platform: str = "legimi", note: str | None = None) -> int:
    result = write(lambda s: issue_code(s, library_slug="lib", card_number=CARDS[who], channel=Channel.DESK,
                                        actor=TEST, now=at, pepper=app.config["READER_PEPPER"],
                                        platform_slug=platform, note=note))
    assert result.issuance_id, result
    return result.issuance_id


def _build(app) -> dict:
    """Two years of a library: old months with every kind of trace, the cut-off
    month, and the last two months in use."""
    library = make_library("lib")
    empik = db.session.scalar(select(Platform).where(Platform.slug == "empik-go"))
    for n, (year, month) in enumerate(OLD_MONTHS + KEPT_MONTHS):
        window = month_window(year, month)
        make_pool(library, codes(f"L{n}X", 6), window)
    feb = month_window(2025, 2)
    import_file(library, panel_file(codes("EMPX", 3)), window=feb, now=warsaw(2025, 2, 1), platform=empik)
    ids = {
        "a_jan": _issue(app, "A", warsaw(2025, 1, 3, 10), note=NOTE),
        "b_jan": _issue(app, "B", warsaw(2025, 1, 31, 23, 30)),  # the month ends at Warsaw's midnight
        "a_feb": _issue(app, "A", warsaw(2025, 2, 3, 10)),
        "a_feb_empik": _issue(app, "A", warsaw(2025, 2, 4, 10), platform="empik-go"),  # one reader, two platforms
        "b_feb": _issue(app, "B", warsaw(2025, 2, 5, 10)),
        "a_mar": _issue(app, "A", warsaw(2025, 3, 3, 10)),
        "c_apr": _issue(app, "C", warsaw(2025, 4, 3, 10)),
        "d_apr": _issue(app, "D", warsaw(2025, 4, 3, 11)),
        "c_may": _issue(app, "C", warsaw(2025, 5, 2, 10)),
        "a_apr27": _issue(app, "A", warsaw(2027, 4, 2, 10), note="dziś: pełnomocnik"),
        "d_may27": _issue(app, "D", warsaw(2027, 5, 3, 10)),
    }
    library_id = library.id
    ids["b_feb_new"] = write(lambda s: replace_code(s, library_id=library_id, issuance_id=ids["b_feb"],
                                                    reason=VOID_REASON, actor=TEST,
                                                    now=warsaw(2025, 2, 6, 10))).issuance_id
    # C's May code handed out early, on 29 April: C's April waits for the next month's purge.
    write(lambda s: s.execute(update(Issuance).where(Issuance.id == ids["c_may"])
                              .values(issued_at=warsaw(2025, 4, 29, 10))))
    key_id = write(lambda s: _api_key(s, library_id))

    def traces(s):
        record_event(s, kind=EventKind.LOGIN, actor=Actor.staff(1, "ania"), now=warsaw(2025, 3, 1, 8),
                     address=ADDRESS)
        record_event(s, kind=EventKind.LOGIN, actor=Actor.staff(1, "ania"), now=warsaw(2027, 5, 1, 8),
                     address="198.51.100.1")
        for sent, failed, issuance in ((True, False, "a_jan"), (False, True, "a_feb"), (False, False, "a_mar")):
            address = EMAIL if sent or failed else "waiting@example.pl"
            s.add(OutboxMessage(library_id=library_id, issuance_id=ids[issuance], to_address=address, language="pl",
                                created_at=warsaw(2025, 3, 1), next_attempt_at=warsaw(2025, 3, 1),
                                sent_at=warsaw(2025, 3, 1) if sent else None,
                                failed_at=warsaw(2025, 3, 2) if failed else None, last_error=f"550 {address}"))
        s.add(OutboxMessage(library_id=library_id, issuance_id=ids["d_may27"], to_address="d@example.pl",
                            language="pl", created_at=warsaw(2027, 5, 3), next_attempt_at=warsaw(2027, 5, 3),
                            sent_at=warsaw(2027, 5, 3)))
        s.add(IdempotentAnswer(api_key_id=key_id, key="k-old", request_sha256="0" * 64, status=201,
                               body=json.dumps({"code": "L0X000001", "card": CARDS["B"]}), created_at=warsaw(2025, 1, 3)))
        s.add(IdempotentAnswer(api_key_id=key_id, key="k-new", request_sha256="1" * 64, status=201, body="{}",
                               created_at=warsaw(2027, 5, 3)))
        s.add(LimitHit(kind="online_mails", subject=EMAIL, at=warsaw(2025, 2, 1)))
        s.add(LimitHit(kind="kiosk_same_card", subject=_key(app, "B"), at=warsaw(2025, 2, 1)))
        s.add(LimitHit(kind="kiosk_same_card", subject=_key(app, "D"), at=warsaw(2027, 5, 13)))
    write(traces)
    return ids


def _api_key(s, library_id: int) -> int:
    key = ApiKey(library_id=library_id, name="mak", prefix="kdm_xx", secret_sha256="f" * 64, created_at=NOW,
                 created_by="test")
    s.add(key)
    s.flush()
    return key.id


def _dump() -> dict[str, list[tuple]]:
    db.session.commit()
    return {table.name: [tuple(row) for row in db.session.execute(select(table).order_by(*table.primary_key))]
            for table in Base.metadata.sorted_tables}


def _report(month: tuple[int, int]) -> dict[str, list[tuple]]:
    book = load_workbook(io.BytesIO(monthly_report(db.session, year=month[0], month=month[1], library_ids=None,
                                                   now=NOW)))
    return {sheet.title: [row for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets}


def _without_cards(report: dict) -> dict:
    card = CODES_HEADERS.index("Karta")
    return {title: [row[:card] + row[card + 1:] if title == "Wydane kody" else row for row in rows]
            for title, rows in report.items()}


def _figures(month: tuple[int, int]):
    library = db.session.scalar(text("SELECT id FROM libraries"))
    from kiosk.storage.models import Library

    figures = library_month(db.session, db.session.get(Library, library), *month_window(*month), NOW)
    return (figures.unique_readers, figures.reprints, figures.refusals, figures.days, figures.per_kiosk,
            [(pool.total, pool.issued, pool.void, pool.left, pool.expired) for pool in figures.pools],
            [(code.issued_at, code.code, code.channel, code.by, code.voided) for code in figures.codes])


def _kiosk(runner, args: list[str]):
    result = runner.invoke(main, args)
    db.session.remove()  # as the command's process would end
    return result


def _purge(**kwargs):
    return run_purge(db.session, months=kwargs.pop("months", 24), now=kwargs.pop("now", NOW), **kwargs)


def test_purge_removes_what_names_readers_and_keeps_every_report_figure(app):
    ids = _build(app)
    reports = {month: _report(month) for month in OLD_MONTHS + KEPT_MONTHS}
    figures = {month: _figures(month) for month in OLD_MONTHS + KEPT_MONTHS}
    before = _dump()
    assert figures[(2025, 1)][0] == 2 and figures[(2025, 2)][0] == 2 and figures[(2025, 4)][0] == 2

    tried = _purge(dry_run=True)
    assert _dump() == before  # a dry run writes nothing
    done = _purge()

    assert done == tried  # the dry run's counts are the real run's
    assert done.cut_off == cut_off_day(24, NOW) and done.cut_off.isoformat() == "2025-05-01"
    # Jan: A, B; Feb: A twice (two platforms), B, B's replacement; Mar: A; Apr: D (C waits for C's early May code).
    assert (done.issuances, done.events, done.void_reasons, done.outbox, done.api_answers, done.limit_hits) == \
        (8, 2, 1, 3, 1, 2)
    for month in OLD_MONTHS + KEPT_MONTHS:
        assert _figures(month) == figures[month], month
        assert _without_cards(_report(month)) == _without_cards(reports[month]), month
    assert [row[5] for row in _report((2025, 1))["Wydane kody"][1:]] == ["—", "—"]  # no card end any more

    after = _dump()
    issuances = {row.id: row for row in db.session.scalars(select(Issuance))}
    purged = [ids[name] for name in ("a_jan", "b_jan", "a_feb", "a_feb_empik", "b_feb", "b_feb_new", "a_mar",
                                     "d_apr")]
    for issuance_id in purged:
        row = issuances[issuance_id]
        assert row.reader_key.startswith(PURGED) and row.card_hint is None and row.note is None
    # One pseudonym per reader and month, none across months.
    assert issuances[ids["a_feb"]].reader_key == issuances[ids["a_feb_empik"]].reader_key
    assert issuances[ids["b_feb"]].reader_key == issuances[ids["b_feb_new"]].reader_key
    assert issuances[ids["a_jan"]].reader_key != issuances[ids["a_feb"]].reader_key
    # What is still in use, and the month waiting for C's early code, are as they were.
    kept = ("c_apr", "c_may", "a_apr27", "d_may27")
    assert [tuple(r) for r in before["issuances"] if r[0] in {ids[n] for n in kept}] == \
        [tuple(r) for r in after["issuances"] if r[0] in {ids[n] for n in kept}]
    dumped = repr({name: rows for name, rows in after.items() if name != "card_records"})
    for trace in (NOTE, VOID_REASON, ADDRESS, EMAIL, "waiting@example.pl", _key(app, "B"), CARDS["B"],
                  "L0X000001\", \"card"):
        assert trace not in dumped, trace
    assert _key(app, "A") in dumped and _key(app, "D") in dumped and "198.51.100.1" in dumped  # today's
    # A message never sent (mail not set up) goes too: its code expired long ago.
    assert [m.to_address for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))] == \
        ["d@example.pl"]
    void = json.loads(db.session.scalar(select(Event.details).where(Event.kind == "void")))
    assert void == {"code_id": void["code_id"], "issuance_id": ids["b_feb"]}  # the log's look-up by code still works

    event = db.session.scalars(select(Event).where(Event.kind == EventKind.PURGE.value)).one()
    assert json.loads(event.details) == {"months": 24, "cut_off": "2025-05-01", **done.counts()}
    assert event.library_id is None and event.actor == "retention"

    again = _purge()
    assert again.total == 0 and again.issuances == 0
    # A month later C's April is due: C's two codes share one pseudonym, the counts stay.
    april = _figures((2025, 4))
    later = _purge(now=warsaw(2027, 6, 14, 12))
    assert later.issuances == 2 and _figures((2025, 4)) == april
    db.session.commit()
    assert issuances[ids["c_apr"]].reader_key == issuances[ids["c_may"]].reader_key != _key(app, "C")


def test_a_reader_seen_only_before_the_cut_off_is_new_again(app):
    ids = _build(app)
    from kiosk.domain.eligibility import reader_history

    library_id = db.session.scalar(text("SELECT id FROM libraries"))
    assert not reader_history(db.session, library_id, _key(app, "B")).first_timer
    _purge()
    assert reader_history(db.session, library_id, _key(app, "B")).first_timer
    assert not reader_history(db.session, library_id, _key(app, "A")).first_timer  # A came back in 2027
    assert ids


@pytest.mark.parametrize("months", [RETENTION_RANGE[0] - 1, 1, 0, -3, RETENTION_RANGE[1] + 1])
def test_a_purge_shorter_than_the_rules_look_back_is_refused(app, months):
    _build(app)
    before = _dump()
    with pytest.raises(SettingsRefused) as refused:
        _purge(months=months)
    assert refused.value.details == {"low": 24, "high": 120}
    assert _dump() == before


def test_the_daily_purge_happens_once_a_day(app):
    _build(app)
    first = _purge(once_a_day=True)
    assert first.issuances == 8
    assert _purge(once_a_day=True) is None
    assert _purge(once_a_day=True, now=NOW + timedelta(hours=11)) is None  # 23:00 in Warsaw, the same day
    assert _purge(once_a_day=True, now=warsaw(2027, 5, 15, 0, 1)).total == 0  # the next day: purges (nothing)
    kinds = db.session.scalars(select(Event.at).where(Event.kind == EventKind.PURGE.value)).all()
    assert len(kinds) == 2


def test_two_processes_purging_at_once_purge_once(app):
    _build(app)
    expected = _purge(dry_run=True)
    db.session.commit()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    start, results, errors = threading.Barrier(3), [], []

    def work():
        engine = configure_engine(create_engine(url))
        session = Session(engine)
        try:
            start.wait()
            results.append(run_purge(session, months=24, now=NOW, once_a_day=True))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            session.close()
            engine.dispose()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert sorted(results, key=lambda r: r is not None) == [None, None, expected]
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "purge")) == 1
    assert db.session.scalar(select(func.count()).select_from(Issuance)
                             .where(Issuance.reader_key.like(f"{PURGED}%"))) == expected.issuances


def test_the_server_thread_purges_once_and_outlives_a_bad_round(app, caplog):
    """With the real clock: a code of 30 months ago is purged by the server's thread."""
    from kiosk.app.background import start_background

    _thirty_months_ago(app)
    app.config["MAINTENANCE_INTERVAL"] = 0.05
    threads = start_background(app)  # no MAIL_SERVER: the maintenance thread alone
    try:
        maintenance = threads[-1]
        assert [thread.name for thread in threads] == ["kodomat-maintenance"]
        deadline = time.monotonic() + 30
        while maintenance.rounds < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert maintenance.rounds >= 3
    finally:
        for thread in threads:
            thread.stop()
    assert not any(thread.is_alive() for thread in threads)
    db.session.commit()
    assert db.session.scalar(select(Issuance.reader_key)).startswith(PURGED)
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "purge")) == 1

    # A round that fails (a setting below the floor, written by hand) is logged; the thread goes on.
    db.session.execute(text("UPDATE consortium SET retention_months = 3"))
    db.session.commit()
    threads = start_background(app)
    try:
        deadline = time.monotonic() + 30
        while threads[-1].rounds < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threads[-1].rounds >= 2 and threads[-1].is_alive()
    finally:
        for thread in threads:
            thread.stop()
    assert "the daily purge failed" in caplog.text


def _thirty_months_ago(app) -> int:
    """A code handed out 30 months before the real clock's month (for the command and the thread)."""
    library = make_library("lib")
    first = add_months(local_day(utcnow()).replace(day=1), -30)
    make_pool(library, codes("OLD", 2), month_window(first.year, first.month))
    issuance_id = _issue(app, "A", warsaw(first.year, first.month, 2, 12), note=NOTE)
    db.session.commit()
    return issuance_id


def test_kiosk_purge_command(app, runner):
    _thirty_months_ago(app)
    tried = _kiosk(runner, ["purge", "--dry-run"])
    assert tried.exit_code == 0, tried.output
    cut = cut_off_day(24, utcnow()).strftime("%d.%m.%Y")
    assert tried.output == (f"Próba, nic nie zapisano: usunięto by dane czytelników sprzed {cut} (starsze niż "
                            "24 mies.): wydania 1, zdarzenia w dzienniku 0, powody wycofania kodów 0, e-maile 0, "
                            "odpowiedzi API 0, zliczone próby 0.\n")
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "purge")) == 0

    refused = _kiosk(runner, ["purge", "--older-than", "12"])
    assert refused.exit_code == 1
    assert refused.output.startswith("Nic nie usunięto: ") and "od 24 do 120 miesięcy" in refused.output

    kept = _kiosk(runner, ["purge", "--older-than", "36"])  # the code is 30 months old: kept
    assert kept.exit_code == 0 and kept.output.startswith("Usunięto dane czytelników sprzed") and "wydania 0," \
        in kept.output
    done = _kiosk(runner, ["purge"])  # the consortium's 24 months
    assert done.exit_code == 0 and "wydania 1," in done.output
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "purge")) == 2
    assert db.session.scalar(select(Issuance.note)) is None


def test_retention_is_a_consortium_setting_logged_like_the_others(app, runner):
    _build(app)
    db.session.commit()
    shown = _kiosk(runner, ["consortium"])
    assert shown.exit_code == 0 and "dane czytelników: 24 mies." in shown.output
    changed = _kiosk(runner, ["consortium", "--retention-months", "36"])
    assert changed.exit_code == 0 and "dane czytelników: 36 mies." in changed.output
    refused = _kiosk(runner, ["consortium", "--retention-months", "6"])
    assert refused.exit_code == 1 and "24" in refused.output
    db.session.commit()
    logged = [json.loads(d) for d in db.session.scalars(select(Event.details).where(Event.kind == "settings"))]
    assert logged == [{"scope": "consortium", "platform": "legimi", "retention_months": 36}]
    assert db.session.scalar(text("SELECT retention_months FROM consortium")) == 36

    client, _user, _password = signed_in(app, "consortium_admin")
    form = {"name": "Kodomat", "service_end": "", "retention_months": "48"}
    assert post(client, "/admin/consortium", form, token_from="/admin/").status_code == 302
    refused = post(client, "/admin/consortium", {**form, "retention_months": "2"}, token_from="/admin/",
                   follow_redirects=True)
    assert "Nic nie zapisano" in refused.get_data(as_text=True)
    db.session.commit()
    assert db.session.scalar(text("SELECT retention_months FROM consortium")) == 48
    page = client.get("/admin/").get_data(as_text=True)
    assert 'name="retention_months"' in page and 'value="48"' in page and 'min="24"' in page


def test_a_dry_run_in_a_transaction_counts_what_the_purge_would_do(app):
    _build(app)
    counted = run_and_roll_back(db.session, lambda s: purge(s, months=24, now=NOW))
    assert counted.issuances == 8
    assert db.session.scalar(select(func.count()).select_from(Code).where(Code.void_reason.is_not(None))) == 1
