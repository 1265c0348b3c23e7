"""API keys made and revoked at the command line and in the admin panel, and the
API under parallel requests on a real HTTP server on 127.0.0.1: one issue per
Idempotency-Key, one code per reader, and never more answers than a key's limit."""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from helpers import TEST, codes, make_library, make_pool, post, signed_in, this_month, write
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.domain.api_keys import create_key
from kiosk.domain.clock import utcnow
from kiosk.storage.models import Event, Issuance
from kiosk.storage.remote import ApiKey, IdempotentAnswer

SECRET = re.compile(r"kdm_[A-Za-z0-9_-]{43}")


def kiosk(runner, *args):
    result = runner.invoke(main, list(args))
    db.session.remove()
    return result


def new_key(library=None, name: str = "sowa", per_minute: int | None = None) -> str:
    library_id = library.id if library is not None else None
    return write(lambda s: create_key(s, library_id=library_id, name=name, per_minute=per_minute, actor=TEST,
                                      now=utcnow())).secret


@pytest.fixture
def library(app):
    library = make_library("lib")
    make_pool(library, codes("API", 5), this_month())
    return library


# -- the command line ---------------------------------------------------------------------------

def test_the_cli_prints_a_new_key_once_last_on_its_line_and_revokes_it(app, runner, client, library):
    made = kiosk(runner, "api-key", "--library", "lib", "--name", "Sowa OPAC", "--per-minute", "50")
    listed = kiosk(runner, "api-key", "--list")
    same_name = kiosk(runner, "api-key", "--library", "lib", "--name", "Sowa OPAC")

    assert made.exit_code == 0, made.output
    line = made.output.strip().splitlines()[-1]
    secret = line.split()[-1]
    assert SECRET.fullmatch(secret) and made.output.count(secret) == 1
    assert client.get("/api/v1/libraries/lib/pools", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert listed.exit_code == 0 and "Sowa OPAC" in listed.output and secret[:12] in listed.output
    assert secret not in listed.output and "50" in listed.output
    assert same_name.exit_code == 1 and "już jest" in same_name.output
    stored = db.session.scalar(select(ApiKey))
    assert secret not in (stored.secret_sha256, stored.prefix) and stored.per_minute == 50

    revoked = kiosk(runner, "api-key", "--library", "lib", "--revoke", "Sowa OPAC")
    again = kiosk(runner, "api-key", "--library", "lib", "--revoke", "Sowa OPAC")

    assert revoked.exit_code == 0 and again.exit_code == 1
    assert client.get("/api/v1/libraries/lib/pools", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    # The name is free again.
    assert kiosk(runner, "api-key", "--library", "lib", "--name", "Sowa OPAC").exit_code == 0


def test_the_cli_makes_a_consortium_key_and_says_what_it_needs(app, runner, client, library):
    made = kiosk(runner, "api-key", "--consortium", "--name", "Konsorcjum")
    library_key_revoke = kiosk(runner, "api-key", "--library", "lib", "--revoke", "Konsorcjum")
    neither = kiosk(runner, "api-key", "--name", "x")
    both = kiosk(runner, "api-key", "--library", "lib", "--consortium", "--name", "x")
    bad_limit = kiosk(runner, "api-key", "--library", "lib", "--name", "x", "--per-minute", "0")
    unknown = kiosk(runner, "api-key", "--library", "nope", "--name", "x")

    secret = made.output.split()[-1]
    assert made.exit_code == 0 and SECRET.fullmatch(secret)
    assert client.get("/api/v1/libraries", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert library_key_revoke.exit_code == 1  # a consortium key is no library's
    assert neither.exit_code == both.exit_code == 2
    assert bad_limit.exit_code == 1 and "od 1 do" in bad_limit.output
    assert unknown.exit_code == 2
    assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 1


# -- the admin panel ----------------------------------------------------------------------

def test_a_library_admin_makes_a_key_sees_it_once_and_revokes_it(app, library):
    client, _user, _ = signed_in(app, "library_admin", library)

    made = post(client, "/admin/lib/api-keys", {"name": "Biblioteka cyfrowa", "per_minute": "20"},
                token_from="/admin/lib/api-keys")
    page = made.get_data(as_text=True)
    secret = SECRET.search(page).group(0)
    later = client.get("/admin/lib/api-keys").get_data(as_text=True)
    client.get("/api/v1/libraries/lib/pools", headers={"Authorization": f"Bearer {secret}"})
    used = client.get("/admin/lib/api-keys").get_data(as_text=True)

    assert made.status_code == 200 and "nie pokażę go ponownie" in page
    assert secret not in later and secret[:12] + "…" in later and "Biblioteka cyfrowa" in later and ">20<" in later
    assert "jeszcze nie użyty" in later and "jeszcze nie użyty" not in used
    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", used)
    key_id = db.session.scalar(select(ApiKey.id))
    revoked = post(client, f"/admin/lib/api-keys/{key_id}/revoke", {"scope": "library"},
                   token_from="/admin/lib/api-keys")
    assert revoked.status_code == 302
    assert db.session.scalar(select(ApiKey.revoked_at)) is not None
    assert "Biblioteka cyfrowa" not in client.get("/admin/lib/api-keys").get_data(as_text=True)
    # Without the form's token nothing is revoked or made.
    assert client.post("/admin/lib/api-keys", data={"name": "x"}).status_code == 400
    kinds = list(db.session.scalars(select(Event.kind).where(Event.kind.like("api_key%")).order_by(Event.id)))
    assert kinds == ["api_key_created", "api_key_revoked"]


def test_an_admin_neither_sees_nor_revokes_another_library_s_or_the_consortium_s_keys(app, library):
    other = make_library("other")
    theirs, consortium_secret = new_key(other, "theirs"), new_key(None, "wspólny")
    client, _user, _ = signed_in(app, "library_admin", library)
    their_id = db.session.scalar(select(ApiKey.id).where(ApiKey.name == "theirs"))
    shared_id = db.session.scalar(select(ApiKey.id).where(ApiKey.name == "wspólny"))

    page = client.get("/admin/lib/api-keys").get_data(as_text=True)
    other_page = client.get("/admin/other/api-keys")
    by_this_url = post(client, f"/admin/lib/api-keys/{their_id}/revoke", {"scope": "library"},
                       token_from="/admin/lib/api-keys")
    shared = post(client, f"/admin/lib/api-keys/{shared_id}/revoke", {"scope": "consortium"},
                  token_from="/admin/lib/api-keys")
    consortium_key = post(client, "/admin/lib/api-keys", {"name": "mój", "scope": "consortium"},
                          token_from="/admin/lib/api-keys")

    assert "theirs" not in page and "wspólny" not in page and theirs[:12] not in page
    assert other_page.status_code == 404 and by_this_url.status_code == 404 and shared.status_code == 404
    assert consortium_key.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_not(None))) == 0
    assert consortium_secret


def test_a_consortium_admin_makes_and_revokes_consortium_keys(app, library):
    client, _user, _ = signed_in(app, "consortium_admin")

    made = post(client, "/admin/lib/api-keys", {"name": "Konsorcjum", "scope": "consortium"},
                token_from="/admin/lib/api-keys")
    secret = SECRET.search(made.get_data(as_text=True)).group(0)
    page = client.get("/admin/lib/api-keys").get_data(as_text=True)
    key = db.session.scalar(select(ApiKey))

    assert key.library_id is None and "Klucze konsorcjum" in page and "Konsorcjum" in page
    assert post(client, f"/admin/lib/api-keys/{key.id}/revoke", {"scope": "library"},
                token_from="/admin/lib/api-keys").status_code == 404  # not this library's key
    assert post(client, f"/admin/lib/api-keys/{key.id}/revoke", {"scope": "consortium"},
                token_from="/admin/lib/api-keys").status_code == 302
    assert client.get("/api/v1/libraries", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


# -- parallel requests on a real server ----------------------------------------------------

@contextmanager
def served(app):
    """The app on a threaded HTTP server on 127.0.0.1 (werkzeug's: it stops cleanly)."""
    from werkzeug.serving import make_server

    db.session.commit()  # the test holds no lock while the server works
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def call(url: str, secret: str, body: dict | None = None, **headers) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                     headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
                                              **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        with error:  # its connection closed here, not by the garbage collector in some thread
            return error.code, error.read()


def all_at_once(count: int, work) -> list:
    start, results, lock = threading.Barrier(count), [], threading.Lock()

    def run(n: int):
        start.wait()
        result = work(n)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == count
    return results


def test_parallel_retries_with_one_idempotency_key_issue_once_and_answer_alike(app, library):
    secret = new_key(library)
    with served(app) as base:
        answers = all_at_once(8, lambda n: call(f"{base}/api/v1/libraries/lib/issuances", secret,
                                                {"card": "12345678"}, **{"Idempotency-Key": "same-request"}))

    assert {status for status, _ in answers} == {201}, answers
    assert len({body for _, body in answers}) == 1
    assert db.session.scalar(select(func.count()).select_from(Issuance)) == 1
    assert db.session.scalar(select(Issuance.print_count)) == 1
    assert db.session.scalar(select(func.count()).select_from(IdempotentAnswer)) == 1
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "reprint")) == 0


def test_parallel_readers_never_share_a_code_and_the_rest_hear_no_codes_left(app, library):
    secret = new_key(library)
    with served(app) as base:
        answers = all_at_once(8, lambda n: call(f"{base}/api/v1/libraries/lib/issuances", secret,
                                                {"card": f"7000000{n}"}))

    given = [json.loads(body)["code"] for status, body in answers if status == 201]
    refused = [json.loads(body)["type"] for status, body in answers if status == 409]
    assert len(given) == 5 == len(set(given)) and refused == ["/api/v1/problems/no-codes-left"] * 3


def test_parallel_requests_never_get_more_answers_than_the_key_s_limit(app, library):
    secret = new_key(library, per_minute=5)
    if utcnow().second > 50:  # all of it within one minute
        time.sleep(61 - utcnow().second)
    with served(app) as base:
        answers = all_at_once(12, lambda n: call(f"{base}/api/v1/libraries/lib/pools", secret))

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 5 + [429] * 7, statuses
