"""E-mail: a code's message goes from the outbox, written in the issuing
transaction, to a real SMTP server on 127.0.0.1 (tests/smtp_peer.py): once, in the
reader's language, with the slip as a PDF; a server that is down loses nothing and,
once up, gets each message once, whichever senders run side by side."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, update

from helpers import (PROJECT, TEST, closed_port, codes, make_library, make_pool, post, signed_in, this_month,
                     write)
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.clock import format_date, utcnow
from kiosk.domain.issuing import issue_code, replace_code
from kiosk.domain.outbox import (LEASE, MAX_ATTEMPTS, MailProblem, claim_next, enqueue_code_mail, pause_after,
                                 split_error)
from kiosk.mail.background import start_mail_thread, wake
from kiosk.mail.sender import send_due
from kiosk.mail.settings import MailNotConfigured, mail_settings
from kiosk.storage.models import Channel, Code, Event, Issuance, OutboxMessage
from smtp_peer import SmtpPeer

SENDER = "Biblioteka Testowa <kody@biblioteka.example>"
SUBJECTS = {"pl": "Twój kod Legimi na", "en": "Your Legimi code for", "uk": "Ваш код Legimi на"}
WARNINGS = {"pl": "Aktywuj kod", "en": "Activate the code", "uk": "Активуйте код"}


@pytest.fixture
def peer():
    server = SmtpPeer().start()
    yield server
    server.stop()


def point_at(app, port: int, **more) -> None:
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_DEFAULT_SENDER=SENDER, **more)


def library_with_codes(slug: str = "lib", count: int = 20):
    library = make_library(slug)
    make_pool(library, codes(slug.upper() + "M", count), this_month(), filename=f"{slug}.xlsx")
    return library


def issued_and_queued(app, card: str, *, library: str = "lib", to: str = "czytelnik@example.org",
                      language: str = "pl"):
    """A code issued and its message written in the same unit of work, as the online form does."""
    pepper = app.config["READER_PEPPER"]

    def work(s):
        result = issue_code(s, library_slug=library, card_number=card, channel=Channel.ONLINE, actor=TEST,
                            now=utcnow(), pepper=pepper)
        issuance = s.get(Issuance, result.issuance_id)
        message_id = enqueue_code_mail(s, library_id=issuance.library_id, issuance_id=result.issuance_id,
                                       to_address=to, language=language, now=utcnow())
        return result, message_id
    return write(work)


def change_row(message_id: int, **values) -> None:
    write(lambda s: s.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)))


def rows() -> list[OutboxMessage]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def send(app, *, later: timedelta = timedelta(0), **options):
    """One round of the sender, as if `later` had passed."""
    return send_due(db.session, mail_settings(app.config), clock=lambda: utcnow() + later, **options)


def parts(message) -> dict[str, list]:
    found: dict[str, list] = {}
    for part in message.walk():
        if not part.is_multipart():
            found.setdefault(part.get_content_type(), []).append(part)
    return found


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


# -- one message, as the reader gets it ----------------------------------------------------

@pytest.mark.parametrize("language", ["pl", "en", "uk"])
def test_the_message_arrives_once_in_the_readers_language_with_text_html_and_the_slip(app, peer, language):
    library_with_codes()
    result, _id = issued_and_queued(app, "12345678", language=language)
    point_at(app, peer.port)

    done = send(app)
    again = send(app, later=timedelta(hours=3))

    assert (done.sent, done.all_sent, again.sent) == (1, True, 0)
    [message] = peer.wait_for(1)
    time.sleep(0.2)
    assert len(peer.received) == 1
    assert peer.envelopes == [("kody@biblioteka.example", ["czytelnik@example.org"])]
    assert str(message["Subject"]).startswith(SUBJECTS[language]) and "Biblioteka lib" in str(message["Subject"])
    assert message["To"] == "czytelnik@example.org" and message["From"] == SENDER
    assert message["Content-Language"] == language and message["Auto-Submitted"] == "auto-generated"
    found = parts(message)
    text, html = found["text/plain"][0].get_content(), found["text/html"][0].get_content()
    grouped = " ".join(result.code[i:i + 4] for i in range(0, len(result.code), 4))
    deadline = format_date(this_month()[1])
    for body in (text, html):
        assert grouped in body and deadline in body and WARNINGS[language] in body
        assert "https://www.legimi.pl/" in body
    assert f'lang="{language}"' in html
    [attachment] = found["application/pdf"]
    assert attachment.get_filename() == f"kod-S{result.issuance_id:06d}.pdf"
    assert result.code in pdf_text(attachment.get_content()).replace(" ", "")
    [row] = rows()
    assert row.sent_at is not None and row.attempts == 1 and row.failed_at is None and row.claimed_until is None
    assert re.fullmatch(rf"<kodomat\.outbox\.{row.id}\.\d{{20}}@biblioteka\.example>", message["Message-ID"])


def test_a_rolled_back_issue_leaves_no_message_and_no_code_handed_out(app, peer):
    library_with_codes()
    point_at(app, peer.port)
    pepper = app.config["READER_PEPPER"]

    def work_then_fail(s):
        result = issue_code(s, library_slug="lib", card_number="12345678", channel=Channel.ONLINE, actor=TEST,
                            now=utcnow(), pepper=pepper)
        enqueue_code_mail(s, library_id=s.get(Issuance, result.issuance_id).library_id,
                          issuance_id=result.issuance_id, to_address="a@example.org", language="pl", now=utcnow())
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # written, in this transaction
        raise RuntimeError("the request failed after the issue")

    with pytest.raises(RuntimeError):
        write(work_then_fail)

    assert rows() == [] and db.session.scalar(select(func.count()).select_from(Issuance)) == 0
    assert send(app).sent == 0 and peer.received == []


# -- a server that is down, then up ------------------------------------------------------

def test_a_server_that_is_down_loses_nothing_and_once_up_gets_each_message_once(app):
    library_with_codes()
    port = closed_port()
    point_at(app, port)
    for n in range(3):
        issued_and_queued(app, f"1000000{n}", to=f"r{n}@example.org")

    first = send(app)
    # Each later round finds the next message due (the first waits its pause): one attempt each.
    second, third = send(app, later=timedelta(seconds=1)), send(app, later=timedelta(seconds=2))

    assert (first.sent, first.retrying, first.still_due) == (0, 1, 2)
    assert first.stopped.problem is MailProblem.UNREACHABLE and not first.all_sent
    assert (second.retrying, third.retrying, third.still_due) == (1, 1, 0)
    waiting = rows()
    assert [r.attempts for r in waiting] == [1, 1, 1]
    assert all(r.sent_at is None and r.failed_at is None and r.claimed_until is None for r in waiting)
    assert {split_error(r.last_error)[0] for r in waiting} == {MailProblem.UNREACHABLE}
    assert all(r.next_attempt_at > utcnow() + pause_after(1) - timedelta(seconds=5) for r in waiting)
    assert send(app, later=timedelta(seconds=3)).sent == 0  # nothing due during the pause: not tried

    peer = SmtpPeer(port).start()
    try:
        up = send(app, later=timedelta(minutes=5))
        again = send(app, later=timedelta(hours=2))
        received = peer.wait_for(3)
        time.sleep(0.2)
    finally:
        peer.stop()

    assert (up.sent, up.all_sent, again.sent) == (3, True, 0)
    assert len(peer.received) == 3 and len(set(peer.message_ids())) == 3
    assert sorted(to for _from, [to] in peer.envelopes) == ["r0@example.org", "r1@example.org", "r2@example.org"]
    assert all(r.sent_at is not None and r.attempts == 2 for r in rows())
    assert len(received) == 3


def test_a_server_that_never_answers_times_out_and_the_message_waits(app):
    library_with_codes()
    silent = socket.create_server(("127.0.0.1", 0))  # takes the connection, never says a word
    held = []
    taker = threading.Thread(target=lambda: held.append(silent.accept()), daemon=True)
    taker.start()
    point_at(app, silent.getsockname()[1], MAIL_TIMEOUT=0.5)
    issued_and_queued(app, "14000001")
    try:
        started = time.monotonic()
        done = send(app)
        took = time.monotonic() - started
    finally:
        for connection, _address in held:
            connection.close()
        silent.close()

    assert (done.sent, done.retrying) == (0, 1) and done.stopped.problem is MailProblem.UNREACHABLE
    assert "timed out" in done.stopped.detail and took < 5
    [row] = rows()
    assert row.failed_at is None and row.sent_at is None and row.attempts == 1


def test_senders_side_by_side_threads_and_the_cli_send_each_message_once(app, tmp_path):
    library_with_codes(count=40)
    peer = SmtpPeer(delay=0.15).start()  # slow enough for the senders to overlap
    point_at(app, peer.port)
    for n in range(30):
        issued_and_queued(app, f"2000{n:04d}", to=f"r{n}@example.org")
    db.session.commit()
    script = Path(sys.executable).with_name("kiosk")
    counts: list[int] = []
    errors: list[BaseException] = []

    def sender():
        with app.app_context():
            try:
                counts.append(send_due(db.session, mail_settings(app.config)).sent)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    try:
        # The command first; the threads join once it has sent a message, so all four run at once.
        cli = subprocess.Popen([str(script), "send-mail"], env=command_env(app, tmp_path, peer.port),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert peer.wait_for(1, seconds=60), cli.communicate()
        threads = [threading.Thread(target=sender) for _ in range(3)]
        for thread in threads:
            thread.start()
        out, err = cli.communicate(timeout=120)
        for thread in threads:
            thread.join(timeout=120)
        peer.wait_for(30)
        time.sleep(0.3)
    finally:
        peer.stop()

    assert errors == [] and cli.returncode == 0, err
    by_cli = int(re.search(r"Wysłano: (\d+)", out)[1])
    assert by_cli >= 1 and sum(counts) >= 1 and sum(counts) + by_cli == 30
    ids = peer.message_ids()
    assert len(ids) == 30 and len(set(ids)) == 30
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows())


def command_env(app, tmp_path: Path, port: int) -> dict:
    """The environment of a `kiosk` command in another process, on this test's database."""
    instance = tmp_path / "cli-instance"
    instance.mkdir(exist_ok=True)
    (instance / "config.py").write_text(
        f'READER_PEPPER = "{app.config["READER_PEPPER"]}"\nSECRET_KEY = "x"\n'
        f'MAIL_SERVER = "127.0.0.1"\nMAIL_PORT = {port}\nMAIL_DEFAULT_SENDER = "{SENDER}"\n', encoding="utf-8")
    return {**os.environ, "KIOSK_INSTANCE": str(instance), "PYTHONPATH": str(PROJECT),
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"]}


# -- refusals: permanent, temporary, and what must not be mailed --------------------------

def test_a_refused_recipient_is_given_up_at_once_the_others_go(app):
    library_with_codes()
    peer = SmtpPeer(refuse={"nikt@example.org": "550 5.1.1 <nikt@example.org>: no such user"}).start()
    point_at(app, peer.port)
    issued_and_queued(app, "30000001", to="nikt@example.org")
    issued_and_queued(app, "30000002", to="ktos@example.org")
    try:
        done = send(app)
        later = send(app, later=timedelta(hours=5))
        peer.wait_for(1)
    finally:
        peer.stop()

    assert (done.sent, done.given_up, done.retrying, later.sent, later.given_up) == (1, 1, 0, 0, 0)
    refused, sent = rows()
    assert refused.failed_at is not None and refused.attempts == 1 and refused.sent_at is None
    assert split_error(refused.last_error) == (MailProblem.RECIPIENT_REFUSED,
                                               "550 5.1.1 <nikt@example.org>: no such user")
    assert sent.sent_at is not None
    assert [to for _f, [to] in peer.envelopes] == ["ktos@example.org"]


def test_a_temporary_refusal_is_tried_again_after_growing_pauses_then_given_up(app):
    library_with_codes()
    peer = SmtpPeer(refuse={"pelna@example.org": "452 4.2.2 mailbox full"}).start()
    point_at(app, peer.port)
    issued_and_queued(app, "40000001", to="pelna@example.org")
    pauses = []
    try:
        elapsed = timedelta(0)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            done = send(app, later=elapsed)
            [row] = rows()
            assert row.attempts == attempt
            if attempt < MAX_ATTEMPTS:
                assert (done.retrying, done.given_up) == (1, 0) and row.failed_at is None
                pauses.append(row.next_attempt_at - (utcnow() + elapsed))
                elapsed = row.next_attempt_at - utcnow() + timedelta(seconds=1)
            else:
                assert (done.retrying, done.given_up) == (0, 1) and row.failed_at is not None
        after = send(app, later=elapsed + timedelta(days=1))
    finally:
        peer.stop()

    assert split_error(row.last_error) == (MailProblem.TEMPORARY, "452 4.2.2 mailbox full")
    minutes = [round(p.total_seconds() / 60) for p in pauses]
    assert minutes[:7] == [1, 2, 4, 8, 16, 32, 60] and set(minutes[6:]) == {60}
    assert after.sent == after.given_up == 0 and peer.received == []


def test_a_withdrawn_code_is_not_mailed_nor_an_expired_one(app, peer):
    library = library_with_codes()
    point_at(app, peer.port)
    withdrawn, _ = issued_and_queued(app, "50000001", to="a@example.org")
    issued_and_queued(app, "50000002", to="b@example.org")
    library_id = library.id
    write(lambda s: replace_code(s, library_id=library_id, issuance_id=withdrawn.issuance_id, reason="nie działa",
                                 actor=TEST, now=utcnow()))

    done = send(app, later=timedelta(days=40))  # past this month: the other code expired unsent

    assert (done.sent, done.given_up) == (0, 2) and peer.received == []
    first, second = rows()
    assert split_error(first.last_error)[0] is MailProblem.CODE_WITHDRAWN and first.failed_at is not None
    assert split_error(second.last_error) == (MailProblem.CODE_EXPIRED, format_date(this_month()[1]))


@pytest.mark.parametrize("address", ["a@example.org\r\nBcc: all@example.org", "no-at-sign", "a@b@c.org",
                                     "ż@example.org", "a@example.org, b@example.org", "a@localhost"])
def test_an_address_no_message_can_go_to_is_given_up_and_nothing_is_sent(app, peer, address):
    library_with_codes()
    point_at(app, peer.port)
    issued_and_queued(app, "60000001", to=address)

    done = send(app)

    assert (done.sent, done.given_up) == (0, 1)
    [row] = rows()
    assert split_error(row.last_error)[0] is MailProblem.BAD_ADDRESS and row.failed_at is not None
    assert peer.received == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the peer, on 127.0.0.1
def test_a_login_is_used_and_a_wrong_one_stops_the_round_and_is_retried(app):
    library_with_codes()
    peer = SmtpPeer(login=("kodomat", "tajne hasło")).start()
    issued_and_queued(app, "70000001", to="a@example.org")
    issued_and_queued(app, "70000002", to="b@example.org")
    try:
        point_at(app, peer.port, MAIL_USERNAME="kodomat", MAIL_PASSWORD="złe")
        wrong = send(app)
        point_at(app, peer.port, MAIL_USERNAME="kodomat", MAIL_PASSWORD="tajne hasło")
        right = send(app, later=timedelta(minutes=2))
        peer.wait_for(2)
    finally:
        peer.stop()

    assert (wrong.sent, wrong.retrying, wrong.still_due) == (0, 1, 1)
    assert wrong.stopped.problem is MailProblem.LOGIN_FAILED and "535" in wrong.stopped.detail
    assert right.sent == 2 and len(peer.received) == 2


# -- leases: a held message is left alone; a sender that died -------------------------------

def test_a_held_message_is_left_alone_until_its_lease_ends(app, peer):
    library_with_codes()
    point_at(app, peer.port)
    issued_and_queued(app, "80000001")
    held = write(lambda s: claim_next(s, now=utcnow()))  # a sender took it and died

    meanwhile = send(app, later=LEASE - timedelta(seconds=5))
    after = send(app, later=LEASE + timedelta(seconds=1))

    assert held is not None and meanwhile.sent == 0 and after.sent == 1
    [row] = rows()
    assert row.attempts == 2 and len(peer.wait_for(1)) == 1


def test_a_sender_that_died_in_the_last_attempt_gives_the_message_up_as_interrupted(app, peer):
    library_with_codes()
    point_at(app, peer.port)
    _result, message_id = issued_and_queued(app, "80000002")
    change_row(message_id, attempts=MAX_ATTEMPTS - 1)
    assert write(lambda s: claim_next(s, now=utcnow())).attempts == MAX_ATTEMPTS

    after = send(app, later=LEASE + timedelta(seconds=1))

    [row] = rows()
    assert after.sent == 0 and row.failed_at is not None and peer.received == []
    assert split_error(row.last_error)[0] is MailProblem.INTERRUPTED


# -- the admin panel ----------------------------------------------------------------------

def test_the_panel_lists_a_failure_for_its_library_only_and_sends_it_again(app):
    library_a, library_b = library_with_codes("aaa"), library_with_codes("bbb")
    peer = SmtpPeer(refuse={"nikt@example.org": "550 5.1.1 no such user"}).start()
    point_at(app, peer.port)
    issued, message_id = issued_and_queued(app, "90000001", library="aaa", to="nikt@example.org")
    issued_and_queued(app, "90000002", library="aaa", to="czeka@example.org")
    change_row(message_id + 1, attempts=1, next_attempt_at=utcnow() + timedelta(hours=1),
               last_error="temporary: 451 try later")
    try:
        send(app)
        admin_a, _user, _ = signed_in(app, "library_admin", library_a)
        admin_b, _user, _ = signed_in(app, "library_admin", library_b)
        consortium, _user, _ = signed_in(app, "consortium_admin")
        page_a = admin_a.get("/admin/aaa/mail").get_data(as_text=True)
        page_b = admin_b.get("/admin/bbb/mail").get_data(as_text=True)
        foreign = admin_b.get("/admin/aaa/mail")
        overall = consortium.get("/admin/mail").get_data(as_text=True)
        # Another library's admin cannot send it again, through its own URL or the other's.
        through_own = post(admin_b, f"/admin/bbb/mail/{message_id}", {"action": "again"},
                           token_from="/admin/bbb/mail")
        through_theirs = post(admin_b, f"/admin/aaa/mail/{message_id}", {"action": "again"},
                              token_from="/admin/bbb/mail")
        no_token = admin_a.post(f"/admin/aaa/mail/{message_id}", data={"action": "again"})
        still_failed = rows()[0].failed_at is not None
        again = post(admin_a, f"/admin/aaa/mail/{message_id}", {"action": "again"}, token_from="/admin/aaa/mail")
        peer.refuse.clear()
        resent = send(app)
        peer.wait_for(1)
    finally:
        peer.stop()

    assert "nikt@example.org" in page_a and "550 5.1.1 no such user" in page_a
    assert "Serwer poczty odrzucił adres odbiorcy" in page_a and issued.code in page_a
    assert "Czeka na wysłanie: 1" in page_a and "nie udało się: 1" in page_a
    assert "czeka@example.org" in page_a and "451 try later" in page_a  # being tried again, and why
    assert "nikt@example.org" not in page_b and foreign.status_code == 404
    assert "nikt@example.org" in overall and "Biblioteka aaa" in overall
    assert through_theirs.status_code == 404 and no_token.status_code == 400 and still_failed
    assert through_own.status_code == 302
    assert again.status_code == 302 and resent.sent == 1
    assert [to for _f, [to] in peer.envelopes] == ["nikt@example.org"]
    events = [json.loads(d) for d in db.session.scalars(select(Event.details).where(Event.kind == "mail_sent_again"))]
    assert events == [{"issuance_id": issued.issuance_id, "outbox_id": message_id}]


def test_the_panel_says_when_mail_is_not_set_up(app):
    library = library_with_codes()
    issued_and_queued(app, "91000001")
    client, _user, _ = signed_in(app, "library_admin", library)

    page = client.get("/admin/lib/mail").get_data(as_text=True)

    assert 'id="mail-off"' in page and "MAIL_SERVER" in page and "Czeka na wysłanie: 1" in page
    assert 'href="/admin/lib/mail"' in client.get("/admin/lib/").get_data(as_text=True)


# -- settings, the command, the serve thread -----------------------------------------------

def test_settings_use_flask_mails_names_and_defaults_and_refuse_what_cannot_work(tmp_path):
    from kiosk import create_app

    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "config.py").write_text('MAIL_SERVER = "smtp.example.org"\nMAIL_USE_TLS = True\n'
                                        'MAIL_PORT = 587\nMAIL_USERNAME = "u"\nMAIL_PASSWORD = "p"\n'
                                        'MAIL_DEFAULT_SENDER = ("Biblioteka", "kody@example.org")\n')
    bare = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"}, web=False)
    configured = create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": "sqlite://"}, web=False)

    assert {k: bare.config[k] for k in ("MAIL_PORT", "MAIL_USE_TLS", "MAIL_USE_SSL", "MAIL_USERNAME")} == \
        {"MAIL_PORT": 25, "MAIL_USE_TLS": False, "MAIL_USE_SSL": False, "MAIL_USERNAME": None}
    with pytest.raises(MailNotConfigured, match="MAIL_SERVER"):
        mail_settings(bare.config)
    settings = mail_settings(configured.config)
    assert (settings.where, settings.use_tls, settings.username, settings.sender) == \
        ("smtp.example.org:587", True, "u", "Biblioteka <kody@example.org>")
    with pytest.raises(MailNotConfigured, match="MAIL_DEFAULT_SENDER"):
        mail_settings({"MAIL_SERVER": "x", "MAIL_DEFAULT_SENDER": "not an address"})
    with pytest.raises(MailNotConfigured, match="wybierz jedno"):
        mail_settings({"MAIL_SERVER": "x", "MAIL_DEFAULT_SENDER": "a@b.pl", "MAIL_USE_TLS": 1, "MAIL_USE_SSL": 1})
    with pytest.raises(MailNotConfigured, match="MAIL_PORT"):
        mail_settings({"MAIL_SERVER": "x", "MAIL_DEFAULT_SENDER": "a@b.pl", "MAIL_PORT": "dwadzieścia pięć"})


