"""The Flask app factory: configuration, extensions, blueprints."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from htmx_flask import Htmx

from kiosk.storage.database import SQLITE_BUSY_TIMEOUT_MS, configure_engine, normalise_database_url
from kiosk.app.extensions import db
from kiosk.app.i18n import DEFAULT_LANGUAGE, babel, select_locale
from kiosk.domain.consortium import guard_pepper, pepper_known, schema_missing
from kiosk.storage.database import run_in_transaction
from kiosk.mail.settings import DEFAULTS as MAIL_DEFAULTS
from kiosk.storage.secrets import PEPPER_FILE, SECRET_KEY_FILE, read_or_create

PACKAGE = Path(__file__).resolve().parent.parent
PROJECT_ROOT = PACKAGE.parent
MIGRATIONS = PACKAGE / "migrations"


def instance_folder() -> Path:
    """KIOSK_INSTANCE, or ./instance beside the project."""
    return Path(os.environ.get("KIOSK_INSTANCE") or PROJECT_ROOT / "instance").resolve()


def configured_database_url(instance: Path) -> str:
    """The database create_app gives an instance, without making the app (which
    would make the instance's secrets): SQLALCHEMY_DATABASE_URI in its config.py,
    else DATABASE_URL, else SQLite in the instance folder. `kiosk restore` asks."""
    from flask import Config

    config = Config(str(instance))
    config.from_pyfile("config.py", silent=True)
    url = config.get("SQLALCHEMY_DATABASE_URI") or os.environ.get("DATABASE_URL") or default_database_url(instance)
    return normalise_database_url(url)


def default_database_url(instance: Path) -> str:
    return f"sqlite:///{instance / 'kodomat.db'}"


def create_app(test_config: dict | None = None, *, web: bool = True, migrations: bool = True) -> Flask:
    """The app. web=False leaves out the pages (the blueprints, their PDF, QR and
    spreadsheet libraries, CSRF protection) and migrations=False Flask-Migrate
    (alembic): the `kiosk` commands serve no page, and only `kiosk db` migrates."""
    instance = Path((test_config or {}).get("INSTANCE_PATH") or instance_folder())
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask(
        __name__,
        instance_path=str(instance),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    database_url = os.environ.get("DATABASE_URL") or default_database_url(instance)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=normalise_database_url(database_url),
        # No ping per checkout (a round trip on every request): a connection the
        # server dropped fails its first statement, and the unit of work and the
        # settings read begin again on a fresh one (kiosk.storage.database.is_busy).
        SQLALCHEMY_ENGINE_OPTIONS={"pool_recycle": 1800},
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,  # a month's pool is a few hundred KiB
        # A kiosk's idle page may stand for days: its form token must not expire.
        WTF_CSRF_TIME_LIMIT=None,
        KIOSK_BASE_URL=os.environ.get("KIOSK_BASE_URL", "http://127.0.0.1:5000"),
        # SMTP, under Flask-Mail's names and defaults; no MAIL_SERVER: mail is off (kiosk.mail.settings).
        **MAIL_DEFAULTS,
    )
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.update(test_config)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    # Flask's defaults hold SECRET_KEY = None, so test for a value, not for the key.
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = read_or_create(instance / SECRET_KEY_FILE)
    if not app.config.get("READER_PEPPER"):
        app.config["READER_PEPPER"] = read_or_create(instance / PEPPER_FILE)

    babel.init_app(app, locale_selector=select_locale, default_locale=DEFAULT_LANGUAGE,
                   default_translation_directories=str(PACKAGE / "translations"))
    app.session_interface = HttpsAwareSessions()
    db.init_app(app)
    if migrations:
        from flask_migrate import Migrate

        Migrate(app, db, directory=str(MIGRATIONS))
    Htmx(app)
    if web:
        from flask_wtf import CSRFProtect

        CSRFProtect(app)
    app.after_request(security_headers)
    if web:
        from kiosk.app.logs import install_request_ids

        install_request_ids(app)
    if app.config.get("TRUST_PROXY"):
        # Behind nginx: the client's address and scheme come from X-Forwarded-*.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    with app.app_context():
        configure_engine(db.engine, app.config.get("SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_MS))
        # Else `kiosk db upgrade` is about to make the schema. A read first: only the
        # very first start writes (and takes SQLite's write lock).
        if not schema_missing(db.session) and not pepper_known(db.session, app.config["READER_PEPPER"]):
            run_in_transaction(db.session, lambda session: guard_pepper(session, app.config["READER_PEPPER"]))
        db.session.remove()

    if web:
        from kiosk.web import register_web

        register_web(app)
    return app


def waitress_options(app: Flask) -> dict:
    """How `kiosk serve` runs waitress: a body past the request limit is refused
    before it is read (Flask alone would refuse it only once it had it). Behind a
    proxy (TRUST_PROXY), waitress passes X-Forwarded-* on to ProxyFix instead of
    dropping them: otherwise every reader would seem to come from the proxy's
    address, and one address's sign-in limit would lock everyone out."""
    options = {"max_request_body_size": app.config["MAX_CONTENT_LENGTH"] + 64 * 1024}
    if app.config.get("TRUST_PROXY"):
        options["clear_untrusted_proxy_headers"] = False
    return options


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class HttpsAwareSessions(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (behind a
    proxy: with TRUST_PROXY set, from X-Forwarded-Proto), and always if configured."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # same-origin: Flask-WTF checks the Referer of HTTPS form posts; other sites get none.
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
