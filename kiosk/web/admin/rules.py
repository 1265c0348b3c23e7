"""A library's rules for handing out codes ("Zasady wydawania"): every rule in one
form, when each platform's next codes come under the saved rules, and a check of
what a reader would get at a chosen moment, run in a transaction that is always
rolled back, so it writes nothing."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kiosk.app.extensions import db
from kiosk.app.units import pepper, write
from kiosk.domain.clock import format_moment, local_day, parse_moment, utcnow
from kiosk.domain.eligibility import opening
from kiosk.domain.issuing import issue_code
from kiosk.domain.library_system import ask_before_issuing
from kiosk.domain.refusals import Refused
from kiosk.domain.rules import (OFF, RULE_NAMES, RULES, Rules, in_effect, parse_changes, rule_text, rules_for,
                                save_rules)
from kiosk.storage.database import DatabaseBusy, is_busy, run_and_roll_back
from kiosk.storage.models import Channel, Library, Platform, Pool
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.common import page
from kiosk.web.fragments import is_fragment_request
from kiosk.wording.eligibility import (CHOICE_NAMES, RULE_HELP, WHOLE_MONTH_WHEN_EMPTY, release_sentence,
                                       rule_label, rule_value)
from kiosk.wording.messages import describe, describe_issue
from kiosk.wording.slips import month_name

PAGE = "admin/rules.html"
FORM, NOW, CHECK = "admin/_rules_form.html", "admin/_rules_now.html", "admin/_rules_check.html"
MOMENT_INPUT = "%Y-%m-%dT%H:%M"  # what a datetime-local field shows and sends


class BadMoment(ValueError):
    pass


# -- what the page shows ---------------------------------------------------------------

def _form_values(rules: Rules) -> dict[str, str]:
    """The saved rules as the form's fields show them: an empty number field is off."""
    values = {}
    for name in RULE_NAMES:
        text = rule_text(rules, name)
        if RULES[name][0] in ("number", "amount") and text == OFF:
            text = ""
        values[name] = text.replace(".", ",") if name == "max_debt" else text
    return values


def _fields(values: dict[str, str], errors: dict[str, list[str]]) -> list[dict]:
    fields = []
    for name, (kind, spec) in RULES.items():
        empty = None
        if kind in ("number", "amount"):
            empty = _("puste = cały miesiąc") if name in WHOLE_MONTH_WHEN_EMPTY else _("puste = zasada wyłączona")
        fields.append({
            "name": name, "kind": kind, "label": rule_label(name), "help": str(RULE_HELP[name]),
            "value": values.get(name, ""), "errors": errors.get(name, []), "empty": empty,
            "choices": [(member.value, str(CHOICE_NAMES[member])) for member in spec] if kind == "choice" else [],
            "low": spec[0] if kind == "number" else None, "high": spec[1] if kind == "number" else None,
        })
    return fields


def _releases(library: Library, rules: Rules, now: datetime) -> list[tuple[str, list[str]]]:
    """For each platform the library has a pool for (now or later): when its codes
    are handed out under these rules."""
    today = local_day(now, library.timezone)
    platforms = db.session.scalars(select(Platform).where(Platform.id.in_(
        select(Pool.platform_id).where(Pool.library_id == library.id, Pool.valid_until >= today)))
        .order_by(Platform.id)).all()
    releases = []
    for platform in platforms:
        found, lines = opening(db.session, library, platform.id, rules, now), []
        if found.window is not None:
            lines.append(_("Kody na %(month)s wydawane teraz, od %(moment)s.",
                           month=month_name(found.window.start.month),
                           moment=format_moment(found.window.released_at, library.timezone)))
        if found.upcoming is not None:
            upcoming = found.upcoming
            line = release_sentence(upcoming.released_at, upcoming.start)
            if upcoming.released_at.date() != upcoming.start:
                line += " " + _("(Pula jest ważna od %(date)s.)", date=upcoming.start.strftime("%d.%m.%Y"))
            lines.append(line)
        releases.append((platform.name, lines or [_("Brak następnej puli.")]))
    return releases


def _platforms(library_id: int) -> list[tuple[str, str]]:
    """Every platform, those the library has pools of first (the first is the default)."""
    pooled = set(db.session.scalars(select(Pool.platform_id).where(Pool.library_id == library_id).distinct()))
    platforms = db.session.scalars(select(Platform).order_by(Platform.id)).all()
    return [(p.slug, p.name) for p in sorted(platforms, key=lambda p: p.id not in pooled)]


def _now_context(library: Library) -> dict:
    rules, now = rules_for(db.session, library.id), utcnow()
    return {"releases": _releases(library, rules, now),
            "current": [(rule_label(name), rule_value(rules, name)) for name in RULE_NAMES
                        if in_effect(rules, name)]}


