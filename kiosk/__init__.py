"""Kodomat: monthly e-book codes for library readers.

The layers, innermost first: storage (models, engine, transactions), domain (the
rules; no Flask), wording (sentences in pl/en/uk), app (the Flask application),
web (blueprints per audience) and cli (the `kiosk` command)."""


def create_app(test_config: dict | None = None):
    """The Flask app (imported on use, so `kiosk.domain` stays free of Flask)."""
    from kiosk.app.factory import create_app as factory

    return factory(test_config)
