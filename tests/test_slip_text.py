"""The slip for a reader who comes back every month, read as the reader gets it: the
month named in every language, two devices, what to do with a rejected code, type
large enough for older readers (read from the PDF's own font sizes), a barcode in
whole printer dots (measured on the PDF rendered at 203 dpi), the paper width of a
printer's setting, and ESC/POS bytes decoded back through their code pages."""
import io
import re
import subprocess
from collections import Counter
from datetime import date

import pytest
from flask_babel import force_locale
from pypdf import PdfReader
from reportlab.lib.units import mm

from helpers import PROJECT, issue, make_library, make_pool, require_command, warsaw
from kiosk.app.extensions import db
from kiosk.domain.consortium import consortium
from kiosk.wording.slips import month_name, slip_for_issuance
from printing import printers
from printing.barcodes import code128_modules
from printing.escpos import render_escpos
from printing.pdf import PAPERS, render_pdf
from printing.printers import PrinterSettingError, printer_from_setting

CODE = "LGM7Q2XK9PZA"
DECEMBER = (date(2026, 12, 1), date(2026, 12, 31))
BODY_AT_LEAST = {"pdf80": 10, "pdf58": 8.5, "a6": 10}
SAID = {
    "pl": ["Twój kod Legimi na grudzień 2026",
           "i hasło — albo zaloguj się na swoje konto i wpisz nowy kod.",
           "Kod działa na dwóch urządzeniach.",
           "Kod nie działa? Sprawdź, czy wpisujesz go do 31.12.2026; jeśli tak — zapytaj w bibliotece."],
    "en": ["Your Legimi code for December 2026",
           "and a password — or log in to your existing account and enter the new code.",
           "The code works on two devices.",
           "Code not working? Check that you enter it by 31.12.2026; if you do, ask at the library."],
    "uk": ["Ваш код Legimi на грудень 2026",
           "і пароль — або увійдіть у свій обліковий запис і введіть новий код.",
           "Код працює на двох пристроях.",
           "Код не працює? Перевірте, чи вводите його до 31.12.2026; якщо так — запитайте в бібліотеці."],
}
MONTHS = {
    "pl": "styczeń luty marzec kwiecień maj czerwiec lipiec sierpień wrzesień październik listopad grudzień",
    "en": "January February March April May June July August September October November December",
    "uk": "січень лютий березень квітень травень червень липень серпень вересень жовтень листопад грудень",
}


@pytest.fixture
def december_slip(app):
    """A code of the December 2026 pool, issued on 14.12.2026."""
    settings = consortium(db.session)
    settings.service_end = date(2027, 6, 30)
    db.session.commit()
    library = make_library(slip_header="Biblioteka Publiczna w Łomiankach")
    make_pool(library, [CODE], DECEMBER)
    result = issue(app, "12345678", warsaw(2026, 12, 14, 10, 5))
    return lambda language="pl": slip_for_issuance(db.session, result.issuance_id, language)


def flat_text(data: bytes) -> str:
    pages = PdfReader(io.BytesIO(data)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def sized_lines(data: bytes) -> list[tuple[str, float]]:
    """Each piece of text of the PDF with its font size (the Tf operand × the text
    matrix's scale), as pypdf reads it."""
    found = []

    def visit(text, cm, tm, font, size):
        if text.strip():
            found.append((text.strip(), size * abs(tm[3]) * abs(cm[3])))
    PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=visit)
    return found


@pytest.mark.parametrize("language", ["pl", "en", "uk"])
@pytest.mark.parametrize("paper", sorted(PAPERS))
def test_the_slip_names_the_month_two_devices_logging_in_and_a_rejected_code(december_slip, language, paper):
    text = flat_text(render_pdf(december_slip(language), paper))

    for sentence in SAID[language]:
        assert sentence in text, (paper, sentence)


def test_month_names_in_every_language(app):
    with app.test_request_context():
        for language, names in MONTHS.items():
            with force_locale(language):
                assert [month_name(month) for month in range(1, 13)] == names.split(), language


def test_the_month_is_the_window_s_even_when_issued_in_another(app):
    make_pool(make_library(), [CODE], (date(2026, 1, 15), date(2026, 2, 14)))
    result = issue(app, "12345678", warsaw(2026, 2, 3, 9))

    assert slip_for_issuance(db.session, result.issuance_id, "pl").title == "Twój kod Legimi na styczeń\u00a02026"


@pytest.mark.parametrize("paper", sorted(PAPERS))
def test_type_is_large_enough_and_the_warning_never_smaller_than_the_body(december_slip, paper):
    for language in ("pl", "uk"):
        lines = sized_lines(render_pdf(december_slip(language), paper))
        sizes = [size for _text, size in lines]
        body = [size for text, size in lines if "https://" not in text and "Legimi:" in text]  # step 3
        warning = [size for text, size in lines if text.startswith(("Aktywuj kod do", "Активуйте код до"))]

        assert body and warning, lines
        assert min(sizes) >= BODY_AT_LEAST[paper], (language, min(sizes))
        assert min(body) >= BODY_AT_LEAST[paper]
        assert min(warning) >= max(body)


