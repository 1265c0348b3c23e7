"""Hostile input and abuse: every upload costs bounded memory and imports nothing,
no reader's code is shown to a stranger, no stranger locks a user out, one card is
one reader whatever its digits, and odd input gets a 400 with words, never a 500."""
from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
import unicodedata
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from helpers import (TEST, codes, counts, csv_file, issue, login, make_library, make_pool, panel_file, post,
                     serving, signed_in, this_month, token_of, warsaw, write, xlsx_file)
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.accounts import FAILURES_PER_ADDRESS
from kiosk.domain.clock import utcnow
from kiosk.domain.pool_files import ImportProblem, ImportRefused, prepare_pool
from kiosk.domain.readers import normalise_card
from kiosk.storage.models import Event, Issuance, Library, LimitHit, Pool

MEMORY_LIMIT_MIB = 256
PROJECT = Path(__file__).resolve().parent.parent


# -- hostile files ----------------------------------------------------------------

def _with_sheet(data: bytes, change) -> bytes:
    """The workbook with its first sheet's XML rewritten by change(xml)."""
    source, buffer = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = change(content.decode()).encode()
            target.writestr(item, content)
    return buffer.getvalue()


def dimension_bomb() -> bytes:
    """4 KiB that claim a sheet of 1,048,576 rows by 16,384 columns."""
    return _with_sheet(xlsx_file([["Kod"], ["x"]]), lambda xml: re.sub(
        r'<dimension ref="[^"]+"/>', '<dimension ref="A1:XFD1048576"/>', xml))


def wide_rows() -> bytes:
    """Tens of KiB of rows 16,384 cells wide."""
    row = "<row>" + "<c><v>1</v></c>" * 16384 + "</row>"
    return _with_sheet(xlsx_file([["Kod"]]), lambda xml: re.sub(
        r"<sheetData>.*</sheetData>", "<sheetData>" + row * 40 + "</sheetData>", xml, flags=re.S))


def million_rows() -> bytes:
    return b"Kod\n" + b"ABCDEF1\n" * 1_000_000


def formula_cell() -> bytes:
    """A code cell holding a formula that was never calculated (no cached value)."""
    book = Workbook()
    book.active.append(["Kod"])
    book.active.append(["CODE000001"])
    book.active["A3"] = '=CONCATENATE("CODE","000002")'
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def control_characters() -> bytes:
    return "Kod\nCODE\x01000001\nCODE000002\n".encode()


def _sheet_data(body: str) -> bytes:
    return _with_sheet(xlsx_file([["Kod"]]), lambda xml: re.sub(
        r"<sheetData>.*</sheetData>", "<sheetData>" + body + "</sheetData>", xml, flags=re.S))


def row_number_jump() -> bytes:
    """A few KiB naming row 999,999,999,999: openpyxl would walk every row before it."""
    return _sheet_data('<row r="1"><c r="A1" t="inlineStr"><is><t>Kod</t></is></c></row>'
                       '<row r="999999999999"><c r="A999999999999" t="inlineStr"><is><t>ABCDEF1</t></is></c></row>')


def empty_cells_far_right() -> bytes:
    """Rows whose only cell is an empty one in column XFD: 16,384-wide rows to build."""
    return _sheet_data("".join(f'<row r="{n}"><c r="XFD{n}"/></row>' for n in range(1, 20_000)))


def one_giant_row() -> bytes:
    """One row of a million cells, which openpyxl would build whole."""
    return _sheet_data('<row r="1">' + "<c><v>1000</v></c>" * 1_000_000 + "</row>")


def csv_one_giant_line() -> bytes:
    return b"ab," * 5_000_000


def csv_too_many_cells() -> bytes:
    return ("\n".join(",".join(["ab"] * 64) for _ in range(20_000))).encode()


def xls_far_cell() -> bytes:
    """5 KiB of XLS with one cell at the last row and column, which xlrd would pad."""
    import xlwt
    book = xlwt.Workbook()
    sheet = book.add_sheet("Kody")
    sheet.write(0, 0, "Kod")
    sheet.write(65535, 255, "ABCDEF1")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


