"""Barcode and QR code as module patterns, so each renderer draws them as vectors
(PDF), characters (screen SVG) or printer commands."""
from __future__ import annotations

import barcode
import segno


def code128_modules(value: str) -> str:
    """The Code 128 symbol of `value` as '1' (bar) and '0' (space) modules."""
    return barcode.get("code128", value).build()[0]


def qr_matrix(value: str) -> list[list[bool]]:
    """The QR code of `value`, dark modules True, without the quiet zone."""
    qr = segno.make(value, error="m", micro=False)
    return [[bool(cell) for cell in row] for row in qr.matrix]


def qr_svg(value: str, scale: int = 6) -> str:
    """An inline SVG of the QR code for the on-screen slip."""
    return segno.make(value, error="m", micro=False).svg_inline(scale=scale, border=2)
