"""The SIP2 client against real sockets: pysip2 serving a patron table, and hostile
servers written by hand (tests/sip2_peers.py). Nothing of kiosk.sip2 is mocked."""
from __future__ import annotations

import logging
import re
import socket
import threading
import time
import tracemalloc
from datetime import datetime
from types import SimpleNamespace

import pytest
from pysip2 import calculate_checksum

from kiosk.sip2 import (PatronAnswer, Sip2Settings, Sip2Unavailable, close_thread_connections,
                        patron_information)
from kiosk.sip2 import protocol
from sip2_peers import (Patron, RawPeer, acs_status, bad_checksum_server, byte_by_byte_server, eager_server,
                        flood_server, garbage_server, half_answer_server, offline_server,
                        resend_asking_server, silent_server, sip2_server, slow_server, stale_answer_server,
                        now_18, stalling_server, tls_server)

ANNA, BLOCKED, POLARIS, UNKNOWN = "29990010000017", "29990010000025", "29990010000033", "29990019999999"
PIN, WRONG_PIN = "Kq7pin", "Zx9pin"
LOGIN = ("kiosk-sip", "haslo-Sekret-9")
PATRONS = {
    ANNA: Patron(pin=PIN, name="Anna Żółkiewska", fee="12.50", email="anna@example.pl",
                 expiry="20271231", birth="20120315", charged=3, messages=("Witaj", "Miłego dnia"),
                 vendor={"PC": "DZIECKO", "ZY": "vendor value"}),
    # Charge privileges denied, card reported lost, excessive outstanding fines.
    BLOCKED: Patron(name="Jan Kowalski", status="Y   Y     Y   "),
    POLARIS: Patron(name="Ewa Nowak", birth="19800101", birth_field="BC"),
}
SECRETS = (ANNA, BLOCKED, POLARIS, UNKNOWN, PIN, WRONG_PIN, LOGIN[1])


@pytest.fixture(autouse=True)
def no_secret_is_ever_logged(caplog):
    """Every test: afterwards this thread's connections are closed, and no log record
    (ours or pysip2's, from any thread) holds a card number, a PIN or the password."""
    caplog.set_level(logging.DEBUG)
    yield
    close_thread_connections()
    # In teardown caplog.text holds only teardown's records: read the test's own.
    said = "\n".join(record.getMessage() for phase in ("setup", "call") for record in caplog.get_records(phase))
    assert not [secret for secret in SECRETS if secret in said]


def settings(peer, **options) -> Sip2Settings:
    return Sip2Settings(host="127.0.0.1", port=peer.port, institution="KODOMAT",
                        **{"timeout": 2.0, **options})


def unavailable(kind: str, peer, **options) -> Sip2Unavailable:
    """Asks about ANNA with her PIN, expects Sip2Unavailable of `kind` without secrets."""
    with pytest.raises(Sip2Unavailable) as caught:
        patron_information(settings(peer, **options), ANNA, PIN)
    assert caught.value.kind == kind
    assert not [secret for secret in SECRETS if secret in str(caught.value)]
    return caught.value


@pytest.fixture
def server():
    with sip2_server(PATRONS) as running:
        yield running


# -- what the library system says -------------------------------------------------

def test_a_valid_patron_comes_back_as_sent(server):
    answer = patron_information(settings(server), ANNA)
    assert isinstance(answer, PatronAnswer) and answer.command == "64"
    assert (answer.patron_status, answer.valid_patron, answer.valid_password) == (" " * 14, True, None)
    assert answer.first("AA") == ANNA and answer.first("AO") == "KODOMAT"
    assert answer.first("AE") == "Anna Żółkiewska" and answer.first("BE") == "anna@example.pl"
    assert answer.fields["AF"] == ("Witaj", "Miłego dnia") and answer.first("XX") is None
    assert answer.counts == {"hold": 0, "overdue": 0, "charged": 3, "fine": 0, "unavailable_holds": 0}
    assert 0 < answer.ms < 2000
    assert server.requests == ["99", "63"]