HOSTILE_FILES = {
    "dimension bomb": (dimension_bomb, ImportProblem.BAD_CODE),
    "wide rows": (wide_rows, ImportProblem.TOO_MANY_COLUMNS),
    "1,000,000 rows": (million_rows, ImportProblem.TOO_MANY_ROWS),
    "formula cell": (formula_cell, ImportProblem.FORMULA),
    "control characters": (control_characters, ImportProblem.NOT_SPREADSHEET),
    "row number jump": (row_number_jump, ImportProblem.TOO_MANY_ROWS),
    "empty cells far right": (empty_cells_far_right, ImportProblem.TOO_MANY_COLUMNS),
    "one giant row": (one_giant_row, ImportProblem.TOO_MANY_COLUMNS),
    "csv one giant line": (csv_one_giant_line, ImportProblem.TOO_MANY_COLUMNS),
    "csv too many cells": (csv_too_many_cells, ImportProblem.TOO_MANY_CELLS),
    "xls far cell": (xls_far_cell, ImportProblem.TOO_MANY_COLUMNS),
}

# Reads the file in a process of its own and measures how far reading it raised the
# process's peak memory; the libraries are loaded before the baseline.
PROBE = """
import json, resource, sys
from pathlib import Path
import openpyxl, xlrd
from kiosk.domain.pool_files import ImportRefused, prepare_pool
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    prepare_pool(data, "hostile", None)
    outcome = "accepted"
except ImportRefused as exc:
    outcome = exc.reason.value
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "growth_mib": (after - before) / 1024}))
"""


def measured(path: Path, *argv: str, script: str = PROBE) -> dict:
    done = subprocess.run([sys.executable, "-c", script, str(path), *argv], capture_output=True, text=True,
                          timeout=300, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_a_hostile_file_costs_bounded_memory_and_is_refused(tmp_path, name):
    make, problem = HOSTILE_FILES[name]
    path = tmp_path / "hostile"
    path.write_bytes(make())

    result = measured(path)

    assert result["outcome"] == problem.value
    assert result["growth_mib"] < MEMORY_LIMIT_MIB, result


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_a_hostile_upload_in_the_panel_imports_nothing_and_says_why(app, signed_in_admin, name):
    library = make_library("aaa")
    client = signed_in_admin(library)
    before = counts()

    page = post(client, "/admin/aaa/import", {"month": f"{this_month()[0]:%Y-%m}",
                                              "file": (io.BytesIO(HOSTILE_FILES[name][0]()), "kody.xlsx")},
                token_from="/admin/aaa/import", content_type="multipart/form-data")

    assert page.status_code == 400
    assert 'class="alert"' in page.get_data(as_text=True)
    assert counts()["pools"] == before["pools"] and counts()["codes"] == before["codes"]


def test_a_200_mb_file_at_the_command_line_is_refused_before_it_is_read(app, runner, tmp_path):
    make_library("lib")
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: 200 MB as far as anyone asking knows
    before = counts()
    script = PROBE.replace("data = Path(sys.argv[1]).read_bytes()\n", "").replace(
        "    prepare_pool(data, \"hostile\", None)\n",
        "    from kiosk.cli.codes import read_upload\n    prepare_pool(read_upload(Path(sys.argv[1])), 'x', None)\n")

    result = measured(big, script=script)
    refused = runner.invoke(main, ["import-codes", str(big), "--library", "lib", "--month", "2020-01"])

    assert result["outcome"] == ImportProblem.TOO_LARGE.value and result["growth_mib"] < 16
    assert refused.exit_code == 1 and "Plik jest za duży (najwyżej 16 MB)" in refused.output
    assert counts() == before


def test_a_utf16_csv_from_excel_is_read():
    data = "Kod\tWażny od\tWażny do\nUNI0000001\t01.02.2020\t29.02.2020\n".encode("utf-16")

    prepared = prepare_pool(data, "unicode.txt", None)

    assert prepared.codes == ["UNI0000001"] and str(prepared.valid_until) == "2020-02-29"


def test_too_many_shared_strings_are_refused_before_openpyxl_loads_them():
    from kiosk.domain.xlsx_shape import ShapeError, check_shared_strings

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                         '2006/main">' + "<si><t>x</t></si>" * 700_001 + "</sst>")
    with pytest.raises(ShapeError) as caught:
        check_shared_strings(zipfile.ZipFile(buffer), 600_000)
    assert caught.value.kind == "too_many_cells"