def kiosk(runner, *args):
    result = runner.invoke(main, list(args))
    db.session.remove()
    return result


def test_send_mail_says_what_it_did_and_exits_0_only_when_all_went(app, runner, peer):
    library_with_codes()
    issued_and_queued(app, "11000001")

    off = kiosk(runner, "send-mail")
    point_at(app, closed_port())
    down = kiosk(runner, "send-mail")
    point_at(app, peer.port)
    nothing_due = kiosk(runner, "send-mail")  # the one message waits its pause
    write(lambda s: s.execute(update(OutboxMessage).values(next_attempt_at=utcnow())))
    issued_and_queued(app, "11000002")
    sent = kiosk(runner, "send-mail", "--limit", "1")
    rest = kiosk(runner, "send-mail")
    peer.refuse["nikt@example.org"] = "550 no such user"
    issued_and_queued(app, "11000003", to="nikt@example.org")
    refused = kiosk(runner, "send-mail")

    assert off.exit_code == 1 and "MAIL_SERVER" in off.output and len(rows()) == 3
    assert down.exit_code == 1 and "Wysłano: 0; do ponowienia: 1" in down.output
    assert "Nie udało się połączyć z serwerem poczty" in down.output
    assert nothing_due.exit_code == 0 and "Wysłano: 0; do ponowienia: 0; nie do wysłania: 0" in nothing_due.output
    assert sent.exit_code == 0 and "Wysłano: 1;" in sent.output
    assert rest.exit_code == 0 and "Wysłano: 1;" in rest.output
    assert refused.exit_code == 1 and "nie do wysłania: 1" in refused.output
    assert "odrzucił adres odbiorcy" in refused.output and "550 no such user" in refused.output
    assert len(peer.wait_for(2)) == 2


