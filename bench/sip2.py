"""What asking the library system over SIP2 adds to a kiosk scan, on SQLite.

"Kiosk Enter → code": POST /kiosk/scan through the Flask test client of an enrolled
kiosk, a new reader's card each time, for two libraries in one database, scans
alternating between them so both see the same machine:
- registry: card check "registry", the cards in an imported register (the baseline);
- sip2: card check "sip2" against pysip2 on 127.0.0.1 (tests/sip2_peers.py), logging
  in with a password sealed in the database, as Koha asks.
The floor of the SIP2 part, measured in the same run: the bare round trip,
patron_information alone on the connection the client keeps open.

Every kiosk may show six codes a minute, so the scans rotate over many kiosks.
The SIP2 server runs in this process (a thread): it shares the interpreter's lock
with the kiosk, which a real library system on its own machine does not.

    python bench/sip2.py [--scans 200]
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests"))  # sip2_peers: pysip2 serving a patron table

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import select  # noqa: E402

from kiosk import create_app  # noqa: E402
from kiosk.app.extensions import db  # noqa: E402
from kiosk.domain.actors import Actor  # noqa: E402
from kiosk.domain.clock import local_day, month_window, utcnow  # noqa: E402
from kiosk.domain.kiosks import enrol_kiosk  # noqa: E402
from kiosk.domain.libraries import add_library  # noqa: E402
from kiosk.domain.pool_files import prepare_pool  # noqa: E402
from kiosk.domain.pools import import_pool  # noqa: E402
from kiosk.domain.registry import import_cards, prepare_cards  # noqa: E402
from kiosk.domain.settings import parse_new_library  # noqa: E402
from kiosk.domain.sip2_settings import parse_sip2_settings, save_sip2_settings, sip2_config  # noqa: E402
from kiosk.sip2 import close_thread_connections, patron_information  # noqa: E402
from kiosk.storage.database import run_in_transaction  # noqa: E402
from kiosk.storage.models import Platform  # noqa: E402
from sip2_peers import INSTITUTION, Patron, sip2_server  # noqa: E402

PEPPER = "bench-pepper"
BENCH = Actor.system("bench")
LOGIN = ("kodomat", "bench-Sekret-9")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CODES_PER_KIOSK = 5  # under the six a minute a kiosk may show
WARM_UP = 10


def cards(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:010d}" for n in range(count)]


def library_with_pool(slug: str, count: int, card_check: str = "format") -> int:
    """A library with a pool of this month's codes."""
    new = parse_new_library(slug=slug, name=f"Bench {slug}", card_check=card_check)
    library_id = run_in_transaction(db.session, lambda s: add_library(s, new, actor=BENCH, now=utcnow()).id)
    today = local_day(utcnow())
    window = month_window(today.year, today.month)
    legimi = db.session.scalar(select(Platform.id).where(Platform.slug == "legimi"))
    data = ("Kod\n" + "\n".join(f"BENCH{slug.upper()}{uuid.uuid4().hex[:10].upper()}"
                                for _ in range(count))).encode()
    prepared = prepare_pool(data, "bench.csv", window)
    run_in_transaction(db.session, lambda s: import_pool(s, library_id=library_id, platform_id=legimi,
                                                         prepared=prepared, actor=BENCH, now=utcnow()))
    return library_id


def enrolment_links(library_id: int, count: int) -> list[str]:
    """The one-time tokens of `count` new kiosks of the library."""
    return [run_in_transaction(db.session, lambda s: enrol_kiosk(
        s, library_id=library_id, name=f"K{n}", actor=BENCH, now=utcnow())).token for n in range(count)]


def enrolled_kiosks(app, tokens: list[str]) -> list[tuple]:
    """A test client per token, enrolled through its link and button, with its form token.
    Called with no app context pushed: each request then has one (and a `g`) of its own."""
    kiosks = []
    for token in tokens:
        client = app.test_client()
        page = client.get(f"/kiosk/enrol/{token}").get_data(as_text=True)
        done = client.post(f"/kiosk/enrol/{token}", data={"csrf_token": TOKEN.search(page).group(1)})
        assert done.status_code == 302, done.status_code
        kiosks.append((client, TOKEN.search(client.get("/kiosk/").get_data(as_text=True)).group(1)))
    return kiosks