def test_a_formula_with_its_calculated_value_is_read_as_that_value():
    data = _with_sheet(xlsx_file([["Kod"], ["CODE000001"]]), lambda xml: re.sub(
        r"<sheetData>.*</sheetData>",
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Kod</t></is></c></row>'
        '<row r="2"><c r="A2" t="str"><f>"CODE"&amp;"000002"</f><v>CODE000002</v></c></row></sheetData>',
        xml, flags=re.S))

    prepared = prepare_pool(data, "f.xlsx", (warsaw(2020, 1, 1).date(), warsaw(2020, 1, 31).date()))

    assert prepared.codes == ["CODE000002"]


def test_a_register_keeps_a_calculated_blocked_flag_and_far_expiry_dates(app):
    from kiosk.domain.registry import prepare_cards

    data = _with_sheet(xlsx_file([["Karta", "Zablokowana", "Ważna do"]]), lambda xml: re.sub(
        r"<sheetData>.*</sheetData>",
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Karta</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>Zablokowana</t></is></c><c r="C1" t="inlineStr"><is><t>Ważna do</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>12345678</t></is></c>'
        '<c r="B2" t="str"><f>IF(1=1,"tak","nie")</f><v>tak</v></c>'
        '<c r="C2" t="inlineStr"><is><t>9999-12-31</t></is></c></row>'
        '<row r="3"><c r="A3" t="inlineStr"><is><t>87654321</t></is></c>'
        '<c r="C3" t="inlineStr"><is><t>31.12.1999</t></is></c></row></sheetData>', xml, flags=re.S))

    prepared = prepare_cards(data, card_pattern=None, check_digit=None, pepper="p")

    assert prepared.blocked == 1 and prepared.with_expiry == 2


@pytest.mark.parametrize("pattern", [r"\d{8}(?:\d{5})?", r"(?:\d{4}){2}", r"(?:[A-Z]{2}\d{3})?\d{6}"])
def test_real_card_patterns_are_accepted(pattern):
    from kiosk.domain.cards import check_card_pattern

    check_card_pattern(pattern)


def test_a_formula_cell_is_refused_with_its_row():
    with pytest.raises(ImportRefused) as caught:
        prepare_pool(formula_cell(), "f.xlsx", (warsaw(2020, 1, 1).date(), warsaw(2020, 1, 31).date()))
    assert caught.value.reason is ImportProblem.FORMULA and caught.value.details["row"] == 3


# -- the request size ------------------------------------------------------------------

def test_a_request_over_the_limit_is_refused_with_a_sentence(app, client):
    big = client.post("/login", data=b"x" * (17 * 1024 * 1024), content_type="application/x-www-form-urlencoded")

    assert big.status_code == 413 and "Plik jest za duży" in big.get_data(as_text=True)