def test_an_unknown_card_is_not_a_valid_patron(server):
    answer = patron_information(settings(server), UNKNOWN)
    assert (answer.valid_patron, answer.first("AE")) == (False, "")


def test_a_blocked_patron_keeps_its_status_flags_as_sent(server):
    answer = patron_information(settings(server), BLOCKED)
    assert answer.patron_status == "Y   Y     Y   " and answer.valid_patron is True


def test_expiry_fee_birth_dates_and_vendor_fields_arrive_in_order(server):
    answer = patron_information(settings(server), ANNA)
    assert (answer.first("PA"), answer.first("BV"), answer.first("PB")) == ("20271231", "12.50", "20120315")
    assert (answer.first("PC"), answer.first("ZY")) == ("DZIECKO", "vendor value")
    assert list(answer.fields)[-4:] == ["PA", "PB", "PC", "ZY"]
    polaris = patron_information(settings(server), POLARIS)
    assert polaris.first("BC") == "19800101" and "PB" not in polaris.fields


@pytest.mark.parametrize("pin, says", [(PIN, True), (WRONG_PIN, False), (None, None)])
def test_the_pin_is_checked_only_when_given(server, pin, says):
    assert patron_information(settings(server), ANNA, pin).valid_password is says


def test_a_refused_login_is_login_refused():
    with sip2_server(PATRONS, login=LOGIN) as server:
        unavailable("login_refused", server, login_user=LOGIN[0], login_password="not-it")


def test_an_accepted_login_comes_first():
    with sip2_server(PATRONS, login=LOGIN, error_detection="required") as server:
        mine = settings(server, login_user=LOGIN[0], login_password=LOGIN[1], location="Filia 3")
        assert patron_information(mine, ANNA, PIN).valid_password is True
        assert server.requests == ["93", "99", "63"]
        assert LOGIN[1] not in repr(mine)


def test_a_server_without_patron_information_is_asked_with_patron_status():
    with sip2_server(PATRONS, patron_information=False) as server:
        answer = patron_information(settings(server), ANNA, PIN)
        assert (answer.command, answer.first("AE"), answer.valid_password) == ("24", "Anna Żółkiewska", True)
        assert answer.counts == {} and answer.first("PA") == "20271231"
        assert patron_information(settings(server), ANNA).valid_password is None
        assert server.requests == ["99", "23", "23"]


@pytest.mark.parametrize("encoding, name", [
    ("utf-8", "Zażółć gęślą jaźń, Łódź Ńą"), ("cp1250", "Zażółć gęślą jaźń, Łódź Ńą"),
    ("cp852", "Zażółć gęślą jaźń, Łódź Ńą"), ("cp850", "Kraków Ó")])
def test_polish_names_decode_exactly_in_each_encoding(encoding, name):
    with sip2_server({ANNA: Patron(name=name)}, encoding=encoding) as server:
        assert patron_information(settings(server, encoding=encoding), ANNA).first("AE") == name


# -- connections ----------------------------------------------------------------

def test_one_connection_serves_many_questions(server):
    for _ in range(10):
        assert patron_information(settings(server), ANNA).valid_patron
    assert server.connections == 1 and server.requests.count("99") == 1


def test_a_server_restart_between_questions_is_invisible(caplog):
    with sip2_server(PATRONS) as first:
        port = first.port
        patron_information(settings(first), ANNA)
    with sip2_server(PATRONS, port=port) as second:
        assert patron_information(settings(second), ANNA).first("AE") == "Anna Żółkiewska"
        assert second.connections == 1 and "closed the idle connection" in caplog.text


def test_threads_never_share_a_connection():
    cards = [f"2999002000{n:04d}" for n in range(8)]
    patrons = {card: Patron(name=f"Czytelnik {n}") for n, card in enumerate(cards)}
    wrong: list[str] = []
    with sip2_server(patrons) as server:
        together = threading.Barrier(len(cards), timeout=10)

        def ask(card):
            together.wait()  # all ask at once, and all keep their connection until all are done
            try:
                for _ in range(20):
                    if patron_information(settings(server), card).first("AA") != card:
                        wrong.append(card)
            finally:
                together.wait()
                close_thread_connections()
        threads = [threading.Thread(target=ask, args=(card,)) for card in cards]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert wrong == [] and server.connections == 8 and server.requests.count("63") == 160
        assert sorted(card for seen in server.cards_asked for card in seen) == cards  # one each


