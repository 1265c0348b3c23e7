"""WSGI entry point for waitress or gunicorn: `waitress-serve wsgi:app`."""
from kiosk import create_app

app = create_app()