def test_the_server_refuses_a_100_mb_body_before_reading_it(app):
    from waitress.server import create_server

    from kiosk.app.factory import waitress_options

    server = create_server(app, host="127.0.0.1", port=0, threads=2, **waitress_options(app))
    thread = threading.Thread(target=serving, args=(server,), daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as sock:
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: 104857600\r\n\r\n" + b"x" * 1024)
            answer = sock.recv(4096)  # answered with only 1 KiB of the 100 MB sent
    finally:
        server.close()
    assert answer.startswith(b"HTTP/1.1 413")


# -- card numbers in any script ------------------------------------------------------------

def every_decimal_digit() -> list[str]:
    return [chr(point) for point in range(sys.maxunicode + 1) if chr(point).isdecimal()]


def test_every_unicode_decimal_digit_is_the_ascii_digit():
    digits = every_decimal_digit()
    assert len(digits) > 600  # every script's digits, full-width and mathematical ones too
    for digit in digits:
        value = str(unicodedata.decimal(digit))
        assert normalise_card(digit * 8) == value * 8, (hex(ord(digit)), unicodedata.name(digit, "?"))


def test_one_card_typed_in_other_digits_is_one_reader(app):
    library = make_library("lib")
    make_pool(library, codes("UNI", 5), this_month())
    ascii_card = "12345678"
    scripts = [ascii_card, "１２３４５６７８", "١٢٣٤٥٦٧٨", "۱۲۳۴۵۶۷۸", "१२३४५६७८", "১২৩৪৫৬৭৮", "𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖"]

    results = [issue(app, card, utcnow(), library="lib") for card in scripts]

    assert {result.code for result in results} == {results[0].code}
    assert db.session.scalar(select(func.count()).select_from(Issuance)) == 1
    assert issue(app, "12345678Ą", utcnow(), library="lib").outcome.value == "card_refused"


# -- the card pattern ---------------------------------------------------------------------------

def test_a_catastrophic_card_pattern_is_refused_when_saved(app, signed_in_admin, runner):
    library = make_library("aaa")
    client = signed_in_admin(library)
    form = {"name": "A", "card_check": "format", "low_pool_percent": "10", "kiosk_idle_seconds": "30",
            "desk_printer": "browser"}

    nested = post(client, "/admin/aaa/settings", {**form, "card_pattern": r"(\d+)+"},
                  token_from="/admin/aaa/settings")
    cli = runner.invoke(main, ["add-library", "bbb", "--name", "B", "--card-pattern", r"(\d+)+"])
    fine = post(client, "/admin/aaa/settings", {**form, "card_pattern": r"(?:29|30)\d{8}"},
                token_from="/admin/aaa/settings")

    assert nested.status_code == 400 and "Wzorzec numeru karty jest błędny." in nested.get_data(as_text=True)
    assert cli.exit_code == 1
    assert fine.status_code == 302


def test_a_pattern_saved_before_the_check_still_cannot_stall_a_kiosk(app):
    library = make_library("aaa")
    library.card_pattern = r"(\d+)+$"  # as an older version would have let it be saved
    db.session.commit()
    make_pool(library, codes("RE", 2), this_month())

    started = time.perf_counter()
    result = issue(app, "1" * 27 + "x", utcnow(), library="aaa")

    # Python's own engine takes minutes on this; RE2 is linear. A generous bound.
    assert time.perf_counter() - started < 2
    assert result.outcome.value == "card_refused"


# -- readers' codes at the kiosk ------------------------------------------------------------------

def scan(client, card: str, entry: str):
    return post(client, "/kiosk/scan", {"card": card, "entry": entry}, token_from="/kiosk/").get_data(as_text=True)


def test_a_typed_number_never_shows_another_reader_s_code(app, enrolled_kiosk):
    library = make_library("aaa")
    make_pool(library, codes("TYP", 3), this_month())
    reader = issue(app, "12345678", utcnow(), library="aaa")
    client, _ = enrolled_kiosk(library)

    typed = scan(client, "12345678", "typed")
    forged = scan(client, "12345678", "nonsense")
    scanned = scan(client, "12345678", "scan")

    assert reader.code not in typed and "Ta karta ma już kod na ten miesiąc" in typed
    assert reader.code not in forged
    assert reader.code in scanned.replace(" ", "")
    assert db.session.scalar(select(Issuance.print_count)) == 2  # the scan's reprint only


def test_with_a_card_register_a_typed_number_shows_the_code(app, enrolled_kiosk):
    library = make_library("aaa", card_check="registry")
    make_pool(library, codes("REG", 2), this_month())
    from kiosk.domain.registry import import_cards, prepare_cards
    prepared = prepare_cards(csv_file([["Karta"], ["12345678"]]), card_pattern=None, check_digit=None,
                             pepper=app.config["READER_PEPPER"])
    library_id = library.id
    write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))
    reader = issue(app, "12345678", utcnow(), library="aaa")
    client, _ = enrolled_kiosk(library)

    assert reader.code in scan(client, "12345678", "typed").replace(" ", "")


