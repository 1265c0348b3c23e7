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
    text_size: float
    fixed_height: float | None = None  # None: a receipt roll, as long as needed


PAPERS = {
    "pdf80": Paper(width=80 * mm, margin=4 * mm, text_size=8.5),
    "pdf58": Paper(width=58 * mm, margin=2.5 * mm, text_size=7),
    "a6": Paper(width=A6[0], margin=9 * mm, text_size=9.5, fixed_height=A6[1]),
}

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

    def gap(self, height: float) -> None:
        self.blocks.append((height, lambda c, y: None))

    def text(self, text: str, font: str, size: float, align: str = "left", indent: float = 0,
             first_prefix: str = "") -> None:
        leading = size * 1.25
        lines = wrap(text, font, size, self.width - indent)
        x0 = self.paper.margin

        def draw(c: Canvas, y: float) -> None:
            c.setFont(font, size)
            for number, line in enumerate(lines):
                baseline = y - size - number * leading
                if align == "center":
                    c.drawCentredString(x0 + self.width / 2, baseline, line)
                else:
                    if number == 0 and first_prefix:
                        c.drawString(x0, baseline, first_prefix)
                    c.drawString(x0 + indent, baseline, line)

        self.blocks.append((len(lines) * leading + size * 0.3, draw))

    def barcode(self, value: str, height: float) -> None:
        modules = code128_modules(value)
        quiet = 10
        module = min(0.5 * mm, self.width / (len(modules) + 2 * quiet))
        total = module * (len(modules) + 2 * quiet)
        x0 = self.paper.margin + (self.width - total) / 2 + quiet * module

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

    def qr(self, value: str, size: float) -> None:
        matrix = qr_matrix(value)
        module = size / (len(matrix) + 8)
        x0 = self.paper.margin + (self.width - size) / 2 + 4 * module

        def draw(c: Canvas, y: float) -> None:
            top = y - 4 * module
            for r, row in enumerate(matrix):
                for col, dark in enumerate(row):
                    if dark:
                        c.rect(x0 + col * module, top - (r + 1) * module, module, module, stroke=0, fill=1)

        self.blocks.append((size, draw))

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
    paper = PAPERS[paper_name]
    size = paper.text_size
    layout = _layout(slip, paper, size)
    # A fixed page (A6) takes a smaller type rather than lose the last lines.
    while paper.fixed_height and layout.height > paper.fixed_height - 2 * paper.margin and size > 6:
        size -= 0.5
        layout = _layout(slip, paper, size)
    return layout.render(title=f"{slip.platform} {slip.slip_id}")


def _layout(slip: Slip, paper: Paper, size: float) -> SlipLayout:
    layout = SlipLayout(paper)
    f = layout.fonts
    code_size = min(24.0, layout.width / (0.61 * len(slip.grouped_code)))

    layout.text(slip.header, f.bold, size + 1, align="center")
    layout.gap(size * 0.4)
    layout.text(slip.title, f.regular, size, align="center")
    layout.text(slip.grouped_code, f.mono_bold, code_size, align="center")
    layout.barcode(slip.code, height=10 * mm)
    layout.gap(size * 0.8)
    layout.text(slip.warning, f.bold, size)
    layout.gap(size * 0.5)
    layout.text(slip.steps_title, f.bold, size)
    for number, step in enumerate(slip.steps, 1):
        layout.text(step, f.regular, size, indent=size * 1.3, first_prefix=f"{number}.")
    layout.gap(size * 0.5)
    layout.qr(slip.activation_url, size=min(28 * mm, layout.width))
    layout.text(slip.activation_url, f.mono, size, align="center")
    layout.gap(size * 0.5)
    layout.text(slip.access_note, f.regular, size)
    layout.gap(size * 0.5)
    layout.text(slip.issued_line, f.regular, size - 1, align="center")
    return layout
