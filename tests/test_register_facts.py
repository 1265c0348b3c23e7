"""Reader facts in the card register: birth date, last loan and debt read from the
library system's export where it has those columns, stored with each card, and the
library told which of them its last import gave. On SQLite and PostgreSQL."""
from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from sqlalchemy import select

from helpers import TEST, csv_file, make_library, post, write, xls_file, xlsx_file
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.clock import utcnow
from kiosk.domain.pool_files import ImportProblem, ImportRefused
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.domain.registry import import_cards, prepare_cards
from kiosk.storage.models import CardRecord, Event, Library
from kiosk.wording.messages import describe_refusal


def load(app, library: Library, data: bytes):
    """The register imported as the panel and the CLI do: read, then one unit of work."""
    prepared = prepare_cards(data, card_pattern=None, check_digit=None, pepper=app.config["READER_PEPPER"])
    library_id = library.id
    return write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))


def record(app, card: str) -> CardRecord:
    key = reader_key(app.config["READER_PEPPER"], normalise_card(card))
    return db.session.scalar(select(CardRecord).where(CardRecord.reader_key == key))


def facts_of(card: CardRecord) -> tuple:
    return card.birth_date, card.last_loan, card.debt_grosze


def refusal(app, data: bytes) -> ImportRefused:
    with pytest.raises(ImportRefused) as refused:
        prepare_cards(data, card_pattern=None, check_digit=None, pepper=app.config["READER_PEPPER"])
    return refused.value


def test_an_xlsx_with_polish_headers_gives_every_fact(app):
    library = make_library("lib")
    data = xlsx_file([
        ["Numer karty", "Ważna do", "Data urodzenia", "Ostatnie wypożyczenie", "Zadłużenie"],
        ["10000001", date(2099, 1, 1), date(1950, 3, 4), date(2026, 1, 15), 12.5],
        ["10000002", None, datetime(2012, 6, 30), None, "12,50 zł"],
        ["10000003", None, "01.02.1990", "2025-12-01", None],
        ["10000004", None, None, None, 0.1 + 0.2],
    ])

    report = load(app, library, data)

    assert report.facts == ("birth_date", "last_loan", "debt") and report.count == 4
    assert facts_of(record(app, "10000001")) == (date(1950, 3, 4), date(2026, 1, 15), 1250)
    # A blank last loan: never borrowed. A blank debt: none.
    assert facts_of(record(app, "10000002")) == (date(2012, 6, 30), None, 1250)
    assert facts_of(record(app, "10000003")) == (date(1990, 2, 1), date(2025, 12, 1), 0)
    assert facts_of(record(app, "10000004")) == (None, None, 30)
    assert db.session.get(Library, library.id).register_facts == "birth_date,last_loan,debt"


def test_headers_written_without_polish_letters_are_found(app):
    """Old systems export "Zadluzenie", "Ostatnie wypozyczenie": "ł" and "l" meet."""
    library = make_library("lib")
    report = load(app, library, csv_file([["Nr karty", "Data urodzenia", "Ostatnie wypozyczenie", "Zadluzenie"],
                                          ["10000001", "01.02.1990", "15.01.2026", "1,50"]]))
    assert report.facts == ("birth_date", "last_loan", "debt")
    assert facts_of(record(app, "10000001")) == (date(1990, 2, 1), date(2026, 1, 15), 150)


def test_a_csv_with_english_headers_and_comma_or_dot_decimals(app):
    library = make_library("lib")
    data = csv_file([
        ["card", "birth_date", "last_loan", "debt"],
        ["20000001", "1980-05-12", "", "3.5"],
        ["20000002", "12.05.1980", "02.01.2026", "1 234,05"],
        ["20000003", "", "", ""],
        ["20000004", "", "", "0"],
    ])

    report = load(app, library, data)

    assert report.facts == ("birth_date", "last_loan", "debt")
    assert facts_of(record(app, "20000001")) == (date(1980, 5, 12), None, 350)
    assert facts_of(record(app, "20000002")) == (date(1980, 5, 12), date(2026, 1, 2), 123405)
    assert facts_of(record(app, "20000003")) == (None, None, 0)
    assert facts_of(record(app, "20000004")) == (None, None, 0)


def test_numbers_of_an_old_xls_are_floats_and_read_as_grosze(app):
    library = make_library("lib")
    data = xls_file([["Karta", "Należności"], ["30000001", 7.0], ["30000002", 0.05], ["30000003", ""]])

    report = load(app, library, data)

    assert report.facts == ("debt",)
    assert [record(app, card).debt_grosze for card in ("30000001", "30000002", "30000003")] == [700, 5, 0]
    assert record(app, "30000001").birth_date is None and record(app, "30000001").last_loan is None
    assert db.session.get(Library, library.id).register_facts == "debt"


