"""WSGI entry point for waitress or gunicorn: `waitress-serve wsgi:app`.

A server needs no Flask-Migrate (alembic and its templates: about 11 MiB a worker);
migrations are `kiosk db upgrade`'s."""
from kiosk import create_app
from kiosk.app.logs import configure_logging

configure_logging()  # JSON lines on standard error, with each request's id
app = create_app(migrations=False)
