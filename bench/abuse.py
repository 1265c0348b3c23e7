"""A kiosk's latency while Kodomat is abused, beside the same kiosk idle, in one run.

The server runs as `kiosk serve` (waitress, 8 threads) on SQLite in a process of its
own, as in a library. A kiosk client scans cards one after another over HTTP
(new readers, scanned, so every scan is a real issue; ten a second, spread over
many kiosks, as each may show six codes a minute) while:
- idle: nothing else happens;
- login flood: 4 clients (--flooders) post wrong passwords to /login as fast as
  the server answers, each from another address (X-Forwarded-For, the server
  trusting its proxy), so every attempt may reach the password hash;
- import: `kiosk import-codes` imports a 100,000-code CSV into another library.
Each phase reports the kiosk's median and p95 and the ratio of its median to the
idle one (the goal: at most 3).

    python bench/abuse.py [--scans 60]
"""
from __future__ import annotations

import argparse
from collections import Counter
import http.cookiejar
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
KIOSK = [sys.executable, "-c", "from kiosk.cli import main; main()"]
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
KIOSKS = 60  # each kiosk may show 6 codes a minute; the bench rotates over many
PACE_SECONDS = 0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """A client with its own cookies, as one browser."""

    def __init__(self, base: str, address: str | None = None):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.headers = {"X-Forwarded-For": address} if address else {}

    def request(self, path: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, headers={**self.headers, **(headers or {})})
        try:
            with self.opener.open(request, timeout=120) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def token(self, path: str) -> str:
        return TOKEN.search(self.request(path)[1]).group(1)


def prepare(folder: Path, env: dict) -> list[str]:
    """A library with a pool of this month, KIOSKS enrolled kiosks' links, another
    library for the import, and the 100,000-code file."""
    def run(*args):
        subprocess.run([*KIOSK, *args], env=env, check=True, capture_output=True, cwd=PROJECT)

    run("db", "upgrade")
    run("add-library", "bench", "--name", "Bench")
    run("add-library", "other", "--name", "Other")
    from datetime import date
    today = date.today()
    pool = folder / "pool.csv"
    pool.write_text("Kod\n" + "\n".join(f"KIOSK{n:08d}" for n in range(20_000)) + "\n")
    run("import-codes", str(pool), "--library", "bench", "--month", f"{today:%Y-%m}")
    big = folder / "big.csv"
    big.write_text("Kod\n" + "\n".join(f"IMPORT{n:08d}" for n in range(100_000)) + "\n")
    enrol = f"""
from kiosk import create_app
from kiosk.app.extensions import db
from kiosk.app.links import enrol_url
from kiosk.app.units import write
from kiosk.domain.actors import Actor
from kiosk.domain.clock import utcnow
from kiosk.domain.kiosks import enrol_kiosk
from kiosk.storage.models import Library
from sqlalchemy import select
with create_app().app_context():
    library_id = db.session.scalar(select(Library.id).where(Library.slug == "bench"))
    for n in range({KIOSKS}):
        print(enrol_url(write(lambda s: enrol_kiosk(s, library_id=library_id, name=f"K{{n}}", now=utcnow(),
                                                    actor=Actor.system("bench"))).token))
"""
    done = subprocess.run([sys.executable, "-c", enrol], env=env, check=True, capture_output=True, text=True,
                          cwd=PROJECT)
    return done.stdout.split()


def enrolled(base: str, link: str) -> Browser:
    browser = Browser(base)
    path = urllib.parse.urlsplit(link).path
    browser.request(path, {"csrf_token": browser.token(path)})
    return browser