def test_a_register_without_facts_stores_none_and_says_so(app):
    library = make_library("lib")

    report = load(app, library, csv_file([["karta", "zablokowana"], ["40000001", "tak"]]))

    assert report.facts == ()
    assert facts_of(record(app, "40000001")) == (None, None, None)
    assert db.session.get(Library, library.id).register_facts is None


def test_a_later_import_without_those_columns_clears_the_facts(app):
    library = make_library("lib")
    load(app, library, csv_file([["karta", "Data urodzenia", "Zadłużenie"], ["50000001", "1990-01-01", "5"]]))
    assert db.session.get(Library, library.id).register_facts == "birth_date,debt"

    load(app, library, csv_file([["karta"], ["50000001"]]))

    db.session.expire_all()
    assert db.session.get(Library, library.id).register_facts is None
    assert facts_of(record(app, "50000001")) == (None, None, None)
    events = db.session.scalars(select(Event.details).where(Event.kind == "import_cards").order_by(Event.id)).all()
    assert '"facts": ["birth_date", "debt"]' in events[0] and '"facts": []' in events[1]


@pytest.mark.parametrize("cell, problem", [
    ("abc", ImportProblem.BAD_DEBT),
    ("12,345", ImportProblem.BAD_DEBT),
    ("12 zł 50 gr", ImportProblem.BAD_DEBT),
    ("-5,00", ImportProblem.NEGATIVE_DEBT),
    ("\u22123", ImportProblem.NEGATIVE_DEBT),
    ("99999999999", ImportProblem.BAD_DEBT),
    ("1" * 50 + "x", ImportProblem.BAD_DEBT),
])
def test_a_bad_debt_is_refused_with_its_row(app, cell, problem):
    refused = refusal(app, csv_file([["karta", "zadłużenie"], ["60000001", "0"], ["60000002", cell]]))

    assert refused.reason is problem and refused.details["row"] == 3
    assert describe_refusal(refused).startswith("Wiersz 3:")


def test_a_negative_or_huge_number_cell_and_a_date_as_debt_are_refused(app):
    negative = refusal(app, xlsx_file([["Karta", "Zadłużenie"], ["60000001", -2.5]]))
    huge = refusal(app, xlsx_file([["Karta", "Zadłużenie"], ["60000001", 0], ["60000002", 1e300]]))
    a_date = refusal(app, xlsx_file([["Karta", "Zadłużenie"], ["60000001", date(2026, 1, 1)]]))

    assert negative.reason is ImportProblem.NEGATIVE_DEBT and negative.details["row"] == 2
    assert huge.reason is ImportProblem.BAD_DEBT and huge.details["row"] == 3
    assert a_date.reason is ImportProblem.BAD_DEBT and a_date.details["row"] == 2


@pytest.mark.parametrize("header", ["Data urodzenia", "Ostatnie wypożyczenie"])
def test_a_bad_date_is_refused_with_its_row_and_nothing_is_imported(app, header):
    library = make_library("lib")
    load(app, library, csv_file([["karta", "zadłużenie"], ["70000001", "1,00"]]))

    with pytest.raises(ImportRefused) as refused:
        load(app, library, csv_file([["karta", header], ["70000002", "2020-01-01"], ["70000003", "31.02.2020"]]))

    assert refused.value.reason is ImportProblem.BAD_DATE and refused.value.details["row"] == 3
    db.session.expire_all()
    assert [facts_of(r) for r in db.session.scalars(select(CardRecord))] == [(None, None, 100)]
    assert db.session.get(Library, library.id).register_facts == "debt"


def test_the_panel_and_the_command_line_say_which_facts_were_read(app, signed_in_admin, runner, tmp_path):
    library = make_library("aaa")
    client = signed_in_admin(library)
    data = csv_file([["karta", "Data urodzenia", "Zadłużenie"], ["80000001", "1990-01-01", "5"]])

    page = post(client, "/admin/aaa/cards", {"file": (io.BytesIO(data), "karty.csv")},
                token_from="/admin/aaa/settings", content_type="multipart/form-data", follow_redirects=True)
    path = tmp_path / "karty.csv"
    path.write_bytes(csv_file([["karta"], ["80000001"]]))
    said = runner.invoke(main, ["import-cards", str(path), "--library", "aaa"])
    db.session.remove()

    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Dane czytelników z pliku: data urodzenia, zadłużenie." in text
    assert 'id="register-facts"' in text
    assert said.exit_code == 0, said.output
    assert "nie podaje daty urodzenia, ostatniego wypożyczenia ani zadłużenia" in said.output