def test_one_card_scanned_ten_times_prints_twice_then_pauses(app, enrolled_kiosk):
    library = make_library("aaa")
    make_pool(library, codes("PAU", 3), this_month())
    client, _ = enrolled_kiosk(library)

    screens = [scan(client, "12345678", "scan") for _ in range(10)]

    shown = [screen for screen in screens if "slip-code" in screen]
    assert len(shown) == 2 and all("Kiosk przyjmie kartę znowu za" in s for s in screens[2:])
    assert db.session.scalar(select(Issuance.print_count)) == 2


def test_reprints_count_toward_the_kiosk_pause(app, enrolled_kiosk):
    library = make_library("aaa")
    make_pool(library, codes("PAU", 10), this_month())
    readers = [f"{20000000 + n}" for n in range(8)]
    for card in readers:
        issue(app, card, utcnow(), library="aaa")
    client, _ = enrolled_kiosk(library)

    screens = [scan(client, card, "scan") for card in readers]  # eight readers' reprints in a minute

    assert sum("slip-code" in screen for screen in screens) == 6
    assert all("Kiosk przyjmie kartę znowu za" in screen for screen in screens[6:])


def test_enumerating_cards_at_a_kiosk_shows_no_code_and_ends_in_a_pause(app, enrolled_kiosk):
    library = make_library("aaa")
    make_pool(library, codes("ENU", 20), this_month())
    readers = [f"{10000000 + n}" for n in range(12)]
    handed = {issue(app, card, utcnow(), library="aaa").code for card in readers}
    client, _ = enrolled_kiosk(library)

    pages = [scan(client, card, "typed") for card in readers]

    assert not any(code in page.replace(" ", "") for page in pages for code in handed)
    assert "Kiosk przyjmie kartę znowu za" in pages[-1]


# -- accounts and links ---------------------------------------------------------------------------

def from_address(client, address: str):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_a_stranger_s_wrong_passwords_do_not_lock_the_user_out(app):
    library = make_library("aaa")
    _client, user, password = signed_in(app, "desk", library)
    stranger = from_address(app.test_client(), "203.0.113.7")
    for _ in range(8):
        assert login(stranger, user.username, "guess").status_code == 401
    locked_stranger = login(stranger, user.username, password)
    real_user = from_address(app.test_client(), "198.51.100.20")
    second_place = from_address(app.test_client(), "198.51.100.21")

    signed = login(real_user, user.username, password)
    too_soon = login(second_place, user.username, password)  # the same name, within two seconds
    time.sleep(2.1)
    later = login(second_place, user.username, password)

    assert locked_stranger.status_code == 401 and "Za dużo nieudanych prób" in locked_stranger.get_data(as_text=True)
    assert signed.status_code == 302
    # The slower path for a name under attack: one attempt every two seconds, not a lock.
    assert "Spróbuj ponownie za kilka sekund" in too_soon.get_data(as_text=True)
    assert later.status_code == 302


def test_a_sign_in_never_waits_for_a_busy_hasher(app):
    from kiosk.domain.accounts import HASHING

    library = make_library("aaa")
    _client, user, password = signed_in(app, "desk", library)
    HASHING.acquire()  # another sign-in is hashing
    try:
        started = time.perf_counter()
        busy = login(from_address(app.test_client(), "198.51.100.30"), user.username, password)
        waited = time.perf_counter() - started
    finally:
        HASHING.release()

    assert busy.status_code == 503 and "Spróbuj ponownie za kilka sekund" in busy.get_data(as_text=True)
    assert waited < 2  # a thread of the server is never parked for long


def test_one_address_trying_many_names_is_stopped(app):
    library = make_library("aaa")
    _client, user, password = signed_in(app, "desk", library)
    sprayer = from_address(app.test_client(), "203.0.113.9")
    for n in range(FAILURES_PER_ADDRESS.count):
        login(sprayer, f"name{n}", "guess")

    assert "Za dużo nieudanych prób" in login(sprayer, user.username, password).get_data(as_text=True)
    assert login(from_address(app.test_client(), "198.51.100.21"), user.username, password).status_code == 302


