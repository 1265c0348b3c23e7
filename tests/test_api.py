"""The JSON API for library systems (/api/v1): keys (missing, wrong, revoked,
another library's, a consortium's), issuing through the one issuing function (201,
then 200 for the reprint), every refusal's problem type, idempotent retries, the
limit per key, and channel `api` on the issuance and in the log."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from helpers import TEST, codes, make_library, make_pool, this_month, warsaw, write
from kiosk.app.extensions import db
from kiosk.domain.api_keys import create_key, revoke_key
from kiosk.domain.clock import month_window, utcnow
from kiosk.domain.consortium import consortium
from kiosk.storage.models import Event, Issuance
from kiosk.storage.remote import ApiKey, ApiUsage, IdempotentAnswer

PROBLEM = "application/problem+json"


def new_key(library=None, name: str = "sowa", per_minute: int | None = None) -> str:
    library_id = library.id if library is not None else None
    return write(lambda s: create_key(s, library_id=library_id, name=name, per_minute=per_minute, actor=TEST,
                                      now=utcnow())).secret


def bearer(secret: str, **headers) -> dict:
    return {"Authorization": f"Bearer {secret}", **headers}


def post_issue(client, secret: str, slug: str = "lib", body: dict | None = None, **headers):
    return client.post(f"/api/v1/libraries/{slug}/issuances", json=body if body is not None else {"card": "12345678"},
                       headers=bearer(secret, **headers))


@pytest.fixture
def library(app):
    library = make_library("lib")
    make_pool(library, codes("API", 5), this_month())
    return library


# -- keys ---------------------------------------------------------------------------------

def test_without_a_key_or_with_a_wrong_one_the_answer_is_401_and_nothing_is_issued(app, client, library):
    secret = new_key(library)
    missing = client.post("/api/v1/libraries/lib/issuances", json={"card": "12345678"})
    basic = client.post("/api/v1/libraries/lib/issuances", json={"card": "12345678"},
                        headers={"Authorization": "Basic dXNlcjpwYXNz"})
    wrong = post_issue(client, secret[:-2] + "xx")
    not_ours = post_issue(client, "not-a-kodomat-key")
    # A malformed body says nothing before the key is checked.
    unread = client.post("/api/v1/libraries/lib/issuances", data="{", content_type="application/json")

    for answer in (missing, basic, wrong, not_ours, unread):
        assert answer.status_code == 401, answer.get_data(as_text=True)
        assert answer.content_type == PROBLEM
        assert answer.get_json()["type"] == "/api/v1/problems/unauthorized"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert "error=" not in missing.headers["WWW-Authenticate"]
    assert db.session.scalar(select(func.count()).select_from(Issuance)) == 0


def test_a_revoked_key_is_refused_from_its_next_request(app, client, library):
    secret = new_key(library)
    assert post_issue(client, secret).status_code == 201
    key_id = db.session.scalar(select(ApiKey.id))
    write(lambda s: revoke_key(s, library_id=library.id, key_id=key_id, actor=TEST, now=utcnow()))

    again = post_issue(client, secret)

    assert again.status_code == 401 and again.get_json()["type"] == "/api/v1/problems/unauthorized"
    kinds = list(db.session.scalars(select(Event.kind).order_by(Event.id)))
    assert kinds.count("api_key_created") == 1 and kinds.count("api_key_revoked") == 1
    assert "reprint" not in kinds


def test_a_library_key_cannot_name_another_library_which_answers_like_none(app, client, library):
    other = make_library("other")
    make_pool(other, codes("OTH", 3), this_month())
    secret = new_key(library)

    others = [post_issue(client, secret, "other"),
              client.post("/api/v1/libraries/other/cards/lookup", json={"card": "12345678"}, headers=bearer(secret)),
              client.get("/api/v1/libraries/other/pools", headers=bearer(secret))]
    nowhere = post_issue(client, secret, "nowhere")
    listed = client.get("/api/v1/libraries", headers=bearer(secret)).get_json()

    for answer in others:
        assert answer.status_code == 404 and answer.content_type == PROBLEM
        assert answer.get_data() == nowhere.get_data()  # not a byte that tells them apart
    assert listed == {"libraries": [{"slug": "lib", "name": "Biblioteka lib"}]}
    assert db.session.scalar(select(func.count()).select_from(Issuance)) == 0


def test_a_consortium_key_may_name_every_library(app, client, library):
    other = make_library("other")
    make_pool(other, codes("OTH", 3), this_month())
    secret = new_key(None, "konsorcjum")

    here, there = post_issue(client, secret, "lib"), post_issue(client, secret, "other")
    listed = client.get("/api/v1/libraries", headers=bearer(secret)).get_json()

    assert here.status_code == there.status_code == 201
    assert here.get_json()["code"].startswith("API") and there.get_json()["code"].startswith("OTH")
    assert [row["slug"] for row in listed["libraries"]] == ["lib", "other"]


# -- issuing ----------------------------------------------------------------------------------

def test_a_new_code_is_201_and_the_same_reader_again_is_a_200_reprint(app, client, library):
    secret = new_key(library)

    first = post_issue(client, secret, body={"card": "12345678"})
    again = post_issue(client, secret, body={"card": "12345678", "platform": "legimi"})

    assert first.status_code == 201 and again.status_code == 200
    assert first.content_type == again.content_type == "application/json"
    one, two = first.get_json(), again.get_json()
    assert one["status"] == one["outcome"] == "issued" and two["status"] == two["outcome"] == "reprint"
    assert one["code"] == two["code"] and two["print_count"] == 2
    assert one["message"].startswith(f"Wydano kod {one['code']}.")
    assert one["valid_until"] == this_month()[1].isoformat()
    issuance = db.session.scalar(select(Issuance))
    assert issuance.channel == "api" and issuance.actor.startswith("api:sowa#")
    details = [json.loads(d) for d in db.session.scalars(select(Event.details).where(
        Event.kind.in_(["issue", "reprint"])).order_by(Event.id))]
    assert [d["channel"] for d in details] == ["api", "api"]


def test_the_message_is_in_the_language_asked_for(app, client, library):
    secret = new_key(library)

    english = post_issue(client, secret, **{"Accept-Language": "en-GB,en;q=0.9"}).get_json()
    ukrainian = post_issue(client, secret, body={"card": "87654321"}, **{"Accept-Language": "uk"}).get_json()
    unknown = post_issue(client, secret, body={"card": "11112222"}, **{"Accept-Language": "de"}).get_json()

    assert english["message"] == f"Issued code {english['code']}. Activate by {this_month()[1]:%d.%m.%Y}."
    assert ukrainian["message"].startswith(f"Видано код {ukrainian['code']}.")
    assert unknown["message"].startswith(f"Wydano kod {unknown['code']}.")


def refusal(client, secret: str, card: str = "12345678", slug: str = "lib", **body):
    answer = post_issue(client, secret, slug, {"card": card, **body})
    assert answer.content_type == PROBLEM, answer.get_data(as_text=True)
    data = answer.get_json()
    assert data["status"] == answer.status_code and data["title"] and data["detail"]
    # The problem's type has a page of its own.
    assert client.get(data["type"]).status_code == 200
    return answer.status_code, data


def test_every_refusal_has_its_own_problem_type_with_the_issue_fields(app, client, library):
    secret = new_key(library)

    status, data = refusal(client, secret, card="12")
    assert (status, data["type"], data["outcome"], data["reason"]) == (
        409, "/api/v1/problems/card-format", "card_refused", "format")
    assert data["code"] is None and "Karta odrzucona" in data["detail"]

    status, data = refusal(client, secret, card="   ")
    assert (status, data["type"], data["reason"]) == (409, "/api/v1/problems/card-empty", "empty")

    for n in range(5):
        assert post_issue(client, secret, body={"card": f"5000000{n}"}).status_code == 201
    status, data = refusal(client, secret, card="99999999")
    assert (status, data["type"], data["outcome"], data["reason"]) == (
        409, "/api/v1/problems/no-codes-left", "no_codes_left", None)

    empty = make_library("empty")
    consortium_key = new_key(None, "k")
    status, data = refusal(client, consortium_key, slug="empty")
    assert (status, data["type"], data["outcome"]) == (409, "/api/v1/problems/no-pool", "no_pool")
    assert empty.slug == "empty"

    yesterday = (utcnow() - timedelta(days=1)).date()
    write(lambda s: setattr(consortium(s), "service_end", yesterday))
    status, data = refusal(client, secret, card="50000000")  # a reader with a code gets nothing either
    assert (status, data["type"], data["outcome"], data["reason"]) == (
        409, "/api/v1/problems/service-ended", "no_pool", "service_ended")
    assert data["service_end"] == yesterday.isoformat() and data["code"] is None


def test_a_rule_refusal_names_its_reason_and_what_is_missing(app, client, library, runner):
    from kiosk.cli import main

    secret = new_key(library)
    changed = runner.invoke(main, ["rules", "--library", "lib", "--set", "max_debt=0"])
    db.session.remove()
    assert changed.exit_code == 0, changed.output

    status, data = refusal(client, secret, card="22223333")

    # Only the card's format is checked here: nothing says whether the reader owes money.
    assert (status, data["type"], data["outcome"], data["reason"], data["missing"]) == (
        409, "/api/v1/problems/no-data", "not_eligible", "no_data", "debt")
    assert data["next_release"] is None and data["code"] is None


def test_an_unknown_platform_or_a_bad_field_is_422_and_a_body_that_is_no_json_400(app, client, library):
    secret = new_key(library)

    platform = post_issue(client, secret, body={"card": "12345678", "platform": "empik"})
    extra = post_issue(client, secret, body={"card": "12345678", "cardd": "1"})
    long_card = post_issue(client, secret, body={"card": "1" * 65})
    control = post_issue(client, secret, body={"card": "1234\x005678"})
    wrong_type = post_issue(client, secret, body={"card": 12345678})
    not_json = client.post("/api/v1/libraries/lib/issuances", data="{card", content_type="application/json",
                           headers=bearer(secret))
    surrogate = client.post("/api/v1/libraries/lib/issuances", data='{"card": "1234\\ud800"}',
                            content_type="application/json", headers=bearer(secret))
    big = client.post("/api/v1/libraries/lib/issuances", data='{"card": "' + "1" * 20000 + '"}',
                      content_type="application/json", headers=bearer(secret))

    for answer in (platform, extra, long_card, control, wrong_type, surrogate):
        assert answer.status_code == 422, answer.get_data(as_text=True)
        assert answer.get_json()["type"] == "/api/v1/problems/invalid-request" and answer.get_json()["errors"]
    assert not_json.status_code == 400 and not_json.get_json()["type"] == "/api/v1/problems/malformed-request"
    assert big.status_code == 413 and big.get_json()["type"] == "/api/v1/problems/too-large"
    assert all(a.content_type == PROBLEM for a in (platform, extra, not_json, big))
    assert db.session.scalar(select(func.count()).select_from(Issuance)) == 0


def test_errors_outside_the_operations_are_problems_too(app, client, library):
    secret = new_key(library)

    unknown = client.get("/api/v1/nothing-here", headers=bearer(secret))
    method = client.delete("/api/v1/libraries/lib/issuances", headers=bearer(secret))
    posted = client.post("/api/v1/nothing-here", json={"card": "1"})  # no CSRF token asked for, nor a key
    post_to_get = client.post("/api/v1/libraries", json={})
    page = client.get("/no-such-page")  # the app's own pages keep their HTML

    assert unknown.status_code == 404 and unknown.content_type == PROBLEM
    assert method.status_code == 405 and method.content_type == PROBLEM and "POST" in method.headers["Allow"]
    assert posted.status_code == 404 and posted.content_type == PROBLEM
    assert post_to_get.status_code == 405 and post_to_get.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert page.status_code == 404 and page.content_type.startswith("text/html")
    assert "Set-Cookie" not in unknown.headers and "Set-Cookie" not in method.headers


# -- idempotency ----------------------------------------------------------------------------

def test_the_same_idempotency_key_gets_the_first_answer_back_and_no_second_print(app, client, library):
    secret = new_key(library)

    first = post_issue(client, secret, **{"Idempotency-Key": "abc-1"})
    retry = post_issue(client, secret, **{"Idempotency-Key": "abc-1"})
    other_body = post_issue(client, secret, body={"card": "87654321"}, **{"Idempotency-Key": "abc-1"})
    bad_key = post_issue(client, secret, **{"Idempotency-Key": "zażółć"})

    assert first.status_code == retry.status_code == 201
    assert first.get_data() == retry.get_data() and retry.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(select(Issuance.print_count)) == 1
    assert other_body.status_code == 422
    assert other_body.get_json()["type"] == "/api/v1/problems/idempotency-key-reused"
    assert bad_key.status_code == 400 and bad_key.get_json()["type"] == "/api/v1/problems/malformed-request"
    stored = db.session.scalar(select(IdempotentAnswer))
    assert "12345678" not in stored.request_sha256 and stored.status == 201
    # Without a key the reprint is a reprint.
    assert post_issue(client, secret).status_code == 200


def test_a_refusal_is_kept_for_the_retry_too(app, client, library):
    secret = new_key(library)

    first = post_issue(client, secret, body={"card": "12"}, **{"Idempotency-Key": "r1"})
    retry = post_issue(client, secret, body={"card": "12"}, **{"Idempotency-Key": "r1"})

    assert first.status_code == retry.status_code == 409 and first.get_data() == retry.get_data()
    assert retry.content_type == PROBLEM
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.kind == "card_refused")) == 1


# -- lookups and pools ----------------------------------------------------------------------

def test_a_card_lookup_lists_the_reader_s_codes_and_writes_nothing(app, client, library):
    secret = new_key(library)
    given = post_issue(client, secret).get_json()
    events = db.session.scalar(select(func.count()).select_from(Event))

    found = client.post("/api/v1/libraries/lib/cards/lookup", json={"card": "12345678"}, headers=bearer(secret))
    none = client.post("/api/v1/libraries/lib/cards/lookup", json={"card": "00000000"}, headers=bearer(secret))

    assert found.status_code == 200
    (row,) = found.get_json()["codes"]
    assert row["code"] == given["code"] and row["platform"] == "legimi" and row["state"] == "valid"
    assert row["channel"] == "api" and row["print_count"] == 1
    assert none.get_json() == {"codes": []}
    assert db.session.scalar(select(func.count()).select_from(Event)) == events


def test_pools_show_what_is_left_and_the_next_release(app, client, library):
    secret = new_key(library)
    start, end = this_month()
    following = end + timedelta(days=1)
    make_pool(library, codes("NEXT", 2), (following, (following + timedelta(days=40)).replace(day=1)
                                          - timedelta(days=1)), filename="next.xlsx")
    post_issue(client, secret)

    answer = client.get("/api/v1/libraries/lib/pools", headers=bearer(secret)).get_json()

    (legimi,) = answer["platforms"]
    assert legimi["open"]["valid_from"] == start.isoformat() and legimi["open"]["codes_left"] == 4
    assert legimi["next_release"]["valid_from"] == following.isoformat()
    assert legimi["next_release"]["at"].startswith(following.isoformat())
    assert [(p["total"], p["issued"], p["left"]) for p in answer["pools"]] == [(5, 1, 4), (2, 0, 2)]


# -- the limit per key --------------------------------------------------------------------

def test_past_its_limit_a_key_gets_429_with_retry_after_and_its_last_use_is_noted(app, client, library):
    secret = new_key(library, per_minute=3)

    answers = [client.get("/api/v1/libraries/lib/pools", headers=bearer(secret)) for _ in range(5)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    limited = answers[3]
    assert limited.content_type == PROBLEM and limited.get_json()["type"] == "/api/v1/problems/rate-limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    key = db.session.scalar(select(ApiKey))
    assert key.last_used_at is not None
    assert db.session.scalar(select(ApiUsage.requests)) == 5


# -- a library that checks cards over SIP2 -----------------------------------------------

def use_sip2(app, library, port: int) -> None:
    from kiosk.domain.sip2_settings import parse_sip2_settings, save_sip2_settings

    form = parse_sip2_settings({"host": "127.0.0.1", "port": port, "institution": "KODOMAT"}, None)
    library_id, pepper = library.id, app.config["READER_PEPPER"]
    write(lambda s: save_sip2_settings(s, library_id, form, pepper=pepper, actor=TEST, now=utcnow()))


@pytest.fixture
def sip2_connections_closed():
    from kiosk.sip2 import close_thread_connections

    yield
    close_thread_connections()


def test_a_sip2_library_system_decides_the_card_and_the_pin(app, client, library, sip2_connections_closed):
    from sip2_peers import Patron, sip2_server

    secret = new_key(library)
    lost = Patron(pin="1111", status="    Y" + " " * 9)
    with sip2_server({"10000001": Patron(pin="2468"), "10000002": lost}) as server:
        use_sip2(app, library, server.port)
        wrong_pin = refusal(client, secret, card="10000001", pin="0000")
        unknown = refusal(client, secret, card="10000009", pin="0000")
        blocked = refusal(client, secret, card="10000002")
        given = post_issue(client, secret, body={"card": "10000001", "pin": "2468"})

    assert wrong_pin == unknown  # a stranger typing numbers learns nothing of which cards exist
    assert wrong_pin[1]["type"] == "/api/v1/problems/card-wrong-pin"
    assert blocked[1]["type"] == "/api/v1/problems/card-blocked"
    assert given.status_code == 201 and given.get_json()["code"].startswith("API")


def test_a_silent_library_system_is_a_503_to_retry_and_the_retry_is_not_the_first_answer(
        app, client, library, sip2_connections_closed):
    from helpers import closed_port
    from sip2_peers import Patron, sip2_server

    secret = new_key(library)
    use_sip2(app, library, closed_port())

    down = post_issue(client, secret, body={"card": "10000001", "pin": "2468"}, **{"Idempotency-Key": "k1"})

    assert down.status_code == 503 and down.content_type == PROBLEM and int(down.headers["Retry-After"]) > 0
    data = down.get_json()
    assert (data["type"], data["outcome"], data["reason"]) == (
        "/api/v1/problems/library-system-unavailable", "card_refused", "ils_unavailable")
    with sip2_server({"10000001": Patron(pin="2468")}) as server:
        use_sip2(app, library, server.port)
        retry = post_issue(client, secret, body={"card": "10000001", "pin": "2468"}, **{"Idempotency-Key": "k1"})
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers


# -- the document and its pages -------------------------------------------------------------

def test_the_docs_page_reads_the_document_without_a_script_or_a_cookie(app, client):
    from kiosk.app.factory import CONTENT_SECURITY_POLICY

    docs = client.get("/api/v1/docs")
    document = client.get("/api/v1/openapi.json")
    english = client.get("/api/v1/docs", headers={"Accept-Language": "en"})
    problem_page = client.get("/api/v1/problems/no-codes-left")
    no_such_type = client.get("/api/v1/problems/nothing")

    page = docs.get_data(as_text=True)
    assert docs.status_code == 200 and docs.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "<script" not in page and "style=" not in page and "<style" not in page
    assert "Set-Cookie" not in docs.headers and "Set-Cookie" not in document.headers
    assert "/api/v1/libraries/{slug}/issuances" in page and "Dokumentacja API" in page
    assert "/api/v1/problems/card-expired" in page and "IssueProblem" in page
    assert english.get_data(as_text=True) != page  # the page's own words follow Accept-Language
    assert document.status_code == 200 and document.get_json()["paths"]
    assert problem_page.status_code == 200
    assert "Kody na ten miesiąc się skończyły" in problem_page.get_data(as_text=True)
    assert no_such_type.status_code == 404 and no_such_type.content_type == PROBLEM


def test_every_problem_type_has_a_page_and_its_own_uri():
    from kiosk.domain.cards import CardRefusal
    from kiosk.domain.eligibility import Ineligibility
    from kiosk.web.api.problems import ALL_TYPES, CARD_TYPES, ELIGIBILITY_TYPES

    assert set(CARD_TYPES) == set(CardRefusal) and set(ELIGIBILITY_TYPES) == set(Ineligibility)
    uris = [kind.uri for kind in ALL_TYPES.values()]
    assert len(uris) == len(set(uris)) == len(CARD_TYPES) + len(ELIGIBILITY_TYPES) + 13


def test_codes_given_through_the_api_count_as_api_on_the_dashboard_and_in_the_log(app, client, library):
    from helpers import signed_in

    secret = new_key(library)
    post_issue(client, secret)
    post_issue(client, secret, body={"card": "12"})
    admin, _user, _ = signed_in(app, "library_admin", library)

    board = admin.get("/admin/lib/").get_data(as_text=True)
    log = admin.get("/admin/lib/events").get_data(as_text=True)

    assert "API: 1" in board
    assert "api:sowa#" in log and "nowy klucz API" in log
    refused = json.loads(db.session.scalar(select(Event.details).where(Event.kind == "card_refused")))
    assert refused["channel"] == "api"
    # The card number is in no event and no answer kept.
    assert "12345678" not in "".join(db.session.scalars(select(Event.details)))


def test_before_the_release_moment_the_refusal_says_when(app, client, runner, monkeypatch):
    from kiosk.cli import main

    monkeypatch.setattr("kiosk.web.api.views.utcnow", lambda: warsaw(2030, 5, 1, 9, 30))  # the API's clock
    later = make_library("later")
    make_pool(later, codes("LATE", 3), month_window(2030, 5))
    secret = new_key(later)
    changed = runner.invoke(main, ["rules", "--library", "later", "--set", "release_time=10:00"])
    db.session.remove()
    assert changed.exit_code == 0, changed.output

    status, data = refusal(client, secret, slug="later")

    assert (status, data["type"], data["outcome"], data["reason"]) == (
        409, "/api/v1/problems/not-yet", "not_eligible", "not_yet")
    assert data["next_release"].startswith("2030-05-01T10:00:00")
