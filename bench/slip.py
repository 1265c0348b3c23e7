"""Slip render time per format, against a baseline from the same run: a one-line
ReportLab page in the same embedded font (the least any PDF of ours can cost).

    python bench/slip.py [--runs 200]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reportlab.pdfgen.canvas import Canvas  # noqa: E402

from printing.escpos import render_escpos  # noqa: E402
from printing.fonts import slip_fonts  # noqa: E402
from printing.pdf import render_pdf  # noqa: E402
from printing.slip import Slip  # noqa: E402

SLIP = Slip(
    language="pl", header="Biblioteka Publiczna w Łomiankach", platform="Legimi",
    title="Twój kod Legimi na luty\u00a02020",
    code="LGM7Q2XK9PZA", activation_url="https://www.legimi.pl/mazowieckie",
    warning="Aktywuj kod do 29.02.2020 — po tym dniu kod wygasa i nowy trzeba odebrać osobiście w bibliotece.",
    steps_title="Jak zacząć:",
    steps=("Wejdź na https://www.legimi.pl/mazowieckie i wpisz kod.",
           "Załóż konto: nazwa użytkownika, e-mail (kliknij link aktywacyjny, który przyjdzie e-mailem) i hasło "
           "— albo zaloguj się na swoje konto i wpisz nowy kod.",
           "Pobierz darmową aplikację Legimi: iOS, Android, Windows — telefony, tablety, czytniki."),
    access_note="Dostęp: 30 dni od aktywacji, najpóźniej do 02.01.2021.",
    issued_line="Wydano 14.02.2020 10:05 · wydruk S000042", slip_id="S000042",
    devices_note="Kod działa na dwóch urządzeniach.",
    help_note="Kod nie działa? Sprawdź, czy wpisujesz go do 29.02.2020; jeśli tak — zapytaj w bibliotece.",
)


def one_line_page() -> bytes:
    fonts = slip_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=True, initialFontName=fonts.regular)
    canvas.setFont(fonts.regular, 10)
    canvas.drawString(72, 720, "Zażółć gęślą jaźń")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def median_ms(render, runs: int) -> tuple[float, int]:
    render()  # warm up: font loading and caches
    times = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        size = len(render())
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    baseline, baseline_size = median_ms(one_line_page, args.runs)
    print(f"runs per format: {args.runs}; Python {sys.version.split()[0]}")
    print()
    print("| format | median ms | size KiB | ÷ one-line page |")
    print("|---|---:|---:|---:|")
    print(f"| one-line page (baseline) | {baseline:.2f} | {baseline_size / 1024:.1f} | 1.0× |")
    for name in ("pdf80", "pdf58", "a6"):
        ms, size = median_ms(lambda: render_pdf(SLIP, name), args.runs)
        print(f"| {name} | {ms:.2f} | {size / 1024:.1f} | {ms / baseline:.1f}× |")
    ms, size = median_ms(lambda: render_escpos(SLIP), args.runs)
    print(f"| escpos | {ms:.2f} | {size / 1024:.1f} | {ms / baseline:.1f}× |")


if __name__ == "__main__":
    main()
