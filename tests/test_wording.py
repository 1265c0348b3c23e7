"""Every reason the domain gives has a sentence in Polish, English and Ukrainian;
plurals are Polish plurals; the panel names no command-line option."""
from __future__ import annotations

from datetime import date

import pytest
from flask_babel import force_locale

from kiosk.domain.accounts import AccountProblem, LoginRefusal
from kiosk.domain.api_keys import ApiKeyProblem
from kiosk.domain.cards import CardRefusal
from kiosk.domain.pool_files import ImportProblem
from kiosk.domain.refusals import Problem
from kiosk.domain.reprints import IssuanceRefusal
from kiosk.domain.rules import RuleProblem
from kiosk.domain.settings import SettingProblem
from kiosk.domain.working_days import ClosedDayProblem
from kiosk.wording.messages import SENTENCES, cards_imported, codes_imported, describe, sentence_key

REASONS = [*CardRefusal, *ImportProblem, *IssuanceRefusal, *SettingProblem, *AccountProblem, *LoginRefusal,
           *ClosedDayProblem, *RuleProblem, *ApiKeyProblem]


@pytest.fixture
def wording_app(tmp_path):
    from helpers import make_app

    app = make_app(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
    with app.test_request_context():
        yield app


def test_every_reason_code_has_a_sentence_of_its_own(wording_app):
    assert [reason for reason in REASONS if sentence_key(reason) not in SENTENCES] == []
    # Members of different enums may share a value; each still has its own sentence.
    assert describe(Problem(CardRefusal.EMPTY)) != describe(Problem(ImportProblem.EMPTY))
    assert describe(Problem(CardRefusal.CHECK_DIGIT)) != describe(Problem(SettingProblem.CHECK_DIGIT))


@pytest.mark.parametrize("reason", REASONS, ids=lambda r: f"{type(r).__name__}.{r.value}")
def test_every_sentence_is_said_in_polish_english_and_ukrainian(wording_app, reason):
    said = {}
    for language in ("pl", "en", "uk"):
        with force_locale(language):
            said[language] = describe(Problem(reason))
    assert all(text.strip() for text in said.values())
    assert said["en"] != said["pl"] and said["uk"] != said["pl"] and said["uk"] != said["en"], said
    assert not any(ch in said["en"] for ch in "ąęłńóśźż"), said["en"]  # no Polish left in English


def test_the_panel_never_names_a_command_line_option_and_the_cli_does(wording_app):
    for language in ("pl", "en", "uk"):
        with force_locale(language):
            named = [reason for reason in REASONS if "--" in describe(Problem(reason), "web")]
            assert named == [], language
    assert describe(Problem(ImportProblem.NO_WINDOW), "cli").count("--") >= 2


@pytest.mark.parametrize("count, words", [(1, "1 kod ważny"), (3, "3 kody ważne"), (5, "5 kodów ważnych"),
                                          (22, "22 kody ważne"), (12, "12 kodów ważnych"),
                                          (112, "112 kodów ważnych")])
def test_polish_plurals(wording_app, count, words):
    with force_locale("pl"):
        text = codes_imported(count, date(2020, 1, 1), date(2020, 1, 31))
    assert text == f"Zaimportowano {words} 01.01.2020–31.01.2020."


@pytest.mark.parametrize("count, words", [(1, "1 card"), (3, "3 cards")])
def test_english_plurals(wording_app, count, words):
    with force_locale("en"):
        assert cards_imported(count, 0, 0).startswith(words + ",")


def test_ukrainian_plurals(wording_app):
    with force_locale("uk"):
        said = [cards_imported(n, 0, 0).split(",")[0] for n in (1, 3, 5, 22)]
    assert said[0].endswith("картка") and said[1].endswith("картки") and said[2].endswith("карток")
    assert said[3].endswith("картки")