def test_a6_type_is_at_least_as_large_as_80_mm(december_slip):
    for language in ("pl", "en", "uk"):
        a6 = min(size for _t, size in sized_lines(render_pdf(december_slip(language), "a6")))
        roll = min(size for _t, size in sized_lines(render_pdf(december_slip(language), "pdf80")))
        assert a6 >= roll, language


def test_receipts_stay_a_sensible_length(december_slip):
    for paper in ("pdf80", "pdf58"):
        for language in ("pl", "en", "uk"):
            box = PdfReader(io.BytesIO(render_pdf(december_slip(language), paper))).pages[0].mediabox
            assert float(box.height) < 240 * mm, (paper, language)


def dark_runs(row) -> list[tuple[int, int, bool]]:
    """(start, length, dark) runs of a row of grey pixels."""
    runs, start = [], 0
    for x in range(1, len(row) + 1):
        if x == len(row) or (row[x] < 128) != (row[start] < 128):
            runs.append((start, x - start, row[start] < 128))
            start = x
    return runs


@pytest.mark.parametrize("paper, dots", [("pdf80", 3), ("pdf58", 2)])
def test_barcode_modules_are_whole_printer_dots_with_quiet_zones(december_slip, paper, dots, tmp_path):
    import zxingcpp
    from PIL import Image

    pdftoppm = require_command("pdftoppm", "poppler-utils")
    pdf = tmp_path / "slip.pdf"
    pdf.write_bytes(render_pdf(december_slip(), paper))
    subprocess.run([pdftoppm, "-r", "203", "-gray", "-png", "-singlefile", str(pdf), str(tmp_path / "slip")],
                   check=True)
    image = Image.open(tmp_path / "slip.png").convert("L")
    width, height = image.size
    pixels = image.load()
    rows = [[pixels[x, y] for x in range(width)] for y in range(height)]
    # The barcode's rows: 10 mm of the same row of many bars (text and the QR code vary).
    striped = Counter(tuple(row) for row in rows if sum(dark for *_, dark in dark_runs(row)) >= 20)
    row, repeated = striped.most_common(1)[0]
    assert repeated > 50  # about 80 rows
    runs = dark_runs(row)
    first = next(i for i, run in enumerate(runs) if run[2])
    last = max(i for i, run in enumerate(runs) if run[2])
    symbol = runs[first:last + 1]
    module = min(length for _s, length, _d in symbol)

    assert module == dots
    assert all(length % module == 0 and 1 <= length // module <= 4 for _s, length, _d in symbol)
    assert all(pixel in (0, 255) for pixel in row)  # edges on whole pixels: no grey
    pattern = "".join(("1" if dark else "0") * (length // module) for _s, length, dark in symbol)
    assert pattern == code128_modules(CODE)
    # Quiet zones of 10 modules or more inside the printable width, not just to the edge.
    margin = PAPERS[paper].margin / 72 * 203
    quiet_left, quiet_right = runs[first - 1][1] - margin, runs[last + 1][1] - margin
    assert quiet_left >= 10 * module and quiet_right >= 10 * module, (quiet_left, quiet_right)
    found = {(b.format, b.text) for b in zxingcpp.read_barcodes(image)}
    assert (zxingcpp.BarcodeFormat.Code128, CODE) in found


@pytest.mark.parametrize("paper, dots", [("80", 3), ("58", 2)])
def test_escpos_barcode_modules_and_quiet_zones(december_slip, paper, dots):
    data = render_escpos(december_slip(), paper)
    modules = 11 + 11 * len(CODE) + 11 + 13  # code set B: start, a symbol a character, check, stop
    head = {"80": 576, "58": 384}[paper]  # dots of the print head at 203 dpi
    barcode = data.index(b"\x1dk")  # GS k: the printer's own barcode

    assert re.findall(rb"\x1dw(.)", data, flags=re.S) == [bytes([dots])]  # GS w n: n dots a module
    assert data.rindex(b"\x1ba", 0, barcode) == data.rindex(b"\x1ba\x01", 0, barcode)  # centred
    assert (head - modules * dots) / 2 >= 10 * dots  # so each quiet zone is 10 modules or more


@pytest.mark.parametrize("setting, kind, target, paper", [
    ("cups:desk", "cups", "desk", "80"),
    ("cups:desk@58", "cups", "desk", "58"),
    ("cups:desk@80", "cups", "desk", "80"),
    ("escpos-tcp:192.168.1.50@58", "escpos-tcp", "192.168.1.50", "58"),
    ("escpos-tcp:192.168.1.50:9101@58", "escpos-tcp", "192.168.1.50", "58"),
    ("escpos-usb:04b8:0202@58", "escpos-usb", "04b8:0202", "58"),
    ("escpos-file:/dev/usb/lp0@58", "escpos-file", "/dev/usb/lp0", "58"),
    ("escpos-file:/dev/usb/lp0", "escpos-file", "/dev/usb/lp0", "80"),
])
def test_a_printer_setting_carries_its_paper_width(setting, kind, target, paper):
    printer = printer_from_setting(setting)
    assert (printer.kind, printer.target, printer.paper) == (kind, target, paper)


@pytest.mark.parametrize("setting", ["cups:desk@57", "cups:desk@100", "browser@58", "cups:@58",
                                     "escpos-tcp:@80", "escpos-usb:04b8:0202@5"])
def test_a_wrong_paper_width_is_refused(setting):
    with pytest.raises(PrinterSettingError):
        printer_from_setting(setting)


def test_a_58_mm_printer_gets_the_58_mm_slip(december_slip, tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(printers, "_print_cups", lambda queue, pdf: sent.append((queue, pdf)))
    printer_from_setting("cups:desk@58").print_slip(december_slip())
    device = tmp_path / "lp0"
    device.touch()
    printer_from_setting(f"escpos-file:{device}@58").print_slip(december_slip())

    queue, pdf = sent[0]
    assert queue == "desk"
    assert float(PdfReader(io.BytesIO(pdf)).pages[0].mediabox.width) == pytest.approx(58 * mm)
    assert device.read_bytes() == render_escpos(december_slip(), "58")
    assert b"\x1dw\x02" in device.read_bytes()


CODECS = {18: "cp852", 46: "cp1251"}  # ESC t n as the printer reads it, and Python's codec


def escpos_text(data: bytes) -> tuple[str, set[int]]:
    """The text a printer prints from `data`: raster images (GS v 0) dropped, each
    stretch between code-page selections (ESC t n) decoded with that page's codec."""
    raster = re.compile(rb"\x1dv0.(.)(.)(.)(.)", re.S)
    while (match := raster.search(data)) is not None:
        x_bytes, rows = match[1][0] + 256 * match[2][0], match[3][0] + 256 * match[4][0]
        data = data[:match.start()] + data[match.end() + x_bytes * rows:]
    parts = re.split(rb"\x1bt(.)", data, flags=re.S)
    pages = {part[0] for part in parts[1::2]}
    assert pages <= set(CODECS), f"code pages this test cannot read: {pages - set(CODECS)}"
    text = parts[0].decode("ascii")
    for page, chunk in zip(parts[1::2], parts[2::2]):
        text += chunk.decode(CODECS[page[0]])
    return text, pages


def _plain(text: str) -> str:
    """Without white space (lines wrap anywhere), dashes as the printer gets them."""
    return "".join(text.replace("—", "-").replace("·", "-").split())


@pytest.mark.parametrize("paper", ["80", "58"])
def test_escpos_decodes_back_to_the_polish_and_ukrainian_slip(december_slip, paper):
    for language, expected_pages in (("pl", {18}), ("uk", {18, 46})):
        slip = december_slip(language)
        text, pages = escpos_text(render_escpos(slip, paper))
        printed = _plain(text)

        assert pages == expected_pages, language  # the header "…Łomiankach" is Polish in both
        for field in (slip.header, slip.title, slip.warning, slip.steps_title, *slip.steps,
                      slip.access_note, slip.devices_note, slip.help_note, slip.issued_line):
            assert _plain(field) in printed, (language, field)
        assert "?" not in text.replace("Kod nie działa?", "").replace("Код не працює?", "")


def test_the_readme_names_the_code_pages_escpos_sends():
    readme = " ".join((PROJECT / "README.md").read_text(encoding="utf-8").split())

    assert "Polish in code page 852 (ESC t 18) and Ukrainian in 1251 (ESC t 46)" in readme
    assert {18: "cp852", 46: "cp1251"} == CODECS


def test_on_the_last_day_the_slip_says_today(app):
    from helpers import codes

    library = make_library("lib")
    make_pool(library, codes("LAST", 2), (warsaw(2020, 1, 2).date(), warsaw(2020, 1, 31).date()))
    result = issue(app, "12345678", warsaw(2020, 1, 31, 15), library="lib")

    with app.test_request_context():
        last_day = slip_for_issuance(db.session, result.issuance_id, "pl", now=warsaw(2020, 1, 31, 15))
        day_before = slip_for_issuance(db.session, result.issuance_id, "en", now=warsaw(2020, 1, 30, 15))
        last_day_en = slip_for_issuance(db.session, result.issuance_id, "en", now=warsaw(2020, 1, 31, 15))

    assert last_day.warning.startswith("Aktywuj kod dziś, 31.01.2020")
    assert "today" not in day_before.warning and "today, 31.01.2020" in last_day_en.warning
