"""The slip as ESC/POS commands for receipt printers (python-escpos).

Code pages: Polish letters go in CP852 (ESC t 18) and Cyrillic in CP1251 (ESC t 46,
"WPC1251"), switched per character by python-escpos, which may choose only these
two: CP866, the usual Cyrillic page, has no і or ґ, and left to itself python-escpos
would mix CP866, CP855 and CP1125 within one Ukrainian word. The QR code goes as a
raster image, which every ESC/POS printer prints; the barcode uses the printer's own
Code 128 in whole dots (GS w: 3 a module where it fits, else 2), centred, so its
quiet zones are at least 10 modules. The paper is cut at the end."""
from __future__ import annotations

import contextlib
import io
import textwrap

from escpos.magicencode import Encoder
from escpos.printer import Dummy

from printing.slip import Slip

COLUMNS = {"80": 48, "58": 32}  # characters per line in font A
DOTS = {"80": 576, "58": 384}   # the print head's width at 203 dpi
CODE_PAGES = ("CP852", "CP1251")  # Polish, Cyrillic (Ukrainian)
QUIET_MODULES = 10


def _lines(text: str, width: int) -> str:
    # The printer would break words anywhere; break them where a reader expects,
    # never inside "e-mail". A dash and a middle dot become a hyphen: CP852 has neither.
    plain = text.replace("—", "-").replace("·", "-")
    return "\n".join(textwrap.wrap(plain, width, break_on_hyphens=False)) + "\n"


def _quiet():
    # python-escpos print()s notes on its choices to stdout, once per slip.
    return contextlib.redirect_stdout(io.StringIO())


def code128_module_dots(code: str, paper: str) -> int:
    """Dots per module of the printer's Code 128 (code set B: start, one symbol a
    character, check, stop): 3 when the symbol and quiet zones fit the head, else 2."""
    modules = 11 + 11 * len(code) + 11 + 13
    return 3 if (modules + 2 * QUIET_MODULES) * 3 <= DOTS[paper] else 2


def render_escpos(slip: Slip, paper: str = "80", profile: str | None = None) -> bytes:
    width = COLUMNS[paper]
    p = Dummy(profile=profile) if profile else Dummy()
    pages = p.profile.get_code_pages()
    p.magic.encoder = Encoder({name: pages[name] for name in CODE_PAGES if name in pages})
    p.set(align="center", bold=True)
    p.text(_lines(slip.header, width))
    p.set(align="center", bold=False)
    p.text(_lines(slip.title, width))
    p.set(align="center", bold=True, double_height=True, double_width=True)
    p.text(slip.grouped_code + "\n")
    p.set(align="center", bold=False, normal_textsize=True)
    with _quiet():
        p.barcode("{B" + slip.code, "CODE128", height=60, width=code128_module_dots(slip.code, paper),
                  pos="OFF", function_type="B")
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
    p.text(_lines(" ".join(filter(None, (slip.access_note, slip.devices_note))), width))
    if slip.help_note:
        p.text(_lines(slip.help_note, width))
    p.set(align="center")
    p.text(_lines(slip.issued_line, width))
    p.cut()
    return p.output
