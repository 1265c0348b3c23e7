"""The slip as a PDF: 80 mm and 58 mm receipt rolls (the page is as long as the
slip) and A6. Text in an embedded TrueType font; the barcode and the QR code are
drawn as vectors, so they stay sharp on any printer."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

from reportlab.lib.pagesizes import A6
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from printing.barcodes import code128_modules, qr_matrix
from printing.fonts import slip_fonts
from printing.slip import Slip


@dataclass(frozen=True)
class Paper:
    width: float
    margin: float
    text_size: float       # the body text; nothing on the slip is smaller
    fixed_height: float | None = None  # None: a receipt roll, as long as needed
    min_text_size: float | None = None  # a fixed page may shrink its type down to this
    leading: float = 1.25  # line height ÷ type size
    padding: float = 0.3   # space under a paragraph ÷ type size


# The printable width of the rolls is the print head's: 72 mm (576 dots at 203 dpi) on
# 80 mm paper, 48 mm (384 dots) on 58 mm paper. Type for older readers: body 10 pt on
# 80 mm, 8.5 pt on 58 mm, and A6 never smaller than 80 mm.
PAPERS = {
    "pdf80": Paper(width=80 * mm, margin=4 * mm, text_size=10),
    "pdf58": Paper(width=58 * mm, margin=5 * mm, text_size=8.5),
    "a6": Paper(width=A6[0], margin=6 * mm, text_size=11, fixed_height=A6[1], min_text_size=10,
                leading=1.16, padding=0.12),  # fits at 10 pt
}

PRINTER_DOT = 72 / 203  # one dot of a 203 dpi receipt printer, in points (25.4/203 mm)
QUIET_MODULES = 10      # Code 128's quiet zone, each side


def barcode_module_dots(modules: int, width: float) -> int:
    """Whole printer dots per Code 128 module: 3 when the symbol and its quiet zones
    fit `width` (points), else 2 (never less: a 1-dot module does not scan)."""
    return 3 if (modules + 2 * QUIET_MODULES) * 3 * PRINTER_DOT <= width else 2


Draw = Callable[[Canvas, float], None]  # draws a block whose top is at y


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines of `text` no wider than `width`; a word too long for a line is cut."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if stringWidth(candidate, font, size) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while stringWidth(word, font, size) > width:  # e.g. a long URL
                cut = len(word)
                while cut > 1 and stringWidth(word[:cut], font, size) > width:
                    cut -= 1
                slash = word.rfind("/", 0, cut) + 1  # a URL is best cut after a slash
                cut = slash if slash > word.find("//") + 2 else cut
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


class SlipLayout:
    """Blocks stacked from the top; measured first so a roll is cut to length."""

    def __init__(self, paper: Paper):
        self.paper = paper
        self.fonts = slip_fonts()
        self.width = paper.width - 2 * paper.margin
        self.blocks: list[tuple[float, Draw]] = []
        self.text_size = paper.text_size  # the body text's size, once laid out
        self.barcode_module = 0.0         # the Code 128 module's width in points

    def gap(self, height: float) -> None:
        self.blocks.append((height, lambda c, y: None))

    def text(self, text: str, font: str, size: float, align: str = "left", indent: float = 0,
             first_prefix: str = "", condense: bool = False) -> None:
        """A paragraph; `condense`d, one line a little too wide (a URL) is narrowed
        to the width, down to 85 %, keeping its type size, rather than broken."""
        leading = size * self.paper.leading
        lines = wrap(text, font, size, self.width - indent)
        x0 = self.paper.margin
        natural = stringWidth(text, font, size)
        if condense and "\n" not in text and self.width < natural <= self.width / 0.85:
            lines = [text]
            align = f"condensed {self.width / natural * 100:.2f}"

        def draw(c: Canvas, y: float) -> None:
            c.setFont(font, size)
            for number, line in enumerate(lines):
                baseline = y - size - number * leading
                if align.startswith("condensed"):
                    narrow = c.beginText(x0, baseline)
                    narrow.setFont(font, size)
                    narrow.setHorizScale(float(align.split()[1]))
                    narrow.textOut(line)
                    c.drawText(narrow)
                elif align == "center":
                    c.drawCentredString(x0 + self.width / 2, baseline, line)
                else:
                    if number == 0 and first_prefix:
                        c.drawString(x0, baseline, first_prefix)
                    c.drawString(x0 + indent, baseline, line)

        self.blocks.append((len(lines) * leading + size * self.paper.padding, draw))

    def barcode(self, value: str, height: float) -> None:
        """Code 128 in whole printer dots, the symbol's left edge on the dot grid."""
        modules = code128_modules(value)
        module = barcode_module_dots(len(modules), self.width) * PRINTER_DOT
        centred = self.paper.margin + (self.width - module * len(modules)) / 2
        x0 = round(centred / PRINTER_DOT) * PRINTER_DOT
        self.barcode_module = module

        def draw(c: Canvas, y: float) -> None:
            c.setFillColorRGB(0, 0, 0)
            start = None
            for index, bit in enumerate(modules + "0"):
                if bit == "1" and start is None:
                    start = index
                elif bit == "0" and start is not None:
                    c.rect(x0 + start * module, y - height, (index - start) * module, height,
                           stroke=0, fill=1)
                    start = None

        self.blocks.append((height, draw))

    def qr(self, value: str, size: float, beside: "SlipLayout | None" = None) -> None:
        """The QR code centred, or at the right with the `beside` column on its left."""
        matrix = qr_matrix(value)
        module = size / (len(matrix) + 8)
        right = self.paper.margin + self.width
        x0 = (right - size if beside else self.paper.margin + (self.width - size) / 2) + 4 * module

        def draw(c: Canvas, y: float) -> None:
            top = y - 4 * module
            for r, row in enumerate(matrix):
                for col, dark in enumerate(row):
                    if dark:
                        c.rect(x0 + col * module, top - (r + 1) * module, module, module, stroke=0, fill=1)
            for block_height, draw_block in beside.blocks if beside else ():
                draw_block(c, y)
                y -= block_height

        self.blocks.append((max(size, beside.height if beside else 0), draw))

    def column(self, width: float) -> "SlipLayout":
        """A narrower layout from the left margin, for text beside the QR code."""
        column = SlipLayout(self.paper)
        column.width = width
        return column

    @property
    def height(self) -> float:
        return sum(height for height, _ in self.blocks)

    def render(self, title: str) -> bytes:
        height = self.paper.fixed_height or self.height + 2 * self.paper.margin
        buffer = io.BytesIO()
        canvas = Canvas(buffer, pagesize=(self.paper.width, height), invariant=True,
                        initialFontName=self.fonts.regular)  # no unembedded Helvetica
        canvas.setTitle(title)
        canvas.setAuthor("Kodomat")
        y = height - self.paper.margin
        for block_height, draw in self.blocks:
            draw(canvas, y)
            y -= block_height
        canvas.showPage()
        canvas.save()
        return buffer.getvalue()