def scan_loop(kiosks: list[Browser], cards, count: int | None, until: threading.Event | None) -> list[float]:
    """Scans new cards one after another; count scans, or until the event is set."""
    latencies = []
    tokens = [kiosk.token("/kiosk/") for kiosk in kiosks]
    n = 0
    while (count is None or n < count) and not (until is not None and until.is_set() and n >= 5):
        kiosk, token = kiosks[n % len(kiosks)], tokens[n % len(kiosks)]
        started = time.perf_counter()
        status, page = kiosk.request("/kiosk/scan", {"card": next(cards), "entry": "scan", "csrf_token": token},
                                     {"HX-Request": "true"})
        took = time.perf_counter() - started
        latencies.append(took)
        assert status == 200 and "slip-code" in page, (status, page[:300])
        n += 1
        time.sleep(max(0.0, PACE_SECONDS - took))  # a queue of readers, not a stress test of the kiosk
    return latencies


def login_flood(base: str, stop: threading.Event, attempts: list[int]) -> None:
    address = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    browser = Browser(base, address)
    token = browser.token("/login")
    while not stop.is_set():
        browser.headers["X-Forwarded-For"] = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        status, _page = browser.request("/login", {"username": f"guess{random.randint(0, 10**6)}",
                                                   "password": "wrong", "csrf_token": token})
        attempts.append(status)


def summary(name: str, latencies: list[float], idle_median: float | None, note: str = "") -> str:
    median = statistics.median(latencies)
    p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
    ratio = f"{median / idle_median:.2f}×" if idle_median else "1.00×"
    return f"| {name} | {len(latencies)} | {median * 1e3:.1f} | {p95 * 1e3:.1f} | {ratio} | {note} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=60, help="scans in the idle phase")
    parser.add_argument("--flood-seconds", type=float, default=10, help="how long the login flood lasts")
    parser.add_argument("--flooders", type=int, default=4, help="clients flooding /login")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        (folder / "config.py").write_text(f"TRUST_PROXY = True\nKIOSK_BASE_URL = {base!r}\n")
        env = {**os.environ, "KIOSK_INSTANCE": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}"}
        links = prepare(folder, env)
        server = subprocess.Popen([*KIOSK, "serve", "--port", str(port), "--threads", "8"], env=env, cwd=PROJECT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            kiosks = [enrolled(base, link) for link in links]
            cards = iter(f"{70_000_000 + n}" for n in range(10**6))
            scan_loop(kiosks, cards, 10, None)  # warm up

            idle = scan_loop(kiosks, cards, args.scans, None)
            idle_median = statistics.median(idle)

            stop, attempts = threading.Event(), []
            flooders = [threading.Thread(target=login_flood, args=(base, stop, attempts))
                        for _ in range(args.flooders)]
            for thread in flooders:
                thread.start()
            time.sleep(1)
            flood_over = threading.Event()
            timer = threading.Timer(args.flood_seconds, flood_over.set)
            timer.start()
            flooded = scan_loop(kiosks, cards, None, flood_over)
            stop.set()
            for thread in flooders:
                thread.join()

            done = threading.Event()
            started = time.perf_counter()
            importer = subprocess.Popen([*KIOSK, "import-codes", str(folder / "big.csv"), "--library", "other",
                                         "--month", f"{time.strftime('%Y-%m')}"], env=env, cwd=PROJECT,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            waiter = threading.Thread(target=lambda: (importer.wait(), done.set()))
            waiter.start()
            during_import = scan_loop(kiosks, cards, None, done)
            waiter.join()
            import_seconds = time.perf_counter() - started
            output = importer.stdout.read()
            assert importer.returncode == 0, output
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; SQLite; kiosk scans one after another")
    print()
    print("| phase | scans | median ms | p95 ms | median ÷ idle | meanwhile |")
    print("|---|---:|---:|---:|---:|---|")
    print(summary("idle", idle, None))
    print(summary("login flood", flooded, idle_median,
                  f"{len(attempts)} wrong passwords in {args.flood_seconds:.0f} s from {args.flooders} clients, "
                  f"every one from a new address (answers: {dict(Counter(attempts))})"))
    print(summary("100,000-code import", during_import, idle_median,
                  f"`kiosk import-codes` took {import_seconds:.1f} s, start-up included"))


if __name__ == "__main__":
    main()