def test_failed_sign_ins_keep_no_typed_text_and_are_counted_not_logged_each(app):
    make_library("aaa")
    client = from_address(app.test_client(), "203.0.113.11")
    for _ in range(6):
        login(client, "Tr0ub4dor&3-typed-into-the-name", "x")

    stored = " ".join(db.session.scalars(select(Event.details)).all()) + " ".join(
        db.session.scalars(select(Event.actor)).all()) + " ".join(db.session.scalars(select(LimitHit.subject)).all())
    assert "Tr0ub4dor" not in stored and "tr0ub4dor" not in stored
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "login_failed")) == 0
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "login_locked")) == 1


def test_a_copied_session_cookie_dies_at_logout(app, signed_in_desk):
    library = make_library("aaa")
    client = signed_in_desk(library)
    cookie = client.get_cookie("session")
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    assert copy.get("/desk/aaa/").status_code == 200

    post(client, "/logout", token_from="/desk/aaa/")

    assert copy.get("/desk/aaa/").status_code == 302


def test_a_forged_host_never_reaches_an_enrolment_link(app, signed_in_admin):
    app.config["KIOSK_BASE_URL"] = "https://kodomat.example.org"
    library = make_library("aaa")
    client = signed_in_admin(library)

    token = token_of(client, "/admin/aaa/kiosks")
    # The same signed-in browser, its request sent with another Host (a forged
    # header, or a proxy passing one on): the cookie goes along.
    client.set_cookie("session", client.get_cookie("session").value, domain="evil.example")
    page = client.post("/admin/aaa/kiosks", data={"name": "Hol", "printer": "browser", "csrf_token": token},
                       base_url="http://evil.example", headers={"X-Forwarded-Host": "evil.example"})
    text_of_page = page.get_data(as_text=True)

    assert page.status_code == 200 and "evil.example" not in text_of_page
    assert "https://kodomat.example.org/kiosk/enrol/" in text_of_page


def test_pages_with_a_secret_or_a_code_are_never_cached(app, signed_in_admin, signed_in_desk):
    library = make_library("aaa")
    admin, desk = signed_in_admin(library), signed_in_desk(library)
    make_pool(library, codes("NS", 2), this_month())

    answers = [
        admin.post("/admin/aaa/kiosks", data={"name": "K", "printer": "browser",
                                              "csrf_token": token_of(admin, "/admin/aaa/kiosks")}),
        admin.post("/admin/aaa/users", data={"username": "nowa", "role": "desk",
                                             "csrf_token": token_of(admin, "/admin/aaa/users")}),
        post(admin, "/admin/aaa/import", {"month": f"{this_month()[0]:%Y-%m}",
                                          "file": (io.BytesIO(panel_file(codes("PRE", 2))), "k.xlsx")},
             token_from="/admin/aaa/import", content_type="multipart/form-data"),
        post(desk, "/desk/aaa/issue", {"card": "12345678"}, token_from="/desk/aaa/"),
        admin.get("/admin/aaa/events"),
        admin.get("/login"),
    ]

    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.headers.get("Cache-Control") == "no-store" for a in answers)


# -- reports survive any text ---------------------------------------------------------------------

def test_reports_survive_control_characters_in_names(app, signed_in_admin):
    library = make_library("aaa")
    make_pool(library, codes("CC", 2), this_month(), filename="kody\x07\x1b[31m.xlsx")
    library.name = "Biblioteka\x01\x02\x0b na Woli"
    db.session.commit()
    admin = signed_in_admin(library)
    consortium, _user, _ = signed_in(app, "consortium_admin")
    month = f"{this_month()[0]:%Y-%m}"

    own = admin.get(f"/admin/aaa/report.xlsx?month={month}")
    everyone = consortium.get(f"/admin/report.xlsx?month={month}")

    for answer in (own, everyone):
        assert answer.status_code == 200
        book = load_workbook(io.BytesIO(answer.data))
        values = [str(cell.value) for sheet in book for row in sheet.iter_rows() for cell in row if cell.value]
        assert any("Biblioteka na Woli" in value for value in values)


