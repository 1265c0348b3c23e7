"""Where a slip goes, chosen per kiosk or desk by a short setting:

    browser                     the browser prints the on-screen slip / opens the PDF
    cups:QUEUE                  `lp -d QUEUE` with the 80 mm PDF
    escpos-tcp:HOST[:PORT]      a network receipt printer (port 9100 by default)
    escpos-usb:VENDOR:PRODUCT   a USB receipt printer (hex ids, e.g. 04b8:0202)
    escpos-file:PATH            a device file such as /dev/usb/lp0

Each but `browser` may end in the paper's width, `@80` (the default) or `@58`:
`cups:desk@58` prints the 58 mm PDF, `escpos-tcp:192.168.1.50@58` wraps at 32
columns instead of 48.

A printer that is off, out of paper or unreachable raises PrinterError; the caller
keeps the issuance and tells the reader to ask at the desk."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass

from printing.slip import Slip

TIMEOUT_SECONDS = 5


class PrinterError(RuntimeError):
    pass


class PrinterSettingError(ValueError):
    pass


@dataclass(frozen=True)
class Printer:
    kind: str
    target: str = ""
    port: int = 9100
    paper: str = "80"  # the roll's width in mm: "80" or "58"

    @property
    def prints_in_browser(self) -> bool:
        return self.kind == "browser"

    def print_slip(self, slip: Slip) -> None:
        if self.kind == "browser":
            return  # the page itself prints
        try:
            if self.kind == "cups":
                _print_cups(self.target, _pdf(slip, self.paper))
            elif self.kind == "escpos-tcp":
                _send_tcp(self.target, self.port, _escpos(slip, self.paper))
            elif self.kind == "escpos-file":
                _write_device(self.target, _escpos(slip, self.paper))
            elif self.kind == "escpos-usb":
                _send_usb(self.target, _escpos(slip, self.paper))
        except PrinterError:
            raise
        except Exception as exc:  # a driver, a font, a device: the issuance must stand
            raise PrinterError(f"{self.kind}:{self.target}: {exc}") from exc


# The renderers are imported when a slip is printed, inside print_slip's try (a failing
# import is a PrinterError too): checking a setting (`kiosk enroll-kiosk`) needs neither
# reportlab nor python-escpos, which loads its printer database on import.
def _pdf(slip: Slip, paper: str) -> bytes:
    from printing.pdf import render_pdf

    return render_pdf(slip, f"pdf{paper}")


def _escpos(slip: Slip, paper: str) -> bytes:
    from printing.escpos import render_escpos

    return render_escpos(slip, paper)


def _send_tcp(host: str, port: int, data: bytes) -> None:
    with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)


def _write_device(path: str, data: bytes) -> None:
    # Non-blocking: a printer that is off or out of paper fails at once instead of
    # hanging the kiosk (O_NONBLOCK does not exist on Windows; there it blocks).
    # No O_CREAT: a printer is a device that exists; a typo must not create a file.
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def _print_cups(queue: str, pdf: bytes) -> None:
    if shutil.which("lp") is None:
        raise PrinterError("CUPS is not installed (no `lp` command)")
    done = subprocess.run(["lp", "-d", queue, "-t", "Kodomat", "-"], input=pdf,
                          capture_output=True, timeout=TIMEOUT_SECONDS * 2)
    if done.returncode != 0:
        raise PrinterError(done.stderr.decode(errors="replace").strip() or f"lp exited {done.returncode}")


def _send_usb(target: str, data: bytes) -> None:
    from escpos.printer import Usb

    vendor, product = (int(part, 16) for part in target.split(":"))
    try:
        printer = Usb(vendor, product)
        printer._raw(data)
        printer.close()
    except Exception as exc:  # pyusb raises its own kinds for a missing device
        raise PrinterError(f"USB printer {target}: {exc}") from exc


def print_slip_with(setting: str, slip: Slip) -> tuple[bool, str | None]:
    """Prints where the setting says: (printed in the browser?, the error if any)."""
    try:
        printer = printer_from_setting(setting)
        printer.print_slip(slip)
    except (PrinterError, PrinterSettingError) as exc:
        return False, str(exc)
    return printer.prints_in_browser, None


PAPER_WIDTHS = ("80", "58")


def printer_from_setting(setting: str) -> Printer:
    kind, _, rest = (setting or "browser").strip().partition(":")
    if kind == "browser" and not rest:
        return Printer("browser")
    rest, paper = _paper_width(rest, setting)
    if kind in ("cups", "escpos-file") and rest:
        return Printer(kind, rest, paper=paper)
    if kind == "escpos-tcp" and rest:
        host, _, port = rest.partition(":")
        if port and not port.isdigit():
            raise PrinterSettingError(f"port must be a number: {setting}")
        return Printer(kind, host, int(port or 9100), paper=paper)
    if kind == "escpos-usb" and rest.count(":") == 1:
        try:
            [int(part, 16) for part in rest.split(":")]
        except ValueError:
            raise PrinterSettingError(f"USB ids are hexadecimal VENDOR:PRODUCT: {setting}")
        return Printer(kind, rest, paper=paper)
    raise PrinterSettingError(f"unknown printer setting: {setting!r}")


def _paper_width(rest: str, setting: str) -> tuple[str, str]:
    """'desk@58' -> ('desk', '58'); without a suffix, 80 mm. A suffix of digits that
    is no paper we print on is refused rather than taken as part of a name."""
    target, at, width = rest.rpartition("@")
    if not at or not width.isdigit():
        return rest, "80"
    if width not in PAPER_WIDTHS:
        raise PrinterSettingError(f"paper width must be @80 or @58: {setting}")
    return target, width
