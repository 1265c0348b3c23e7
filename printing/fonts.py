"""TrueType fonts with Polish and Ukrainian letters, registered for ReportLab.

ReportLab's bundled Vera lacks ą ę ń ś ź ż, so the slip takes DejaVu (free licence,
see its LICENSE in the fonts package) from the operating system: Debian/Ubuntu
`fonts-dejavu-core`; on Windows, Arial and Consolas. SLIP_FONT_DIR may name
another folder with the same file names."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

# Every letter a Polish or Ukrainian slip may need.
REQUIRED_LETTERS = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻіїєґІЇЄҐабвгдежзийклмнопрстуфхцчшщьюя—–„”"

CANDIDATES = {
    # (regular, bold, mono, mono bold) in each folder
    "dejavu": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"),
    "windows": ("arial.ttf", "arialbd.ttf", "consola.ttf", "consolab.ttf"),
}
FOLDERS = [
    ("dejavu", "/usr/share/fonts/truetype/dejavu"),
    ("dejavu", "/usr/share/fonts/dejavu"),
    ("dejavu", "/usr/local/share/fonts"),
    ("windows", os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts")),
]


class FontMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class SlipFonts:
    regular: str
    bold: str
    mono: str
    mono_bold: str
    files: tuple[Path, ...]


def _covers(path: Path) -> bool:
    face = TTFont("probe", str(path)).face
    return all(ord(ch) in face.charToGlyph for ch in REQUIRED_LETTERS if ch.strip())


@lru_cache(maxsize=1)
def slip_fonts() -> SlipFonts:
    """Finds and registers the slip's fonts once per process."""
    folders = list(FOLDERS)
    if os.environ.get("SLIP_FONT_DIR"):
        folders.insert(0, ("dejavu", os.environ["SLIP_FONT_DIR"]))
    for kind, folder in folders:
        paths = tuple(Path(folder) / name for name in CANDIDATES[kind])
        if all(p.is_file() for p in paths) and all(_covers(p) for p in paths):
            names = ("KodomatSans", "KodomatSans-Bold", "KodomatMono", "KodomatMono-Bold")
            for name, path in zip(names, paths):
                pdfmetrics.registerFont(TTFont(name, str(path)))
            return SlipFonts(*names, files=paths)
    raise FontMissing(
        "No TrueType font with Polish and Ukrainian letters found: install DejaVu "
        "(Debian/Ubuntu: apt install fonts-dejavu-core) or set SLIP_FONT_DIR."
    )
