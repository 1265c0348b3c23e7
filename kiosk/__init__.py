"""Kodomat: monthly e-book codes for library readers. The Flask app factory."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from htmx_flask import Htmx

from kiosk.database import SQLITE_BUSY_TIMEOUT_MS, configure_engine, normalise_database_url
from kiosk.extensions import db, migrate
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
    )
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.update(test_config)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config.setdefault("SECRET_KEY", read_or_create(instance / SECRET_KEY_FILE))
    app.config.setdefault("READER_PEPPER", read_or_create(instance / PEPPER_FILE))

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    Htmx(app)
    with app.app_context():
        configure_engine(db.engine, app.config.get("SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_MS))

    from kiosk import web
    app.register_blueprint(web.bp)
    return app
