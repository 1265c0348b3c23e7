"""Flask extensions, created unbound so the app factory can attach them. Flask-Migrate
(alembic) and Flask-WTF's CSRF protection are made in the factory, for an app that
migrates or serves pages: a command that does neither never imports them."""
from flask_sqlalchemy import SQLAlchemy

from kiosk.storage.models import Base

db = SQLAlchemy(model_class=Base)