def test_a_thread_keeps_at_most_eight_connections(server):
    places = [settings(server, location=f"Filia {n}") for n in range(9)]  # nine cache keys
    for place in places:
        patron_information(place, ANNA)
    assert server.connections == 9
    patron_information(places[-1], ANNA)  # still open
    patron_information(places[0], ANNA)  # the oldest was closed: a new one
    assert server.connections == 10


def test_a_refused_connection_is_connect():
    with socket.socket() as bound:  # bound, never listening: connecting is refused
        bound.bind(("127.0.0.1", 0))
        unavailable("connect", SimpleNamespace(port=bound.getsockname()[1]))


def test_a_silent_server_times_out_on_time():
    with silent_server() as peer:
        started = time.monotonic()
        unavailable("timeout", peer, timeout=0.5)
        assert 0.45 <= time.monotonic() - started < 1.0


def test_a_connection_that_timed_out_is_never_used_again():
    with stalling_server() as peer:  # ignores the second patron request only
        assert patron_information(settings(peer, timeout=0.3), ANNA).valid_patron
        unavailable("timeout", peer, timeout=0.3)
        assert patron_information(settings(peer, timeout=0.3), ANNA).valid_patron
        assert peer.connections == 2


def test_the_timeout_bounds_the_whole_question_not_each_step():
    with slow_server(delay=1.0) as peer:  # status, then patron request: 2 s in all
        started = time.monotonic()
        unavailable("timeout", peer, timeout=1.2)
        assert time.monotonic() - started < 1.8  # one timeout for the whole question, not one a step


# -- hostile servers --------------------------------------------------------------

def test_half_an_answer_is_closed():
    with half_answer_server() as peer:
        unavailable("closed", peer)


def test_one_bad_checksum_is_mended_by_asking_again():
    with bad_checksum_server(times=1) as peer:
        assert patron_information(settings(peer), ANNA).first("AE") == "Anna Nowak"
        assert peer.requests == ["99", "63", "97"]


def test_bad_checksums_every_time_are_checksum():
    with bad_checksum_server(times=100) as peer:
        unavailable("checksum", peer)


def test_a_server_asking_for_our_request_again_gets_it():
    with resend_asking_server() as peer:
        assert patron_information(settings(peer), ANNA).valid_patron
        assert peer.requests == ["99", "63", "63"]


def test_garbage_is_garbage_and_its_log_line_hides_the_card(caplog):
    with garbage_server() as peer:
        unavailable("garbage", peer)
    line = next(r.getMessage() for r in caplog.records if r.name == "kiosk.sip2")
    # The shape of what came (an HTML page echoing the request), never a value of it.
    assert "cannot be read" in line and "'?hxxx><xxxx>99999" in line and ANNA not in line


def test_an_answer_to_another_request_is_garbage():
    with stale_answer_server() as peer:
        unavailable("garbage", peer)


def test_an_offline_server_is_offline():
    with offline_server() as peer:
        unavailable("offline", peer)


def test_an_answer_arriving_byte_by_byte_with_crlf_is_read():
    with byte_by_byte_server() as peer:
        for _ in range(3):
            assert patron_information(settings(peer), ANNA).first("AA") == ANNA
        assert peer.connections == 1


def test_two_answers_in_one_packet_are_read_one_after_the_other():
    with eager_server() as peer:
        assert patron_information(settings(peer, login_user="u", login_password="p"), ANNA).valid_patron
        assert peer.requests == ["93", "99", "63"]


def test_ten_megabytes_without_cr_are_garbage_in_little_memory():
    with flood_server(megabytes=10) as peer:
        tracemalloc.start()
        try:
            unavailable("garbage", peer)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 512 * 1024