def test_the_serve_thread_sends_when_woken_and_warns_once_when_mail_is_off(app, peer, caplog):
    library_with_codes()
    with caplog.at_level(logging.WARNING, logger="kiosk.mail"):
        assert start_mail_thread(app) is None
    assert [r.getMessage() for r in caplog.records if "MAIL_SERVER" in r.getMessage()] != []

    point_at(app, peer.port)
    thread = start_mail_thread(app, interval=600)  # only a wake() can make it look again soon
    try:
        time.sleep(0.5)  # its first round: nothing due yet
        issued_and_queued(app, "12000001")
        db.session.commit()
        started = time.monotonic()
        wake()
        received = peer.wait_for(1, seconds=10)
        took = time.monotonic() - started
    finally:
        thread.stop()

    assert len(received) == 1 and took < 10 and not thread.is_alive()
    assert rows()[0].sent_at is not None


def test_kiosk_serve_runs_the_sender(app, peer, tmp_path):
    library_with_codes()
    issued_and_queued(app, "13000001")
    db.session.commit()
    env = command_env(app, tmp_path, peer.port)
    script = Path(sys.executable).with_name("kiosk")
    server = subprocess.Popen([str(script), "serve", "--port", str(closed_port())], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        received = peer.wait_for(1, seconds=30)
        deadline = time.monotonic() + 15
        while rows()[0].sent_at is None and time.monotonic() < deadline:  # marked just after the server took it
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert len(received) == 1, server.stderr.read()
    assert rows()[0].sent_at is not None


def test_every_mail_problem_has_a_sentence_for_staff(app):
    from kiosk.wording.mail import MAIL_PROBLEMS, mail_problem

    with app.test_request_context():
        said = {problem: mail_problem(problem) for problem in MailProblem}
    assert set(MAIL_PROBLEMS) == set(MailProblem) and all(said.values())
    assert len(set(said.values())) == len(said)


# -- the whole way: the reader's form, the serve thread, the SMTP server ------------------

@pytest.mark.parametrize("language", ["pl", "uk"])
def test_a_code_asked_for_on_the_form_reaches_the_readers_mailbox(app, peer, language):
    """The reader posts the form (no PIN): the page never shows the code; the serve
    thread, woken by the form's commit, sends it; the message and its PDF carry
    exactly the code the database handed to that reader."""
    from kiosk.domain.registry import import_cards, prepare_cards

    library = make_library("lib", card_check="registry")
    make_pool(library, codes("FORM", 5), this_month())
    prepared = prepare_cards(b"Karta;E-mail\n12345678;anna@example.org\n", card_pattern=None, check_digit=None,
                             pepper=app.config["READER_PEPPER"])
    library_id = library.id
    write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))
    point_at(app, peer.port)
    thread = start_mail_thread(app, interval=600)  # only the form's wake can make it send soon
    try:
        reader = app.test_client()
        page = reader.get(f"/r/lib/?lang={language}").get_data(as_text=True)
        token = re.search(r'name="csrf_token" id="csrf_token" value="([^"]+)"', page).group(1)
        answer = reader.post("/r/lib/", data={"csrf_token": token, "card": "12345678", "action": "get",
                                              "lang": language}).get_data(as_text=True)
        [message] = peer.wait_for(1, seconds=10)
    finally:
        thread.stop()

    db.session.rollback()
    issued = db.session.scalar(select(Issuance))
    code = db.session.scalar(select(Code.value).where(Code.id == issued.code_id))
    assert 'data-outcome="sent"' in answer and "a•••@e•••.org" in answer
    assert code not in answer.replace(" ", "").replace("\u00a0", "")  # no PIN: never on the screen
    assert issued.channel == "online"
    assert peer.envelopes == [("kody@biblioteka.example", ["anna@example.org"])]
    assert message["Content-Language"] == language and str(message["Subject"]).startswith(SUBJECTS[language])
    [attachment] = parts(message)["application/pdf"]
    assert code in pdf_text(attachment.get_content()).replace(" ", "")
    assert rows()[0].sent_at is not None