def render_pdf(slip: Slip, paper_name: str = "pdf80") -> bytes:
    return layout_slip(slip, paper_name).render(title=f"{slip.platform} {slip.slip_id}")


def layout_slip(slip: Slip, paper_name: str = "pdf80") -> SlipLayout:
    paper = PAPERS[paper_name]
    size = paper.text_size
    layout = _layout(slip, paper, size)
    # A fixed page (A6) takes a smaller type, down to its least, rather than lose lines.
    while (paper.fixed_height and layout.height > paper.fixed_height - 2 * paper.margin
           and size - 0.5 >= (paper.min_text_size or paper.text_size)):
        size -= 0.5
        layout = _layout(slip, paper, size)
    layout.text_size = size
    return layout


def _layout(slip: Slip, paper: Paper, size: float) -> SlipLayout:
    layout = SlipLayout(paper)
    f = layout.fonts
    code_size = min(24.0, layout.width / (0.61 * len(slip.grouped_code)))

    layout.text(slip.header, f.bold, size + 1, align="center")
    layout.gap(size * 0.3)
    layout.text(slip.title, f.regular, size, align="center")
    layout.text(slip.grouped_code, f.mono_bold, code_size, align="center")
    layout.barcode(slip.code, height=(8 if paper.fixed_height else 10) * mm)
    layout.gap(size * 0.6)
    layout.text(slip.warning, f.bold, size)  # never smaller than the body
    layout.gap(size * 0.4)
    layout.text(slip.steps_title, f.bold, size)
    for number, step in enumerate(slip.steps, 1):
        layout.text(step, f.regular, size, indent=size * 1.3, first_prefix=f"{number}.")
    layout.gap(size * 0.4)
    qr_size = min((22 if paper.fixed_height else 26) * mm, layout.width)
    # A fixed page puts the notes beside the QR code (step 1 names its URL);
    # a roll has the QR code, its URL and the notes one below the other.
    notes = layout.column(layout.width - qr_size) if paper.fixed_height else layout
    if not paper.fixed_height:
        layout.qr(slip.activation_url, size=qr_size)
        layout.text(slip.activation_url, f.regular, size, align="center", condense=True)
        layout.gap(size * 0.4)
    notes.text(" ".join(filter(None, (slip.access_note, slip.devices_note))), f.regular, size)
    if slip.help_note:
        notes.gap(size * 0.4)
        notes.text(slip.help_note, f.regular, size)
    notes.gap(size * 0.4)
    notes.text(slip.issued_line, f.regular, size, align="left" if paper.fixed_height else "center")
    if paper.fixed_height:
        layout.qr(slip.activation_url, size=qr_size, beside=notes)
    return layout
