"""Locust users for bench/rush.py: each simulated reader does one thing at the
moment RUSH_AT (epoch seconds) plus a jitter of up to RUSH_SPREAD seconds, then
stops. Not a test of its own: bench/rush.py starts locust with this file.

RUSH_MODE=form: the reader has the online form open before the release (GET),
then sends their card at the release minute (POST, as a browser without
JavaScript does). RUSH_MODE=noop: GET /bench/noop at the same moments, the floor.

Every request is written to RUSH_RESULTS (JSON lines: what, ms, status, outcome),
the outcome read from the answer's data-outcome attribute."""
from __future__ import annotations

import itertools
import json
import os
import random
import re
import time

import gevent
from locust import FastHttpUser, events, task
from locust.exception import StopUser

AT = float(os.environ["RUSH_AT"])
SPREAD = float(os.environ.get("RUSH_SPREAD", "1.0"))
MODE = os.environ.get("RUSH_MODE", "form")
PATH = os.environ.get("RUSH_PATH", "/bench/noop")
CARD_PREFIX = os.environ.get("RUSH_CARD_PREFIX", "7000")
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
OUTCOME = re.compile(r'data-outcome="([a-z_]+)"')
_numbers = itertools.count()
_results: list[dict] = []


def _sleep_until(moment: float) -> None:
    gevent.sleep(max(0.0, moment - time.time()))


class Reader(FastHttpUser):
    wait_time = None  # one task, once

    def on_start(self) -> None:
        self.number = next(_numbers)
        self.card = f"{CARD_PREFIX}{self.number:06d}"
        # Each reader from an address of their own, as behind the library's proxy.
        self.headers = {"X-Forwarded-For": f"10.{self.number // 65536 % 256}.{self.number // 256 % 256}."
                                           f"{self.number % 256}", "Accept-Language": "pl"}
        self.moment = AT + random.Random(self.number).random() * SPREAD

    def _timed(self, what: str, method: str, path: str, **kwargs) -> str:
        started = time.perf_counter()
        with self.client.request(method, path, headers=self.headers, catch_response=True, name=what,
                                 **kwargs) as response:
            ms = (time.perf_counter() - started) * 1000
            body = response.text or ""
            found = OUTCOME.search(body)
            outcome = found.group(1) if found else ("ok" if MODE == "noop" and response.status_code == 200
                                                    else "error")
            if response.status_code >= 500 or outcome == "error":
                response.failure(f"{response.status_code}: {body[:200]!r}")
            else:
                response.success()
            _results.append({"what": what, "ms": ms, "status": response.status_code, "outcome": outcome,
                             "card": self.card, "answered_at": time.time()})
            return body

    @task
    def once(self) -> None:
        if MODE == "noop":
            _sleep_until(self.moment)
            self._timed("noop", "GET", PATH)
            raise StopUser()
        page = self.client.get(PATH, headers=self.headers, name="page before").text or ""
        token = TOKEN.search(page)
        _sleep_until(self.moment)
        if token is None:  # the page showed no form before the release: the reader reloads
            page = self._timed("page", "GET", PATH)
            token = TOKEN.search(page)
        self._timed("request", "POST", PATH, data={"csrf_token": token.group(1) if token else "",
                                                   "card": self.card, "action": "get"})
        raise StopUser()


@events.quitting.add_listener
def _write_results(environment, **_kwargs) -> None:
    with open(os.environ["RUSH_RESULTS"], "w", encoding="utf-8") as out:
        for row in _results:
            out.write(json.dumps(row) + "\n")
