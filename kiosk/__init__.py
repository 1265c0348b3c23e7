"""Kodomat: monthly e-book codes for library readers.

The layers, innermost first: storage (models, engine, transactions), domain (the
rules; no Flask), wording (sentences in pl/en/uk), app (the Flask application),
web (blueprints per audience) and cli (the `kiosk` command)."""


def create_app(test_config: dict | None = None, *, web: bool = True, migrations: bool = True):
    """The Flask app (imported on use, so `kiosk.domain` stays free of Flask);
    web=False leaves out the pages and migrations=False Flask-Migrate, for a
    command that serves no page or does not migrate (kiosk.app.factory)."""
    from kiosk.app.factory import create_app as factory

    return factory(test_config, web=web, migrations=migrations)