def _render(library: Library, *, status: int = 200, fragment: str | None = None, typed: dict | None = None,
            errors: dict | None = None, notice: str | None = None, check: dict | None = None):
    """The whole page; or, for htmx, one fragment (the form, once saved, with the
    summary above it swapped out of band, so both show the saved rules)."""
    values = {**_form_values(rules_for(db.session, library.id)), **(typed or {})}
    default_moment = utcnow().astimezone(ZoneInfo(library.timezone)).strftime(MOMENT_INPUT)
    context = {"library": library, "fields": _fields(values, errors or {}), "has_errors": bool(errors),
               "notice": notice, "platforms": _platforms(library.id), "check": check or {"moment": default_moment}}
    if fragment == FORM and is_fragment_request() and not errors:
        return render_template(FORM, **context) + render_template(NOW, oob=True, **_now_context(library),
                                                                   **context), status
    if fragment is not None and is_fragment_request():
        return render_template(fragment, **context), status
    return page(PAGE, status=status, **_now_context(library), **context)


# -- the views -------------------------------------------------------------------------

@bp.get("/<slug>/rules")
@login_required(*ADMIN_ROLES)
def rules(slug: str):
    return _render(library_in_scope(slug))


@bp.post("/<slug>/rules")
@login_required(*ADMIN_ROLES)
def rules_save(slug: str):
    library = library_in_scope(slug)
    typed = {name: request.form[name][:200] for name in RULE_NAMES if name in request.form}
    try:
        parsed = parse_changes(typed)
    except Refused as refused:
        errors: dict[str, list[str]] = {}
        for problem in refused.problems:
            errors.setdefault(problem.details.get("rule"), []).append(describe(problem))
        return _render(library, status=400, fragment=FORM, typed=typed, errors=errors)
    library_id, actor, now = library.id, staff_actor(), utcnow()
    before, after = write(lambda s: (rules_for(s, library_id), save_rules(s, library_id, parsed, actor, now)))
    notice = _changes(before, after)
    if is_fragment_request():
        return _render(library, fragment=FORM, notice=notice)
    flash(notice)
    return redirect(url_for("admin.rules", slug=slug))


def _changes(before: Rules, after: Rules) -> str:
    changed = [f"{rule_label(name)}: {rule_value(before, name)} → {rule_value(after, name)}"
               for name in RULE_NAMES if rule_text(before, name) != rule_text(after, name)]
    if not changed:
        return _("Zapisano zasady wydawania; nic się nie zmieniło.")
    return _("Zapisano zasady wydawania. Zmiany: %(changes)s.", changes="; ".join(changed))


@bp.post("/<slug>/rules/check")
@login_required(*ADMIN_ROLES)
def rules_check(slug: str):
    """What this reader would get at that moment (the card only in the POST body,
    never in a URL); the whole issue runs and is rolled back."""
    library = library_in_scope(slug)
    library_slug, zone = library.slug, library.timezone
    moment_text, platform_slug = request.form.get("moment", ""), request.form.get("platform", "")
    check = {"moment": moment_text[:40], "platform": platform_slug[:40]}
    platform_name = dict(_platforms(library.id)).get(platform_slug)
    try:
        moment = _moment(moment_text, zone)
    except BadMoment:
        check["error"] = _("„%(value)s” to nie jest data i godzina z lat 2000–2100 (DD.MM.RRRR GG:MM).",
                           value=moment_text[:40])
        return _render(library, status=400, fragment=CHECK, check=check)
    if platform_name is None:
        check["error"] = _("Wybierz platformę z listy.")
        return _render(library, status=400, fragment=CHECK, check=check)
    card, actor, reader_pepper = request.form.get("card", ""), staff_actor(), pepper()
    try:
        answer = ask_before_issuing(db.session, library_slug, card, pin=None, pepper=reader_pepper, now=moment)
        result = run_and_roll_back(db.session, lambda s: issue_code(
            s, library_slug=library_slug, card_number=card, channel=Channel.DESK, actor=actor, now=moment,
            pepper=reader_pepper, platform_slug=platform_slug, answer=answer), late_lock=True)
    except (DatabaseBusy, OperationalError) as exc:
        if isinstance(exc, OperationalError) and not is_busy(exc):
            raise
        check["error"] = _("Baza danych jest zajęta; spróbuj za chwilę.")
        return _render(library, status=503, fragment=CHECK, check=check)
    check.update(moment=moment.strftime(MOMENT_INPUT), answer=describe_issue(result, dry_run=True),
                 when=_("Gdyby ten czytelnik przyszedł %(moment)s po kod %(platform)s, Kodomat odpowiedziałby:",
                        moment=format_moment(moment, zone), platform=platform_name))
    return _render(library, fragment=CHECK, check=check)


def _moment(text: str, zone: str) -> datetime:
    """The moment typed (a datetime-local field, or DD.MM.RRRR GG:MM) in the
    library's zone; empty is now."""
    text = text.strip()
    if not text:
        return utcnow().astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0)
    if len(text) > 40:
        raise BadMoment(text)
    try:
        return parse_moment(text, zone)
    except ValueError:
        raise BadMoment(text) from None
