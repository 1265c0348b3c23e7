"""The API against its own OpenAPI document, by schemathesis: cases generated from
the document for every operation, sent to the WSGI app with a valid key, and every
answer checked: no server error, a status, content type, headers and body the
document names. On SQLite (the behaviour tests run on both databases)."""
from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from helpers import TEST, codes, issue, make_app, make_library, make_pool, this_month, write
from kiosk.app.extensions import db
from kiosk.domain.api_keys import create_key
from kiosk.domain.clock import utcnow

OPERATIONS = {("POST", "/api/v1/libraries/{slug}/issuances"), ("POST", "/api/v1/libraries/{slug}/cards/lookup"),
              ("GET", "/api/v1/libraries/{slug}/pools"), ("GET", "/api/v1/libraries")}


@pytest.fixture
def api_world(database_url, tmp_path):
    """An app with a library, this month's pool and next month's, and a key; no app
    context left pushed, so each request gets its own, as in production."""
    app = make_app(database_url, tmp_path)
    with app.app_context():
        library = make_library("lib")
        make_pool(library, codes("SCH", 30), this_month())
        following = this_month()[1] + timedelta(days=1)
        make_pool(library, codes("NXT", 3), (following, following + timedelta(days=27)), filename="next.xlsx")
        issue(app, "1234567890", utcnow(), library="lib")  # the document's example card has a code: a lookup finds it
        library_id = library.id
        secret = write(lambda s: create_key(s, library_id=library_id, name="schemathesis", per_minute=100_000,
                                            actor=TEST, now=utcnow())).secret
        db.session.remove()
    yield app, secret
    with app.app_context():
        db.engine.dispose()


def served_document() -> dict:
    """The document as the app serves it, read once when the tests are collected (it
    is made from the code alone: no database is asked). schemathesis's fixture-based
    loader does not run under this pytest, so the cases go to each test's app."""
    with tempfile.TemporaryDirectory() as folder:
        app = make_app(f"sqlite:///{folder}/empty.db", Path(folder))
        with app.app_context():
            document = app.test_client().get("/api/v1/openapi.json").get_json()
            db.engine.dispose()
    return document


schema = schemathesis.openapi.from_dict(served_document())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@schema.parametrize()
@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_every_answer_is_one_the_document_names(case, api_world):
    app, secret = api_world
    case.operation.schema.app = app  # schemathesis's own probes (a call without the key) go to this test's app too
    if "slug" in (case.path_parameters or {}):
        case.path_parameters["slug"] = "lib"  # the library the key may name: past the 404, into the operation
    # Every check but one: a valid-looking request is refused for what no schema can say
    # (a platform the database does not know, an Idempotency-Key sent before with another
    # body); test_api.py shows both answers.
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {secret}"},
                           excluded_checks=[positive_data_acceptance])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_document_names_every_operation_with_its_key_and_problems(api_world):
    app, _secret = api_world
    with app.app_context():
        document = app.test_client().get("/api/v1/openapi.json").get_json()

    assert document["openapi"].startswith("3.")
    found = {(method.upper(), path) for path, item in document["paths"].items() for method in item
             if method != "parameters"}
    assert found == OPERATIONS
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "A key from the admin panel or `kiosk api-key`."}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["security"] == [{"bearerAuth": []}]
            for status in ("401", "429", "503"):
                assert list(operation["responses"][status]["content"]) == ["application/problem+json"]
    issuing = document["paths"]["/api/v1/libraries/{slug}/issuances"]["post"]["responses"]
    assert {"200", "201", "400", "401", "404", "409", "413", "422", "429", "503"} <= set(issuing)
    assert issuing["409"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/IssueProblem"}
