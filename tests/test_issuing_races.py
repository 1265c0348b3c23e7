"""Races at the kiosk over real HTTP: gunicorn with several gthread workers on
127.0.0.1 serving the test's database, requests released together from threads.

- One card scanned at 16 kiosks at once (PostgreSQL): one issuance, and its
  print_count is the number of answers that showed the code: no count lost.
- 32 new cards at once from one kiosk: at most CODES_SHOWN.count codes handed out,
  every other answer the pause screen, no 5xx: parallel requests do not pass the pause.
"""
from __future__ import annotations

import http.client
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.cookies import SimpleCookie

import pytest
from sqlalchemy import func, select

from helpers import PROJECT, TOKEN, codes, make_library, make_pool, new_kiosk, require, this_month
from kiosk.app.extensions import db
from kiosk.domain.kiosks import CODES_SHOWN
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.storage.models import Issuance

WORKERS, THREADS = 2, 16
SLIP_CODE = re.compile(r'id="slip-code">([^<]*)<')
# Written by each gunicorn worker once it has loaded the app (a server hook).
GUNICORN_CONFIG = """
import os
def post_worker_init(worker):
    open(os.path.join({ready!r}, str(worker.pid)), "w").close()
"""


class Served:
    """The app's database behind gunicorn; HTTP requests on connections of their own."""

    def __init__(self, app, folder):
        require(importlib.util.find_spec("gunicorn") is not None, "gunicorn", "pip install -e '.[test]'")
        instance, ready = folder / "instance", folder / "ready"
        instance.mkdir()
        ready.mkdir()
        (instance / "config.py").write_text(f"SECRET_KEY = {app.config['SECRET_KEY']!r}\n"
                                            f"READER_PEPPER = {app.config['READER_PEPPER']!r}\n")
        (folder / "gunicorn.conf.py").write_text(GUNICORN_CONFIG.format(ready=str(ready)))
        self.log = folder / "gunicorn.log"
        self.log_file = self.log.open("w")  # a file: a pipe nobody reads would block the server once full
        self.listener = socket.create_server(("127.0.0.1", 0))  # handed to gunicorn: no race for a port
        self.port = self.listener.getsockname()[1]
        env = {**os.environ, "KIOSK_INSTANCE": str(instance), "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
               "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(folder / "gunicorn.conf.py"),
             "--worker-class", "gthread", "--workers", str(WORKERS), "--threads", str(THREADS),
             "--bind", f"fd://{self.listener.fileno()}", "--log-level", "warning", "wsgi:app"],
            cwd=PROJECT, env=env, pass_fds=(self.listener.fileno(),), stdout=subprocess.DEVNULL,
            stderr=self.log_file)
        deadline = time.monotonic() + 60
        while len(list(ready.iterdir())) < WORKERS:  # every worker has the app loaded
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"gunicorn did not start: {self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)

    def request(self, method: str, path: str, form: dict | None = None, cookies: dict | None = None,
                headers: dict | None = None) -> tuple[int, dict, str]:
        """(status, cookies set, body), on a connection of its own as a proxy would open."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            sent = {"Connection": "close", **(headers or {})}
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            if cookies:
                sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
            conn.request(method, path, body, sent)
            answer = conn.getresponse()
            jar = SimpleCookie()
            for header in answer.headers.get_all("Set-Cookie") or []:
                jar.load(header)
            return answer.status, {name: m.value for name, m in jar.items()}, answer.read().decode()
        finally:
            conn.close()

    def enrolled(self, library) -> "KioskBrowser":
        """A new kiosk of the library, enrolled through its link and button over HTTP."""
        token = new_kiosk(library).token
        db.session.rollback()  # hold nothing while the server works
        status, cookies, page = self.request("GET", f"/kiosk/enrol/{token}")
        assert status == 200, page[:300]
        status, more, _ = self.request("POST", f"/kiosk/enrol/{token}", {"csrf_token": TOKEN.search(page)[1]},
                                       cookies)
        assert status == 302 and "kodomat_kiosk" in more
        cookies.update(more)
        status, more, page = self.request("GET", "/kiosk/", cookies=cookies)
        assert status == 200, page[:300]
        cookies.update(more)
        return KioskBrowser(self, cookies, TOKEN.search(page)[1])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.listener.close()
        self.log_file.close()


class KioskBrowser:
    def __init__(self, server: Served, cookies: dict, csrf: str):
        self.server, self.cookies, self.csrf = server, cookies, csrf

    def scan(self, card: str) -> tuple[int, str]:
        """A card from the scanner (entry "scan": a code already out is shown again)."""
        status, _, page = self.server.request(
            "POST", "/kiosk/scan", {"card": card, "entry": "scan", "lang": "pl", "csrf_token": self.csrf},
            self.cookies, {"HX-Request": "true"})
        return status, page


@pytest.fixture
def served(app, tmp_path):
    server = Served(app, tmp_path)
    yield server
    server.stop()


def at_once(jobs: list) -> list:
    """The callables run in threads released together; their results in order."""
    results: list = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(n: int) -> None:
        start.wait()
        try:
            results[n] = jobs[n]()
        except BaseException as exc:  # noqa: BLE001 - asserted on below
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def shown_code(page: str) -> str | None:
    match = SLIP_CODE.search(page)
    return re.sub(r"[\s-]", "", match[1]) if match else None


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_one_card_at_16_kiosks_at_once_counts_every_slip_shown(app, served):
    library = make_library()
    make_pool(library, codes("RACE", 20), this_month())
    kiosks = [served.enrolled(library) for _ in range(16)]

    for round_ in range(3):  # three cards, one after another; each at all 16 kiosks at once
        card = f"5{round_}{uuid.uuid4().int % 10**10:010d}"
        answers = at_once([lambda kiosk=kiosk: kiosk.scan(card) for kiosk in kiosks])

        assert not [a for a in answers if isinstance(a, BaseException)], answers
        db.session.rollback()  # see what the server wrote
        rows = db.session.execute(select(Issuance.print_count).where(
            Issuance.reader_key == reader_key(app.config["READER_PEPPER"], normalise_card(card)))).all()
        shown = [shown_code(page) for _status, page in answers if shown_code(page)]
        assert len(rows) == 1, f"{len(rows)} issuances for one reader"
        assert rows[0].print_count == len(shown), (
            f"print_count {rows[0].print_count}, but {len(shown)} answers showed the code: "
            f"{len(shown) - rows[0].print_count} counts lost")
        assert len(set(shown)) == 1, "one reader was shown different codes"
        assert [status for status, _page in answers] == [200] * 16
        assert len(shown) == 16, "a kiosk did not show the reader's code"


def test_32_new_cards_at_once_from_one_kiosk_get_at_most_the_limit(app, served):
    library = make_library()
    make_pool(library, codes("RUSH", 60), this_month())
    kiosk = served.enrolled(library)

    answers = at_once([lambda n=n: kiosk.scan(f"7{n:02d}{uuid.uuid4().int % 10**9:09d}") for n in range(32)])

    assert not [a for a in answers if isinstance(a, BaseException)], answers
    statuses = [status for status, _page in answers]
    assert all(status < 500 for status in statuses), f"server errors: {statuses}"
    slips = [page for status, page in answers if status == 200 and shown_code(page)]
    paused = [page for status, page in answers if status == 200 and "Chwila przerwy" in page]
    assert len(slips) <= CODES_SHOWN.count, f"{len(slips)} codes from one kiosk at once, past the limit"
    assert len(slips) + len(paused) == 32, [page[:200] for _s, page in answers
                                            if not shown_code(page) and "Chwila przerwy" not in page]
    db.session.rollback()  # see what the server wrote
    issued = db.session.scalar(select(func.count()).select_from(Issuance))
    assert issued == len(slips)
    # The pause does not stop a kiosk from serving at all: the first codes went out.
    assert len(slips) >= 1