# -- no 500 on odd input, anywhere --------------------------------------------------------------------

HOSTILE_VALUES = {
    "nul": "nul\x00byte",
    "long": "ą" * 5_000,  # under the edge's cap: reaches every view and its checks
    "just_over": "x" * 400,
    "ancient": "0001-01-01",
    "far": "9999-12",
    "control": "\x1b[2J\x07",
}
FIELDS = sorted({name for path in (PROJECT / "templates").rglob("*.html")
                 for name in re.findall(r'name="([a-z_]+)"', path.read_text())} - {"csrf_token"}
                | {"month", "from", "to", "kind", "who", "code", "paper", "lang", "next", "token"})


def _routes(app, library, ids):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        values = {}
        for argument in rule.arguments:
            values[argument] = {"slug": library.slug, "code": "pl", "token": "x" * 32}.get(argument, ids)
        with app.test_request_context():
            from flask import url_for
            yield url_for(rule.endpoint, **values), sorted(rule.methods - {"HEAD", "OPTIONS"})


@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=list(HOSTILE_VALUES))
def test_no_route_answers_500_to_odd_input(app, value, signed_in_admin, enrolled_kiosk):
    library = make_library("aaa")
    make_pool(library, codes("ODD", 3), this_month())
    reader = issue(app, "12345678", utcnow(), library="aaa")
    admin = signed_in_admin(library)
    consortium, _user, _ = signed_in(app, "consortium_admin")
    kiosk_client, _ = enrolled_kiosk(library)
    hostile = HOSTILE_VALUES[value]
    failures = []

    clients = [(client, token_of(client, "/login")) for client in (admin, consortium, kiosk_client, app.test_client())]
    query = {field: hostile for field in ("month", "from", "to", "kind", "who", "code", "paper", "lang", "next")}
    for url, methods in _routes(app, library, reader.issuance_id):
        if url == "/logout":
            continue  # it would sign the crawling clients out; it reads no field
        for client, token in clients:
            for method in methods:
                if method == "GET":
                    answer = client.get(url, query_string=query)
                else:
                    data = {**{field: hostile for field in FIELDS}, "csrf_token": token,
                            "file": (io.BytesIO(b"x"), hostile[:300])}
                    answer = client.open(url, method=method, query_string=query, data=data)
                if answer.status_code >= 500:
                    failures.append((method, url, answer.status_code))
    db.session.rollback()
    assert failures == []


