"""No log line holds a card number: the grep over the whole run's logs.

Named to run last: by then the log file (log_watch.LOG_FILE) holds every line this
process logged and every line the servers started by the tests logged, and
log_watch.CARDS_USED every card number the run turned into a reader key. Run alone,
it makes its own traffic first (kiosk scans, a desk issue), so it never checks an
empty file."""
from __future__ import annotations

import json

import pytest

import log_watch
from helpers import codes, kiosk_scan, make_library, make_pool, post, this_month


def test_the_checker_finds_a_card_in_a_line():
    cards = {"12345678", "AB1234CD"}

    assert log_watch.cards_in('{"message": "card 12345678 refused"}', cards) == {"12345678"}
    assert log_watch.cards_in('{"message": "ab1234cd"}', cards) == {"AB1234CD"}
    assert log_watch.cards_in('{"message": "x112345678 and 1234567 and AB1234"}', cards) == set()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_log_line_of_the_run_holds_a_card_number(app, enrolled_kiosk, signed_in_desk):
    # Traffic of its own, so the check never reads an empty log even when run alone.
    library = make_library()
    make_pool(library, codes("LOG", 5), this_month())
    kiosk, _enrolment = enrolled_kiosk(library)
    assert kiosk_scan(kiosk, "80800808").status_code == 200
    kiosk_scan(kiosk, "80800808")  # a reprint
    kiosk_scan(kiosk, "8080<>")  # refused by its format
    desk = signed_in_desk(library)
    assert post(desk, "/desk/lib/issue", {"card": "70700707"}, token_from="/desk/lib/").status_code == 200

    cards = {card for card in log_watch.CARDS_USED if len(card) >= 6}
    assert {"80800808", "70700707"} <= cards
    lines = log_watch.LOG_FILE.read_text(encoding="utf-8", errors="replace").splitlines()
    assert any('"logger": "kiosk.http"' in line for line in lines), "the watch wrote no access line"

    leaks = [(line, sorted(log_watch.cards_in(line, cards))) for line in lines if log_watch.cards_in(line, cards)]

    assert not leaks, "card numbers in log lines:\n" + "\n".join(
        f"{found}: {line[:300]}" for line, found in leaks[:20])
    print(f"\n{len(lines)} log lines checked against {len(cards)} card numbers")


def test_every_line_is_one_json_object():
    for line in log_watch.LOG_FILE.read_text(encoding="utf-8", errors="replace").splitlines():
        assert isinstance(json.loads(line), dict), line[:200]
