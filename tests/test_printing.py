"""The slip as the reader gets it: PDF text read back, the PDF rendered to PNG with
its barcode and QR code decoded, ESC/POS bytes received by a printer on a socket."""
import io
import subprocess
from datetime import date

import pytest
from pypdf import PdfReader

from helpers import closed_port, issue, make_library, make_pool, require_command, warsaw
from kiosk.app.extensions import db
from kiosk.domain.consortium import consortium
from kiosk.wording.slips import slip_for_issuance
from printing.escpos import render_escpos
from printing.pdf import PAPERS, render_pdf
from printing.printers import PrinterError, PrinterSettingError, printer_from_setting
from printing.slip import group_code

CODE = "LGM7Q2XK9PZA"
FEBRUARY = (date(2020, 2, 1), date(2020, 2, 29))


@pytest.fixture
def issued_slip(app):
    """A code issued on 14.02.2020 in the demo-like library, as a slip in Polish."""
    settings = consortium(db.session)
    settings.service_end = date(2021, 1, 2)
    db.session.commit()
    library = make_library(slip_header="Biblioteka Publiczna w Łomiankach")
    make_pool(library, [CODE], FEBRUARY)
    result = issue(app, "12345678", warsaw(2020, 2, 14, 10, 5))

    def slip(language="pl"):
        return slip_for_issuance(db.session, result.issuance_id, language)
    return slip


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_group_code():
    assert group_code("ABCDEFGHIJKL") == "ABCD EFGH IJKL"
    assert group_code("ABCDEF") == "ABCD EF"


@pytest.mark.parametrize("paper", sorted(PAPERS))
def test_pdf_text_has_code_url_deadline_and_polish_letters(issued_slip, paper):
    text = pdf_text(render_pdf(issued_slip(), paper))
    flat = " ".join(text.split())

    assert "LGM7 Q2XK 9PZA" in flat
    assert "https://www.legimi.pl/mazowieckie" in flat
    assert "Aktywuj kod do 29.02.2020" in flat
    assert "Biblioteka Publiczna w Łomiankach" in flat
    assert "najpóźniej do 02.01.2021" in flat
    assert "Wydano 14.02.2020 10:05" in flat
    for word in ("zacząć", "Załóż", "użytkownika", "odebrać", "osobiście", "Wejdź"):
        assert word in flat


def test_pdf_embeds_a_truetype_font(issued_slip):
    reader = PdfReader(io.BytesIO(render_pdf(issued_slip(), "pdf80")))
    fonts = [font.get_object() for font in reader.pages[0]["/Resources"]["/Font"].values()]

    assert len(fonts) >= 3  # regular, bold and monospaced
    for font in fonts:
        assert font["/Subtype"] == "/TrueType", font
        assert "/FontFile2" in font["/FontDescriptor"]  # embedded, so Polish prints anywhere


def test_slip_in_ukrainian_and_english(issued_slip):
    ukrainian = " ".join(pdf_text(render_pdf(issued_slip("uk"), "pdf80")).split())
    english = " ".join(pdf_text(render_pdf(issued_slip("en"), "pdf58")).split())

    assert "Активуйте код до 29.02.2020" in ukrainian and "LGM7 Q2XK 9PZA" in ukrainian
    assert "Activate the code by 29.02.2020" in english


def test_receipt_width_and_length(issued_slip):
    from reportlab.lib.units import mm

    for paper, width in (("pdf80", 80), ("pdf58", 58)):
        box = PdfReader(io.BytesIO(render_pdf(issued_slip(), paper))).pages[0].mediabox
        assert float(box.width) == pytest.approx(width * mm)
        assert 100 * mm < float(box.height) < 400 * mm  # a roll cut to the slip's length
    a6 = PdfReader(io.BytesIO(render_pdf(issued_slip(), "a6"))).pages[0].mediabox
    assert (float(a6.width), float(a6.height)) == pytest.approx((105 * mm, 148 * mm), abs=1)


