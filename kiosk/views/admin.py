"""The admin panel: a library's dashboard, imports, reports, event log, kiosks,
users and settings; the consortium overview. Every URL names its library and is
scoped to the signed-in admin."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import (Blueprint, abort, current_app, flash, g, make_response, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from kiosk import accounts
from kiosk.alerts import library_alerts
from kiosk.cards import CHECK_DIGITS
from kiosk.clock import DEFAULT_TIMEZONE, format_date, local_day, month_window, parse_month, utcnow
from kiosk.dashboard import dashboard_for
from kiosk.events import record_event
from kiosk.extensions import db
from kiosk.kiosks import enrol_kiosk, revoke_kiosk
from kiosk.libraries import LibraryExists, add_library, consortium
from kiosk.messages import describe_import_refusal
from kiosk.models import CardCheckKind, Event, Kiosk, Library, Platform, Pool, Role, StaffUser
from kiosk.pools import ImportRefused, import_pool
from kiosk.registry import import_cards
from kiosk.reports import monthly_report
from kiosk.views.access import ADMIN_ROLES, library_in_scope, login_required
from printing.barcodes import qr_svg

bp = Blueprint("admin", __name__, url_prefix="/admin")

UPLOAD_MAX_AGE = 3600
EVENTS_PAGE = 200


def _printer_choices() -> list[str]:
    """What a library admin may pick: the browser, and the printers the operator
    listed in PRINTERS (config.py). A free-form setting would let an admin make the
    server write to any file or connect to any host."""
    return ["browser", *current_app.config.get("PRINTERS", [])]


def _allowed_printer(value: str) -> bool:
    return value in _printer_choices()


def _actor() -> str:
    return f"staff:{g.user.username}"


def _page(template: str, status: int = 200, **context):
    context.setdefault("lang", g.lang)
    context.setdefault("format_date", format_date)
    return render_template(template, **context), status


def _month_arg() -> tuple[date, date]:
    text = request.args.get("month")
    if text:
        try:
            return parse_month(text)
        except ValueError:
            abort(400)
    today = local_day(utcnow())
    return month_window(today.year, today.month)


def _previous_month_start() -> date:
    """Reports are made for the month that has just ended."""
    first, _last = _month_arg()
    return month_window(*(first - timedelta(days=1)).timetuple()[:2])[0]


# -- overview and dashboard ---------------------------------------------------

@bp.get("/")
@login_required(*ADMIN_ROLES)
def overview():
    if g.user.role != Role.CONSORTIUM_ADMIN:
        return redirect(url_for("admin.dashboard", slug=g.user.library.slug))
    libraries = db.session.scalars(select(Library).order_by(Library.name)).all()
    first = _previous_month_start()
    return _page("admin/overview.html", libraries=libraries, month=first, settings=consortium(db.session),
                 legimi=db.session.scalar(select(Platform).where(Platform.slug == "legimi")))


@bp.post("/libraries")
@login_required(Role.CONSORTIUM_ADMIN)
def create_library():
    try:
        library = add_library(db.session, slug=request.form.get("slug", "").strip(),
                              name=request.form.get("name", "").strip() or "?", actor=_actor(), now=utcnow())
    except (LibraryExists, ValueError) as exc:
        db.session.rollback()
        flash(_("Nie dodano biblioteki: %(why)s", why=str(exc) if not isinstance(exc, LibraryExists)
                else _("taki skrót już istnieje")))
        return redirect(url_for("admin.overview"))
    return redirect(url_for("admin.dashboard", slug=library.slug))


@bp.post("/consortium")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_settings():
    settings = consortium(db.session)
    legimi = db.session.scalar(select(Platform).where(Platform.slug == "legimi"))
    settings.name = request.form.get("name", settings.name).strip() or settings.name
    end = request.form.get("service_end", "").strip()
    try:
        settings.service_end = date.fromisoformat(end) if end else None
    except ValueError:
        abort(400)
    url = request.form.get("activation_url", "").strip()
    if not url.startswith(("https://", "http://")) or len(url) > 300 or any(ch.isspace() for ch in url):
        db.session.rollback()
        flash(_("Adres aktywacji musi zaczynać się od https:// — nic nie zapisano."))
        return redirect(url_for("admin.overview"))
    legimi.activation_url = url
    record_event(db.session, kind="settings", actor=_actor(), now=utcnow(), scope="consortium",
                 service_end=settings.service_end, activation_url=legimi.activation_url)
    db.session.commit()
    flash(_("Zapisano ustawienia."))
    return redirect(url_for("admin.overview"))


@bp.get("/report.xlsx")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_report():
    first, _last = _month_arg()
    data = monthly_report(db.session, year=first.year, month=first.month, library_ids=None, now=utcnow())
    return _xlsx(data, f"kodomat-{first:%Y-%m}.xlsx")


@bp.get("/<slug>/")
@login_required(*ADMIN_ROLES)
def dashboard(slug: str):
    library = library_in_scope(slug)
    return _page("admin/dashboard.html", library=library, board=dashboard_for(db.session, library, utcnow()),
                 alerts=library_alerts(db.session, library, utcnow()))


# -- import: upload, preview, confirm -----------------------------------------

def _upload_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="pool-upload")


def _upload_folder() -> Path:
    """Where a previewed file waits for its confirmation; older ones are removed,
    so abandoned previews do not keep code lists on disk."""
    folder = Path(current_app.instance_path) / "uploads"
    folder.mkdir(exist_ok=True)
    cutoff = utcnow().timestamp() - UPLOAD_MAX_AGE
    for stale in folder.glob("*.upload"):
        if stale.stat().st_mtime < cutoff:
            stale.unlink(missing_ok=True)
    return folder


def _upload_path(library: Library, sha256: str) -> Path:
    return _upload_folder() / f"{library.id}-{sha256}.upload"


def _import_window():
    month = request.form.get("month", "").strip()
    if not month:
        return None
    try:
        return parse_month(month)
    except ValueError:
        return "bad"


@bp.route("/<slug>/import", methods=["GET", "POST"])
@login_required(*ADMIN_ROLES)
def import_upload(slug: str):
    library = library_in_scope(slug)
    if request.method == "GET":
        return _page("admin/import.html", library=library)
    upload = request.files.get("file")
    window = _import_window()
    if upload is None or not upload.filename:
        return _page("admin/import.html", library=library, error=_("Wybierz plik."), status=400)
    if window == "bad":
        return _page("admin/import.html", library=library, error=_("Miesiąc podaj jako RRRR-MM."), status=400)
    data = upload.read()
    legimi = db.session.scalar(select(Platform).where(Platform.slug == "legimi"))
    db.session.commit()  # parse without holding SQLite's write lock
    try:
        report = import_pool(db.session, library=library, platform=legimi, data=data, filename=upload.filename,
                             window=window, actor=_actor(), now=utcnow(), dry_run=True)
    except ImportRefused as exc:
        return _page("admin/import.html", library=library, error=describe_import_refusal(exc), status=400)
    _upload_path(library, report.sha256).write_bytes(data)
    token = _upload_signer().dumps({"sha": report.sha256, "name": upload.filename, "library": library.id,
                                    "window": [d.isoformat() for d in window] if window else None})
    return _page("admin/import_preview.html", library=library, report=report, token=token)


@bp.post("/<slug>/import/confirm")
@login_required(*ADMIN_ROLES)
def import_confirm(slug: str):
    library = library_in_scope(slug)
    try:
        upload = _upload_signer().loads(request.form.get("token", ""), max_age=UPLOAD_MAX_AGE)
    except BadSignature:
        return _page("admin/import.html", library=library, status=400,
                     error=_("Podgląd wygasł. Wyślij plik jeszcze raz."))
    if upload["library"] != library.id:
        abort(404)
    path = _upload_path(library, upload["sha"])
    if not path.exists():
        # A second press of "Importuj" (or the back button) after it worked.
        done = db.session.scalar(select(Pool.id).where(Pool.library_id == library.id,
                                                       Pool.source_sha256 == upload["sha"]))
        if done is None:
            return _page("admin/import.html", library=library, status=400,
                         error=_("Podgląd wygasł. Wyślij plik jeszcze raz."))
        flash(_("Ten plik jest już zaimportowany."))
        return redirect(url_for("admin.dashboard", slug=library.slug))
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != upload["sha"]:
        abort(400)
    window = tuple(date.fromisoformat(d) for d in upload["window"]) if upload["window"] else None
    legimi = db.session.scalar(select(Platform).where(Platform.slug == "legimi"))
    try:
        report = import_pool(db.session, library=library, platform=legimi, data=data, filename=upload["name"],
                             window=window, actor=_actor(), now=utcnow())
    except ImportRefused as exc:
        return _page("admin/import.html", library=library, error=describe_import_refusal(exc), status=400)
    finally:
        path.unlink(missing_ok=True)
    flash(_("Zaimportowano %(count)s kodów ważnych %(start)s–%(end)s.", count=report.count,
            start=format_date(report.valid_from), end=format_date(report.valid_until)))
    return redirect(url_for("admin.dashboard", slug=library.slug))


# -- reports and the event log -------------------------------------------------

def _xlsx(data: bytes, filename: str):
    response = make_response(data)
    response.headers["Content-Type"] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/<slug>/report.xlsx")
@login_required(*ADMIN_ROLES)
def report(slug: str):
    library = library_in_scope(slug)
    first, _last = _month_arg()
    data = monthly_report(db.session, year=first.year, month=first.month, library_ids=[library.id], now=utcnow())
    return _xlsx(data, f"kodomat-{library.slug}-{first:%Y-%m}.xlsx")


@bp.get("/<slug>/events")
@login_required(*ADMIN_ROLES)
def events(slug: str):
    library = library_in_scope(slug)
    return _events_page(Event.library_id == library.id, library=library)


@bp.get("/events")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_events():
    # What belongs to no library: logins, lock-outs, consortium settings.
    return _events_page(Event.library_id.is_(None), library=None)


def _events_page(scope, library: Library | None):
    query = select(Event).where(scope)
    kind, who = request.args.get("kind", "").strip(), request.args.get("who", "").strip()
    since, until = request.args.get("from", "").strip(), request.args.get("to", "").strip()
    if kind:
        query = query.where(Event.kind == kind)
    if who:
        query = query.where(Event.actor.contains(who))
    try:
        if since:
            query = query.where(Event.at >= _day_start(date.fromisoformat(since)))
        if until:
            query = query.where(Event.at < _day_start(date.fromisoformat(until), plus_days=1))
    except ValueError:
        abort(400)
    rows = db.session.scalars(query.order_by(Event.at.desc(), Event.id.desc()).limit(EVENTS_PAGE)).all()
    kinds = db.session.scalars(select(Event.kind).where(scope).distinct()).all()
    return _page("admin/events.html", library=library, rows=rows, kinds=sorted(kinds), details=_details,
                 filters={"kind": kind, "who": who, "from": since, "to": until})


def _day_start(day: date, plus_days: int = 0) -> datetime:
    """Midnight in Warsaw that begins the day (the log's filter dates are local)."""
    return datetime.combine(day + timedelta(days=plus_days), datetime.min.time(), ZoneInfo(DEFAULT_TIMEZONE))


def _details(event: Event) -> str:
    data = json.loads(event.details or "{}")
    return ", ".join(f"{key}: {value}" for key, value in data.items())


# -- kiosks --------------------------------------------------------------------

def _kiosk_of(library: Library, kiosk_id: int) -> Kiosk:
    kiosk = db.session.get(Kiosk, kiosk_id)
    if kiosk is None or kiosk.library_id != library.id:
        abort(404)
    return kiosk


def _kiosk_page(library: Library, link: str | None = None, status: int = 200, error: str | None = None):
    kiosks = db.session.scalars(select(Kiosk).where(Kiosk.library_id == library.id).order_by(Kiosk.id)).all()
    return _page("admin/kiosks.html", library=library, kiosks=kiosks, link=link, printers=_printer_choices(),
                 link_qr=qr_svg(link, scale=4) if link else None, error=error, status=status)


@bp.get("/<slug>/kiosks")
@login_required(*ADMIN_ROLES)
def kiosks(slug: str):
    return _kiosk_page(library_in_scope(slug))


def _enrol_link(token: str) -> str:
    return url_for("kiosk.enrol", token=token, _external=True)


@bp.post("/<slug>/kiosks")
@login_required(*ADMIN_ROLES)
def kiosk_add(slug: str):
    library = library_in_scope(slug)
    name, printer = request.form.get("name", "").strip()[:120], request.form.get("printer", "browser").strip()
    if not _allowed_printer(printer):
        return _kiosk_page(library, error=_("Nieznane ustawienie drukarki."), status=400)
    enrolment = enrol_kiosk(db.session, library=library, name=name or _("Kiosk"), printer=printer,
                            actor=_actor(), now=utcnow())
    return _kiosk_page(library, link=_enrol_link(enrolment.token))


@bp.post("/<slug>/kiosks/<int:kiosk_id>")
@login_required(*ADMIN_ROLES)
def kiosk_change(slug: str, kiosk_id: int):
    library = library_in_scope(slug)
    kiosk = _kiosk_of(library, kiosk_id)
    action = request.form.get("action")
    if action == "revoke":
        revoke_kiosk(db.session, kiosk, actor=_actor(), now=utcnow())
    elif action == "link":
        enrolment = enrol_kiosk(db.session, library=library, name=kiosk.name, actor=_actor(), now=utcnow(),
                                kiosk=kiosk)
        return _kiosk_page(library, link=_enrol_link(enrolment.token))
    elif action == "save" and request.form.get("name", "").strip():
        printer = request.form.get("printer", kiosk.printer).strip()
        if printer != kiosk.printer and not _allowed_printer(printer):
            return _kiosk_page(library, error=_("Nieznane ustawienie drukarki."), status=400)
        kiosk.name, kiosk.printer = request.form["name"].strip()[:120], printer
        record_event(db.session, kind="kiosk_changed", actor=_actor(), library_id=library.id, now=utcnow(),
                     kiosk_id=kiosk.id, name=kiosk.name, printer=printer)
        db.session.commit()
    else:
        abort(400)
    return redirect(url_for("admin.kiosks", slug=library.slug))


# -- users ---------------------------------------------------------------------

def _user_of(library: Library, user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    if user is None or user.library_id != library.id:
        abort(404)
    return user


def _roles_for_library() -> list[str]:
    return [Role.DESK.value, Role.LIBRARY_ADMIN.value]


def _users_page(library: Library, created: tuple | None = None, error: str | None = None, status: int = 200):
    users = db.session.scalars(select(StaffUser).where(StaffUser.library_id == library.id)
                               .order_by(StaffUser.username)).all()
    return _page("admin/users.html", library=library, users=users, roles=_roles_for_library(), created=created,
                 error=error, status=status)


@bp.get("/<slug>/users")
@login_required(*ADMIN_ROLES)
def users(slug: str):
    return _users_page(library_in_scope(slug))


@bp.post("/<slug>/users")
@login_required(*ADMIN_ROLES)
def user_add(slug: str):
    library = library_in_scope(slug)
    role = request.form.get("role", "")
    if role not in _roles_for_library():
        abort(400)
    try:
        user, password = accounts.create_user(db.session, username=request.form.get("username", ""), role=role,
                                              library_id=library.id, actor=_actor(), now=utcnow())
    except accounts.UserExists:
        db.session.rollback()
        return _users_page(library, error=_("Taki użytkownik już istnieje."), status=400)
    except ValueError:
        db.session.rollback()
        return _users_page(library, error=_("Nazwa użytkownika: małe litery, cyfry, kropki i myślniki."),
                           status=400)
    return _users_page(library, created=(user.username, password))


@bp.post("/<slug>/users/<int:user_id>")
@login_required(*ADMIN_ROLES)
def user_change(slug: str, user_id: int):
    library = library_in_scope(slug)
    user = _user_of(library, user_id)
    action = request.form.get("action")
    if user.id == g.user.id and action in ("disable", "role"):
        return _users_page(library, error=_("Własnego konta nie można tu wyłączyć ani zmienić mu roli."),
                           status=400)
    if action == "role" and request.form.get("role") in _roles_for_library():
        accounts.set_role(db.session, user, request.form["role"], _actor(), utcnow())
    elif action in ("disable", "enable"):
        accounts.set_active(db.session, user, action == "enable", _actor(), utcnow())
    else:
        abort(400)
    return redirect(url_for("admin.users", slug=library.slug))


# -- settings ------------------------------------------------------------------

def _settings_page(library: Library, errors: list[str] | None = None, status: int = 200):
    return _page("admin/settings.html", library=library, check_digits=sorted(CHECK_DIGITS),
                 card_checks=[k.value for k in CardCheckKind], errors=errors, status=status,
                 printers=_printer_choices())


@bp.get("/<slug>/settings")
@login_required(*ADMIN_ROLES)
def settings(slug: str):
    return _settings_page(library_in_scope(slug))


@bp.post("/<slug>/settings")
@login_required(*ADMIN_ROLES)
def settings_save(slug: str):
    library = library_in_scope(slug)
    form = request.form
    errors = []
    pattern = form.get("card_pattern", "").strip()[:200] or None
    if pattern:
        try:
            re.compile(pattern)
        except re.error:
            errors.append(_("Wzorzec numeru karty jest błędny."))
    desk_printer = form.get("desk_printer", "browser").strip()
    if desk_printer != library.desk_printer and not _allowed_printer(desk_printer):
        errors.append(_("Nieznane ustawienie drukarki."))
    try:
        low, idle = int(form.get("low_pool_percent", "10")), int(form.get("kiosk_idle_seconds", "30"))
        if not (0 <= low <= 100 and 10 <= idle <= 600):
            raise ValueError
    except ValueError:
        errors.append(_("Próg i czas bezczynności muszą być liczbami: 0–100 % i 10–600 s."))
    if form.get("card_check") not in {k.value for k in CardCheckKind} or \
            (form.get("check_digit") or None) not in (None, *CHECK_DIGITS):
        abort(400)
    if errors:
        return _settings_page(library, errors, 400)
    library.name = form.get("name", library.name).strip()[:200] or library.name
    library.slip_header = form.get("slip_header", "").strip()[:300] or None
    library.card_check = form["card_check"]
    library.card_pattern = pattern
    library.card_check_digit = form.get("check_digit") or None
    library.low_pool_percent, library.kiosk_idle_seconds = low, idle
    library.desk_printer = desk_printer
    record_event(db.session, kind="settings", actor=_actor(), library_id=library.id, now=utcnow(),
                 **{key: form.get(key) for key in ("name", "slip_header", "card_check", "card_pattern",
                                                   "check_digit", "low_pool_percent", "kiosk_idle_seconds",
                                                   "desk_printer")})
    db.session.commit()
    flash(_("Zapisano ustawienia."))
    return redirect(url_for("admin.settings", slug=library.slug))


@bp.post("/<slug>/cards")
@login_required(*ADMIN_ROLES)
def cards_upload(slug: str):
    library = library_in_scope(slug)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        abort(400)
    try:
        result = import_cards(db.session, library=library, data=upload.read(),
                              pepper=current_app.config["READER_PEPPER"], actor=_actor(), now=utcnow())
    except ImportRefused as exc:
        db.session.rollback()
        return _settings_page(library, [describe_import_refusal(exc)], 400)
    flash(_("Rejestr kart: %(count)s kart.", count=result.count))
    return redirect(url_for("admin.settings", slug=library.slug))
