"""The app behind a real server on 127.0.0.1, for tests that need real HTTP,
real processes and real kills. Shared by tests/test_issuing_races.py and
tests/test_crash.py (tests import from here, never from one another).

- Served(app, folder, kind): the test's database served by "gunicorn" (the
  deployment's server: gthread workers, on a listener the test holds, so a
  restarted server answers on the same port) or "waitress" (`kiosk serve`, the
  single-PC server). Each runs in a process group of its own: kill() sends
  SIGKILL to the whole tree, start() starts it again on the same database.
- Served.request: one HTTP request on a connection of its own, as a proxy opens.
- Served.enrolled(library): a kiosk enrolled through its link and button, over HTTP.
- kiosk_command, command_env: `kiosk …` as a process of its own, on the app's
  database, with the app's secret and pepper.
"""
from __future__ import annotations

import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from helpers import PROJECT, TOKEN, new_kiosk, require
from kiosk.app.extensions import db

KIOSK = [sys.executable, "-c", "from kiosk.cli import main; main()"]
# Written by each gunicorn worker once it has loaded the app (a server hook).
GUNICORN_CONFIG = """
import os
def post_worker_init(worker):
    open(os.path.join({ready!r}, str(worker.pid)), "w").close()
"""
START_SECONDS = 60


def kiosk_command(*args: str) -> list[str]:
    """`kiosk ARGS` as a process of its own (its database from DATABASE_URL, its
    instance from KIOSK_INSTANCE: see command_env)."""
    return [*KIOSK, *args]


def command_env(app, instance: Path, **extra: str) -> dict:
    """The environment of a server or `kiosk` process on the app's database: an
    instance folder with the app's secret key and pepper, the project importable."""
    instance.mkdir(exist_ok=True)
    (instance / "config.py").write_text(f"SECRET_KEY = {app.config['SECRET_KEY']!r}\n"
                                        f"READER_PEPPER = {app.config['READER_PEPPER']!r}\n")
    return {**os.environ, "KIOSK_INSTANCE": str(instance), "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])), **extra}


class Served:
    """The app's database behind gunicorn or `kiosk serve`; HTTP requests on
    connections of their own. Started on creation; stop() at the end."""

    def __init__(self, app, folder: Path, kind: str = "gunicorn", workers: int = 2, threads: int = 16):
        if kind == "gunicorn":
            require(importlib.util.find_spec("gunicorn") is not None, "gunicorn", "pip install -e '.[test]'")
        self.kind, self.workers, self.threads = kind, workers, threads
        self.folder, self.ready = folder, folder / "ready"
        self.env = command_env(app, folder / "instance")
        self.ready.mkdir(exist_ok=True)
        (folder / "gunicorn.conf.py").write_text(GUNICORN_CONFIG.format(ready=str(self.ready)))
        self.log = folder / f"{kind}.log"
        self.log_file = self.log.open("w")  # a file: a pipe nobody reads would block the server once full
        if kind == "gunicorn":
            self.listener = socket.create_server(("127.0.0.1", 0))  # handed to gunicorn: no race for a port
            self.port = self.listener.getsockname()[1]
        else:
            self.listener = None
            probe = socket.create_server(("127.0.0.1", 0))  # waitress binds it itself (SO_REUSEADDR)
            self.port = probe.getsockname()[1]
            probe.close()
        self.process: subprocess.Popen | None = None
        self.starts: list[float] = []  # seconds each start took
        self.start()

    def start(self) -> None:
        """Starts the server (again) and returns once it serves."""
        began = time.monotonic()
        for stale in self.ready.iterdir():
            stale.unlink()
        if self.kind == "gunicorn":
            argv = [sys.executable, "-m", "gunicorn", "--config", str(self.folder / "gunicorn.conf.py"),
                    "--worker-class", "gthread", "--workers", str(self.workers), "--threads", str(self.threads),
                    "--bind", f"fd://{self.listener.fileno()}", "--log-level", "warning", "wsgi:app"]
            fds = (self.listener.fileno(),)
        else:
            argv = kiosk_command("serve", "--port", str(self.port), "--threads", str(self.threads))
            fds = ()
        self.process = subprocess.Popen(argv, cwd=PROJECT, env=self.env, pass_fds=fds, stdout=subprocess.DEVNULL,
                                        stderr=self.log_file, start_new_session=True)  # a group of its own
        deadline = time.monotonic() + START_SECONDS
        while not self._serving():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{self.kind} did not start: {self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        self.starts.append(time.monotonic() - began)

    def _serving(self) -> bool:
        if self.kind == "gunicorn":
            return len(list(self.ready.iterdir())) >= self.workers  # every worker has the app loaded
        try:
            return self.request("GET", "/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL to the server's whole process group (the master and its workers)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        if self.kind == "gunicorn":  # workers are the master's children, in its group: gone with it
            deadline = time.monotonic() + 10
            while _group_alive(self.process.pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def request(self, method: str, path: str, form: dict | None = None, cookies: dict | None = None,
                headers: dict | None = None, json_body: str | None = None,
                timeout: float = 60) -> tuple[int, dict, str]:
        """(status, cookies set, body), on a connection of its own as a proxy would open."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent = {"Connection": "close", **(headers or {})}
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            elif json_body is not None:
                body = json_body.encode()
                sent["Content-Type"] = "application/json"
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
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown; waitress's Ctrl+C
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if not self.log_file.closed:
            self.log_file.close()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class KioskBrowser:
    def __init__(self, server: Served, cookies: dict, csrf: str):
        self.server, self.cookies, self.csrf = server, cookies, csrf

    def scan(self, card: str, timeout: float = 60) -> tuple[int, str]:
        """A card from the scanner (entry "scan": a code already out is shown again)."""
        status, _, page = self.server.request(
            "POST", "/kiosk/scan", {"card": card, "entry": "scan", "lang": "pl", "csrf_token": self.csrf},
            self.cookies, {"HX-Request": "true"}, timeout=timeout)
        return status, page