def test_tls_with_our_ca_works_and_an_unknown_or_missing_ca_is_tls(tmp_path):
    with tls_server(tmp_path) as peer:
        assert patron_information(settings(peer, tls=True, ca_file=peer.ca_file), ANNA).valid_patron
        unavailable("tls", peer, tls=True)
        unavailable("tls", peer, tls=True, ca_file=str(tmp_path / "no-such-ca.pem"))


# -- frames -------------------------------------------------------------------------

def test_checksums_agree_with_pysip2_and_with_evergreens_constant():
    assert protocol.RESEND_REQUEST == b"97AZ" + calculate_checksum(b"97AZ").encode() + b"\r" == b"97AZFEF5\r"
    frame = protocol.seal("63000" + "x" * 40 + "AAŻółw|", 7, "cp852")
    assert frame.endswith(calculate_checksum(frame[:-5]).encode() + b"\r") and b"AY7AZ" in frame


def test_requests_follow_the_spec_layout():
    at = datetime(2026, 3, 4, 5, 6, 7)
    assert protocol.patron_information_request("KOD", "123", None, at) == \
        "6300020260304    050607          AOKOD|AA123|AC|"
    assert protocol.patron_status_request("KOD", "123", "9", at) == "2300020260304    050607AOKOD|AA123|AC|AD9|"
    assert protocol.login_request("u", "p", None) == "9300CNu|COp|"
    assert protocol.status_request() == "9900402.00"


@pytest.mark.parametrize("payload", [b"64" + b" " * 20, b"24" + b" " * 35 + b"AOx", b"98" + b" " * 40,
                                     b"64" + b" " * 58 + b"AO|", b"64" + b" " * 59 + b"AOx|AEA\0B|"])
def test_malformed_answers_are_frame_errors(payload):
    with pytest.raises(protocol.FrameError):
        protocol.parse_patron_answer(protocol.open_frame(payload, 0), "64", "utf-8", 1.0)


def test_a_card_that_cannot_travel_in_a_field_is_refused_without_repeating_it(server):
    with pytest.raises(ValueError) as caught:
        patron_information(settings(server), "12|AD0000")
    assert "12|AD" not in str(caught.value)
    with pytest.raises(ValueError):
        Sip2Settings(host="127.0.0.1", port=6001, encoding="latin-1")


def test_log_snippets_mask_cards_pins_and_passwords():
    line = protocol.redacted("64 AA123456|AD9876|AEŁucja Żółkiewska|BEl.z@example.pl|".encode(),
                             "utf-8", ("123456",))
    assert not any(s in line for s in ("123456", "9876", "Łucja", "Żół", "example")) and len(line) < 100
    assert line.startswith("'64 xx***|AD9999|AExxxxx xxxxxxxxxx|BEx.x?xxxxxxx.xx|")


def test_an_unasked_answer_never_answers_the_next_question():
    """A server without error detection sends one answer twice: the next card must not
    get the first card's answer (the connection is out of step and opened afresh)."""
    def script(connection):
        asked = 0
        while (frame := connection.read_frame()) is not None:
            if frame.startswith(b"99"):
                connection.send(acs_status(None))
                continue
            asked += 1
            card = re.search(rb"\|AA([^|]*)\|", frame).group(1)
            answer = (b"64              000" + now_18().encode() + b"0000000000000000    0000AOX|AA" + card
                      + b"|AEx|BLY|\r")
            connection.send(answer * (2 if asked == 1 else 1))

    with RawPeer(script) as peer:
        first = patron_information(settings(peer), "11111111")
        time.sleep(0.1)  # the duplicate has arrived
        second = patron_information(settings(peer), "99999999")
    assert first.first("AA") == "11111111" and second.first("AA") == "99999999"
    assert peer.connections == 2


def test_new_settings_for_a_server_close_the_old_connection_to_it(server):
    patron_information(settings(server), ANNA)
    patron_information(settings(server, timeout=2.5), ANNA)  # say an admin changed the timeout
    deadline = time.monotonic() + 2
    while server.open_connections() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.connections == 2 and server.open_connections() == 1