@pytest.mark.parametrize("paper", sorted(PAPERS))
def test_rendered_png_barcode_and_qr_decode_back(issued_slip, paper, tmp_path):
    import zxingcpp
    from PIL import Image

    pdftoppm = require_command("pdftoppm", "poppler-utils")
    pdf = tmp_path / "slip.pdf"
    pdf.write_bytes(render_pdf(issued_slip(), paper))
    subprocess.run([pdftoppm, "-r", "300", "-png", "-singlefile", str(pdf), str(tmp_path / "slip")], check=True)

    found = {(b.format, b.text) for b in zxingcpp.read_barcodes(Image.open(tmp_path / "slip.png"))}

    assert (zxingcpp.BarcodeFormat.Code128, CODE) in found
    assert (zxingcpp.BarcodeFormat.QRCode, "https://www.legimi.pl/mazowieckie") in found


def test_escpos_over_tcp_has_code_polish_in_cp852_and_ends_with_a_cut(issued_slip, fake_printer):
    printer_from_setting(f"escpos-tcp:127.0.0.1:{fake_printer.port}").print_slip(issued_slip())
    data = fake_printer.wait()

    assert b"LGM7 Q2XK 9PZA" in data
    assert b"\x1bt\x12" in data  # ESC t 18: code page CP852 (Latin 2)
    for word in ("Łomiankach", "zacząć", "Załóż", "osobiście"):
        assert word.encode("cp852") in data, word
    assert b"{B" + CODE.encode() in data  # the printer's own Code 128
    assert data.endswith(b"\x1dV\x00")  # GS V 0: full cut, the last command


def test_escpos_in_ukrainian_uses_a_cyrillic_code_page(issued_slip):
    data = render_escpos(issued_slip("uk"))

    # ESC t 46: CP1251, which has і and ґ (CP866, ESC t 17, has neither)
    assert b"\x1bt\x2e" in data and b"\x1bt\x11" not in data
    assert "Активуйте".encode("cp1251") in data and "Перейдіть".encode("cp1251") in data


def test_escpos_to_a_file(issued_slip, tmp_path):
    device = tmp_path / "lp0"
    device.touch()  # the device exists; a missing one is an error, never created

    printer_from_setting(f"escpos-file:{device}").print_slip(issued_slip())

    assert b"LGM7 Q2XK 9PZA" in device.read_bytes()


def test_a_printer_that_is_off_raises_printer_error(issued_slip):
    with pytest.raises(PrinterError):
        printer_from_setting(f"escpos-tcp:127.0.0.1:{closed_port()}").print_slip(issued_slip())


def test_cups_without_lp_or_queue_raises_printer_error(issued_slip):
    with pytest.raises(PrinterError):
        printer_from_setting("cups:no-such-queue-kodomat").print_slip(issued_slip())


@pytest.mark.parametrize("setting", ["laser", "escpos-tcp:", "escpos-tcp:host:port", "escpos-usb:zz:01", "cups:"])
def test_bad_printer_settings_are_refused(setting):
    with pytest.raises(PrinterSettingError):
        printer_from_setting(setting)


def test_the_deadline_on_the_slip_is_never_after_the_service_end(app):
    settings = consortium(db.session)
    settings.service_end = date(2021, 1, 2)
    db.session.commit()
    library = make_library()
    make_pool(library, [CODE], (date(2021, 1, 1), date(2021, 1, 31)))
    result = issue(app, "12345678", warsaw(2021, 1, 2, 9))

    text = " ".join(pdf_text(render_pdf(slip_for_issuance(db.session, result.issuance_id, "pl"))).split())

    assert "Aktywuj kod do 02.01.2021" in text and "31.01.2021" not in text


def test_a_missing_device_file_is_an_error_and_is_not_created(issued_slip, tmp_path):
    with pytest.raises(PrinterError):
        printer_from_setting(f"escpos-file:{tmp_path / 'no-such-lp0'}").print_slip(issued_slip())
    assert not (tmp_path / "no-such-lp0").exists()
