"""`kiosk rules` and `kiosk issue --dry-run --at` as admins and scripts use them:
the rule set shown and changed, a bad value named, and the verdict at a moment
with nothing written."""
import json

from sqlalchemy import func, select

from helpers import codes, make_library, panel_file
from kiosk.app.extensions import db
from kiosk.cli import main
from kiosk.storage.models import Code, CodeStatus, Event, Issuance


def kiosk(runner, *args):
    result = runner.invoke(main, list(args))
    db.session.remove()
    return result


def counts():
    return (db.session.scalar(select(func.count(Issuance.id))), db.session.scalar(select(func.count(Event.id))),
            db.session.scalar(select(func.count(Code.id)).where(Code.status == CodeStatus.AVAILABLE.value)))


def may_pool(runner, tmp_path):
    make_library()
    path = tmp_path / "maj.xlsx"
    path.write_bytes(panel_file(codes("MAY", 3)))
    assert kiosk(runner, "import-codes", str(path), "--library", "lib", "--month", "2027-05").exit_code == 0


def test_rules_are_all_off_by_default_and_set_one_at_a_time(runner):
    make_library()
    shown = json.loads(kiosk(runner, "rules", "--library", "lib", "--json").output)
    assert shown["release_day"] == "window_start" and shown["release_time"] == "00:00"
    assert {shown[name] for name in shown if name not in ("release_day", "release_time", "platforms_rule")} == {"off"}

    changed = kiosk(runner, "rules", "--library", "lib", "--set", "release_day=first_working_day",
                    "--set", "release_time=10:00", "--set", "max_debt=0", "--json")
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.output)["max_debt"] == "0.00"
    assert db.session.scalar(select(Event.details).where(Event.kind == "rules")).count("release_time")


def test_a_bad_value_exits_1_naming_the_rule_and_changes_nothing(runner):
    make_library()
    for setting, named in (("min_age=abc", "min_age"), ("release_time=25:00", "release_time"),
                           ("max_debt=-1", "max_debt"), ("platforms_rule=two", "platforms_rule"),
                           ("colour=red", "colour")):
        refused = kiosk(runner, "rules", "--library", "lib", "--set", "release_day=first_working_day",
                        "--set", setting)
        assert refused.exit_code == 1, (setting, refused.output)
        assert named in refused.output
    assert json.loads(kiosk(runner, "rules", "--library", "lib", "--json").output)["release_day"] == "window_start"


def test_dry_run_at_a_moment_says_not_yet_then_issued_and_writes_nothing(runner, tmp_path):
    may_pool(runner, tmp_path)
    kiosk(runner, "rules", "--library", "lib", "--set", "release_day=first_working_day", "--set", "release_time=10:00")
    before = counts()

    early = kiosk(runner, "issue", "--library", "lib", "--card", "12345678", "--dry-run",
                  "--at", "2027-05-04T09:59", "--json")
    answer = json.loads(early.output)
    assert early.exit_code == 1
    assert (answer["status"], answer["reason"]) == ("not_eligible", "not_yet")
    assert answer["next_release"] == "2027-05-04T10:00:00+02:00"
    assert answer["dry_run"] is True and "Kody na maj od wtorku 04.05.2027 o 10:00." in answer["message"]

    on_time = kiosk(runner, "issue", "--library", "lib", "--card", "12345678", "--dry-run", "--at", "04.05.2027 10:00")
    assert on_time.exit_code == 0 and "nic nie zapisano" in on_time.output
    assert counts() == before


def test_at_without_dry_run_is_refused_and_a_garbage_moment_is_named(runner, tmp_path):
    may_pool(runner, tmp_path)
    assert kiosk(runner, "issue", "--library", "lib", "--card", "12345678", "--at", "2027-05-04T10:00").exit_code == 2
    garbage = kiosk(runner, "issue", "--library", "lib", "--card", "12345678", "--dry-run", "--at", "jutro")
    assert garbage.exit_code == 2 and "jutro" in garbage.output
    assert kiosk(runner, "issue", "--library", "lib", "--card", "12345678", "--dry-run",
                 "--at", "9999-01-01T10:00").exit_code == 2
