"""The slip as ESC/POS commands for receipt printers (python-escpos).

Polish and Ukrainian letters: python-escpos switches the printer's code page per
character (CP852 for Polish, CP866 for Cyrillic) from the printer's profile. The
QR code goes as a raster image, which every ESC/POS printer prints; the barcode
uses the printer's own Code 128. The paper is cut at the end."""
from __future__ import annotations

import contextlib
import io
import textwrap

from escpos.printer import Dummy

from printing.slip import Slip

COLUMNS = {"80": 48, "58": 32}  # characters per line in font A


def _lines(text: str, width: int) -> str:
    # The printer would break words anywhere; break them where a reader expects.
    return "\n".join(textwrap.wrap(text.replace("—", "-"), width)) + "\n"


def _quiet():
    # python-escpos print()s notes on its choices to stdout, once per slip.
    return contextlib.redirect_stdout(io.StringIO())


def render_escpos(slip: Slip, paper: str = "80", profile: str | None = None) -> bytes:
    width = COLUMNS[paper]
    p = Dummy(profile=profile) if profile else Dummy()
    p.set(align="center", bold=True)
    p.text(_lines(slip.header, width))
    p.set(align="center", bold=False)
    p.text(_lines(slip.title, width))
    p.set(align="center", bold=True, double_height=True, double_width=True)
    p.text(slip.grouped_code + "\n")
    p.set(align="center", bold=False, normal_textsize=True)
    with _quiet():
        p.barcode("{B" + slip.code, "CODE128", height=60, width=2, pos="OFF", function_type="B")
    p.text("\n")
    p.set(align="left", bold=True)
    p.text(_lines(slip.warning, width))
    p.set(align="left", bold=False)
    p.text("\n" + _lines(slip.steps_title, width))
    for number, step in enumerate(slip.steps, 1):
        p.text(_lines(f"{number}. {step}", width))
    p.set(align="center")
    with _quiet():
        p.qr(slip.activation_url, size=5, native=False)  # centred by the alignment above
    p.text(_lines(slip.activation_url, width))
    p.set(align="left")
    p.text(_lines(slip.access_note, width))
    p.set(align="center")
    p.text(_lines(slip.issued_line, width))
    p.cut()
    return p.output
