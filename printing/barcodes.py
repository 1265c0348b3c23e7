"""Barcode and QR code as module patterns, so each renderer draws them as vectors
(PDF), characters (screen SVG) or printer commands."""
from __future__ import annotations

from functools import lru_cache

import barcode
import segno


def code128_modules(value: str) -> str:
    """The Code 128 symbol of `value` as '1' (bar) and '0' (space) modules."""
    return barcode.get("code128", value).build()[0]


def qr_matrix(value: str) -> list[list[bool]]:
    """The QR code of `value`, dark modules True, without the quiet zone."""
    qr = segno.make(value, error="m", micro=False)
    return [[bool(cell) for cell in row] for row in qr.matrix]


@lru_cache(maxsize=64)
def qr_svg(value: str, scale: int = 6) -> str:
    """An inline SVG of the QR code for the on-screen slip. A kiosk shows the same
    few activation URLs all day: each is drawn once per process."""
    return segno.make(value, error="m", micro=False).svg_inline(scale=scale, border=2)


def code128_svg(value: str, module: int = 2, height: int = 60, quiet: int = 10) -> str:
    """An inline SVG of the Code 128 symbol for the on-screen (and browser-printed)
    slip: one rectangle per bar, whole units per module, quiet zones of 10 modules."""
    modules = code128_modules(value)
    width = (len(modules) + 2 * quiet) * module
    bars, run_start = [], None
    for index, bit in enumerate(modules + "0"):
        if bit == "1" and run_start is None:
            run_start = index
        elif bit == "0" and run_start is not None:
            bars.append(f'<rect x="{(quiet + run_start) * module}" y="0" width="{(index - run_start) * module}" '
                        f'height="{height}"/>')
            run_start = None
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="code128" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" shape-rendering="crispEdges" aria-hidden="true">'
            f'<rect width="{width}" height="{height}" fill="#fff"/><g fill="#000">{"".join(bars)}</g></svg>')
