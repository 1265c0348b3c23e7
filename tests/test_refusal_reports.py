"""Refusals counted by reason: the library rules' "no" (not_eligible events, by the
reason in their details) beside refused cards and empty pools, in the monthly XLSX
report and on the dashboard for this month, each reason named in words. On SQLite
and PostgreSQL."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

from openpyxl import load_workbook

from helpers import TEST, make_library, warsaw, write
from kiosk.app.extensions import db
from kiosk.domain.clock import utcnow
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.report_figures import REFUSALS, RULE_REASONS
from kiosk.domain.reports import REFUSAL_WORDS, monthly_report
from kiosk.wording.names import REFUSAL_NAMES

RULES_SAID = {"not_yet": 3, "too_young": 2, "inactive": 1, "debt": 1, "not_activated": 1, "reserved": 1,
              "other_platform": 1, "no_data": 1}


def refuse(library, at: datetime, kind: EventKind = EventKind.NOT_ELIGIBLE, **details) -> None:
    library_id = library.id
    write(lambda s: record_event(s, kind=kind, actor=TEST, now=at, library_id=library_id, **details))


def not_eligible(library, at: datetime, reason: str | None) -> None:
    details = {"reason": reason} if reason else {}
    refuse(library, at, channel="kiosk", platform="legimi", **details)


def january_report(library) -> dict[str, int]:
    """The XLSX report's table of refusals for January 2020: name -> count."""
    db.session.commit()
    book = load_workbook(io.BytesIO(monthly_report(db.session, year=2020, month=1, library_ids=[library.id],
                                                   now=warsaw(2020, 2, 10))))
    rows = [tuple(cell.value for cell in row) for row in book[library.slug].iter_rows()]
    start = next(n for n, row in enumerate(rows) if row[0] == "Powód")
    table = {}
    for row in rows[start + 1:]:
        if row[0] is None:
            break
        table[row[0]] = row[1]
    return table


def test_every_reason_has_a_name_in_the_report_and_on_screen():
    assert set(RULE_REASONS) == set(RULES_SAID)
    assert set(REFUSALS) <= set(REFUSAL_WORDS) and set(REFUSALS) <= set(REFUSAL_NAMES)


def test_the_report_counts_rule_refusals_by_reason_beside_cards_and_pools(app):
    library, other = make_library("lib"), make_library("inna")
    minute = 0
    for reason, count in RULES_SAID.items():
        for _n in range(count):
            minute += 1
            not_eligible(library, warsaw(2020, 1, 10, 9) + timedelta(minutes=minute), reason)
    not_eligible(library, warsaw(2020, 1, 31, 23, 59), "too_young")  # the month's last minute, in Warsaw
    not_eligible(library, warsaw(2020, 2, 1, 0, 1), "too_young")     # February
    not_eligible(library, warsaw(2019, 12, 31, 23, 59), "debt")      # December
    not_eligible(other, warsaw(2020, 1, 10, 9), "debt")              # another library
    not_eligible(library, warsaw(2020, 1, 11, 9), None)              # a reason not given
    not_eligible(library, warsaw(2020, 1, 11, 10), "moon")           # a reason not known (yet)
    refuse(library, warsaw(2020, 1, 12, 9), EventKind.CARD_REFUSED, reason="expired", channel="desk")
    refuse(library, warsaw(2020, 1, 12, 10), EventKind.NO_CODES_LEFT, platform="legimi")
    refuse(library, warsaw(2020, 1, 12, 11), EventKind.NO_POOL, platform="legimi")

    table = january_report(library)

    assert {REFUSAL_WORDS[reason]: table[REFUSAL_WORDS[reason]] for reason in RULES_SAID} == {
        "zasady: jeszcze nie wydajemy": 3, "zasady: za młody czytelnik": 3, "zasady: brak wypożyczeń": 1,
        "zasady: zadłużenie": 1, "zasady: poprzedni kod nieaktywowany": 1,
        "zasady: rezerwa dla nowych czytelników": 1, "zasady: ma już kod innej platformy": 1,
        "zasady: brak danych o czytelniku": 1}
    assert table["karta: wygasła"] == 1 and table["karta: zablokowana"] == 0
    assert table["brak wolnych kodów"] == 1 and table["brak puli"] == 1
    assert table["zasady: odmowa (bez powodu)"] == 1 and table["moon"] == 1
    assert table["Razem"] == sum(RULES_SAID.values()) + 1 + 1 + 1 + 3


def test_the_dashboard_shows_this_month_s_refusals_by_reason_in_words(app, signed_in_admin):
    library = make_library("lib")
    now = utcnow()
    client = signed_in_admin(library)

    none_yet = client.get("/admin/lib/").get_data(as_text=True)
    for reason in ("too_young", "too_young", "debt"):
        not_eligible(library, now, reason)
    refuse(library, now, EventKind.NO_CODES_LEFT, platform="legimi")
    page = client.get("/admin/lib/").get_data(as_text=True)

    assert "Odmowy w tym miesiącu: 0" in none_yet and "Nikomu nie odmówiono." in none_yet
    assert "Odmowy w tym miesiącu: 4" in page
    table = re.search(r'<table id="refusals">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", table) == [
        ("zasady: za młody czytelnik", "2"), ("zasady: zadłużenie", "1"), ("brak wolnych kodów", "1")]