def scan(kiosk: tuple, card: str, slug: str) -> float:
    """One scan, seconds; the page must show the library's slip with a code."""
    client, token = kiosk
    started = time.perf_counter()
    answer = client.post("/kiosk/scan", data={"card": card, "entry": "scan", "lang": "pl", "csrf_token": token},
                         headers={"HX-Request": "true"})
    took = time.perf_counter() - started
    page = answer.get_data(as_text=True)
    if answer.status_code != 200 or f'<p class="slip-header">Bench {slug}</p>' not in page or "slip-code" not in page:
        raise RuntimeError(f"{slug}: no code issued ({answer.status_code}): {page[:300]}")
    return took


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=200, help="scans per library")
    args = parser.parse_args()
    total = args.scans + WARM_UP
    registered, patrons = cards("1001", total), cards("2002", total)

    with tempfile.TemporaryDirectory() as tmp, sip2_server(
            {card: Patron(name="Anna Nowak", expiry="20991231", birth="19800101") for card in patrons},
            login=LOGIN) as server:
        app = create_app({"INSTANCE_PATH": tmp, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db",
                          "READER_PEPPER": PEPPER, "SECRET_KEY": "bench"})
        with app.app_context():
            upgrade()
            registry_id = library_with_pool("reg", total, card_check="registry")
            prepared = prepare_cards(("karta\n" + "\n".join(registered)).encode(), card_pattern=None,
                                     check_digit=None, pepper=PEPPER)
            run_in_transaction(db.session, lambda s: import_cards(s, library_id=registry_id, prepared=prepared,
                                                                  actor=BENCH, now=utcnow()))
            sip2_id = library_with_pool("sip", total)
            form = parse_sip2_settings({"host": "127.0.0.1", "port": server.port, "login_user": LOGIN[0],
                                        "password": LOGIN[1], "institution": INSTITUTION}, None)
            run_in_transaction(db.session, lambda s: save_sip2_settings(s, sip2_id, form, pepper=PEPPER, actor=BENCH,
                                                                        now=utcnow()))
            settings = sip2_config(db.session, sip2_id, PEPPER).settings
            kiosks = args.scans // CODES_PER_KIOSK + 2
            links = enrolment_links(registry_id, kiosks), enrolment_links(sip2_id, kiosks)
            db.session.remove()
        registry_kiosks, sip2_kiosks = (enrolled_kiosks(app, tokens) for tokens in links)

        timings: dict[str, list[float]] = {"registry": [], "sip2": []}
        for n in range(total):  # alternating: both measured under the same conditions
            kiosk = n % kiosks
            took_registry = scan(registry_kiosks[kiosk], registered[n], "reg")
            took_sip2 = scan(sip2_kiosks[kiosk], patrons[n], "sip")
            if n >= WARM_UP:
                timings["registry"].append(took_registry)
                timings["sip2"].append(took_sip2)

        bare = []
        for n in range(total):  # the connection the kiosk's scans left open is reused
            started = time.perf_counter()
            answer = patron_information(settings, patrons[n])
            if n >= WARM_UP:
                bare.append(time.perf_counter() - started)
            assert answer.valid_patron
        connections = server.connections
        close_thread_connections()

    registry_median = statistics.median(timings["registry"])
    print(f"scans per library: {args.scans} (after {WARM_UP} to warm up), over {kiosks} kiosks each; SQLite; "
          f"Python {sys.version.split()[0]}; SIP2 connections opened: {connections}")
    print()
    print("| kiosk Enter → code | median ms | p95 ms | ÷ registry (median) |")
    print("|---|---:|---:|---:|")
    rows = [("card check registry (baseline)", timings["registry"]),
            ("card check sip2 (pysip2, login)", timings["sip2"]),
            ("bare SIP2 round trip (63/64, connection reused)", bare)]
    for name, values in rows:
        median = statistics.median(values)
        print(f"| {name} | {median * 1e3:.2f} | {percentile(values, 0.95) * 1e3:.2f} "
              f"| {median / registry_median:.2f}× |")
    added = statistics.median(timings["sip2"]) - registry_median
    print()
    print(f"sip2 − registry (medians): {added * 1e3:.2f} ms, of which the bare round trip is "
          f"{statistics.median(bare) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
