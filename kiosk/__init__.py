"""Kodomat: monthly e-book codes for library readers. The Flask app factory."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from htmx_flask import Htmx

from kiosk.database import SQLITE_BUSY_TIMEOUT_MS, configure_engine, normalise_database_url
from kiosk.extensions import csrf, db, migrate
from kiosk.i18n import DEFAULT_LANGUAGE, babel, select_locale
from kiosk.secrets import PEPPER_FILE, SECRET_KEY_FILE, read_or_create

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def instance_folder() -> Path:
    """KIOSK_INSTANCE, or ./instance beside the project."""
    return Path(os.environ.get("KIOSK_INSTANCE") or PROJECT_ROOT / "instance").resolve()


def create_app(test_config: dict | None = None) -> Flask:
    instance = Path((test_config or {}).get("INSTANCE_PATH") or instance_folder())
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask(
        __name__,
        instance_path=str(instance),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'kodomat.db'}"
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=normalise_database_url(database_url),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # A kiosk's idle page may stand for days: its form token must not expire.
        WTF_CSRF_TIME_LIMIT=None,
        KIOSK_BASE_URL="http://127.0.0.1:5000",
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
                   default_translation_directories=str(Path(__file__).resolve().parent / "translations"))
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    Htmx(app)
    csrf.init_app(app)
    app.after_request(security_headers)
    with app.app_context():
        configure_engine(db.engine, app.config.get("SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_MS))

    from kiosk.views import kiosk as kiosk_views, public
    app.register_blueprint(public.bp)
    app.register_blueprint(kiosk_views.bp)
    return app


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