def test_a_field_past_the_edge_s_cap_or_with_a_nul_is_a_400_with_words(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    anonymous = app.test_client()

    answers = [
        admin.get("/admin/aaa/events", query_string={"who": "x" * 10_001}),
        post(admin, "/desk/aaa/issue", {"card": "1" * 10_001}, token_from="/desk/aaa/"),
        post(anonymous, "/login", {"username": "nul\x00user", "password": "x"}),
    ]

    for answer in answers:
        assert answer.status_code == 400 and "za długie albo ma niedozwolone znaki" in answer.get_data(as_text=True)


def test_a_nul_or_a_giant_number_in_the_url_is_a_404_not_a_500(app, signed_in_admin, signed_in_desk):
    library = make_library("aaa")
    admin, desk = signed_in_admin(library), signed_in_desk(library)

    answers = [admin.get("/admin/a%00a/settings"), desk.get("/desk/a%00a/"), admin.get("/admin/" + "a" * 300 + "/"),
               desk.get("/desk/aaa/slip/99999999999999999999.pdf"), post(admin, "/admin/aaa/users/99999999999999999999", {"action": "disable"}, token_from="/admin/aaa/users"),
               post(desk, "/desk/aaa/reprint/99999999999999999999", token_from="/desk/aaa/")]

    assert [answer.status_code for answer in answers] == [404] * 6


def test_extreme_dates_are_a_400_with_words(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)

    for url in ("/admin/aaa/report.xlsx?month=0001-01", "/admin/aaa/report.xlsx?month=9999-12",
                "/admin/aaa/events?from=0001-01-01", "/admin/aaa/events?to=9999-12-31"):
        answer = admin.get(url)
        assert answer.status_code == 400, url
        assert 'class="alert"' in answer.get_data(as_text=True)


def test_over_long_names_are_refused_with_a_message(app, signed_in_admin):
    library = make_library("aaa")
    admin = signed_in_admin(library)
    consortium, _user, _ = signed_in(app, "consortium_admin")

    long_name = post(admin, "/admin/aaa/settings", {"name": "B" * 250, "card_check": "format",
                                                    "low_pool_percent": "10", "kiosk_idle_seconds": "30",
                                                    "desk_printer": "browser"}, token_from="/admin/aaa/settings")
    long_consortium = post(consortium, "/admin/consortium", {"name": "K" * 250, "service_end": "",
                                                             "activation_url-legimi": "https://www.legimi.pl/x"},
                           token_from="/admin/", follow_redirects=True)
    long_file = post(admin, "/admin/aaa/import", {"month": f"{this_month()[0]:%Y-%m}",
                                                  "file": (io.BytesIO(panel_file(codes("LONG", 2))),
                                                           "k" * 400 + ".xlsx")},
                     token_from="/admin/aaa/import", content_type="multipart/form-data")

    assert long_name.status_code == 400 and "dłuższa niż 200 znaków" in long_name.get_data(as_text=True)
    assert "dłuższa niż 200 znaków" in long_consortium.get_data(as_text=True)
    assert long_file.status_code == 200 and "k" * 200 in long_file.get_data(as_text=True)
    assert db.session.scalar(select(Library.name).where(Library.slug == "aaa")) == "Biblioteka aaa"
    assert db.session.scalar(select(func.count()).select_from(Pool)) == 0


def test_behind_a_proxy_waitress_passes_the_reader_s_address_on(app):
    """With TRUST_PROXY, `kiosk serve` must not drop X-Forwarded-For: every reader
    would seem to be the proxy, and one address's sign-in limit would lock all out."""
    from waitress.server import create_server
    from werkzeug.middleware.proxy_fix import ProxyFix

    from kiosk.app.factory import waitress_options

    make_library("aaa")
    app.config["TRUST_PROXY"] = True
    served = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # as create_app wraps it behind a proxy
    server = create_server(served, host="127.0.0.1", port=0, threads=2, **waitress_options(app))
    thread = threading.Thread(target=serving, args=(server,), daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.effective_port}"
        import http.cookiejar
        import urllib.parse
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = opener.open(base + "/login", timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        for address in ("192.0.2.10", "192.0.2.11"):
            request = urllib.request.Request(base + "/login", headers={"X-Forwarded-For": address},
                                             data=urllib.parse.urlencode({"username": "x", "password": "y",
                                                                          "csrf_token": token}).encode())
            try:
                opener.open(request, timeout=10)
            except urllib.error.HTTPError as refused:
                assert refused.code == 401
    finally:
        server.close()
    db.session.rollback()  # see what the server wrote
    subjects = set(db.session.scalars(select(LimitHit.subject).where(LimitHit.kind == "login_failures_address")))
    assert subjects == {"192.0.2.10", "192.0.2.11"}


def test_a_kiosk_page_from_before_an_upgrade_reloads_between_readers(app, enrolled_kiosk):
    library = make_library("aaa")
    client, _ = enrolled_kiosk(library)
    current = app.config["ASSET_VERSION"]

    old_page = client.get("/kiosk/screen", headers={"HX-Request": "true"})
    stale = client.get("/kiosk/screen", headers={"HX-Request": "true", "X-Kodomat-Version": "0ld"})
    fresh = client.get("/kiosk/screen", headers={"HX-Request": "true", "X-Kodomat-Version": current})

    assert old_page.headers.get("HX-Refresh") == "true" and stale.headers.get("HX-Refresh") == "true"
    assert "HX-Refresh" not in fresh.headers
    assert f"kiosk.js?v={current}" in client.get("/kiosk/").get_data(as_text=True)
