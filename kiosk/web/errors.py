"""Error screens for staff pages, in the staff's language: a short notice for an
htmx request (swapped into the part of the page that asked), a page otherwise.
The kiosk has its own (kiosk.web.kiosk)."""
from __future__ import annotations

from flask import Flask, current_app, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError

from kiosk.storage.database import is_busy
from kiosk.app.extensions import db
from kiosk.web.access import staff_language
from kiosk.web.fragments import is_fragment_request
from kiosk.storage.database import DatabaseBusy


def _answer(message: str, status: int):
    staff_language()
    if is_fragment_request():
        return render_template("shared/_notice.html", message=message), status
    return render_template("shared/error.html", message=message, status=status), status


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def stale_form(_error):
        return _answer(_("Ten formularz wygasł (na przykład po ponownym zalogowaniu). Odśwież stronę i spróbuj "
                         "jeszcze raz."), 400)

    @app.errorhandler(400)
    def bad_request(_error):
        return _answer(_("Tego formularza nie da się przyjąć: któreś pole jest za długie albo ma niedozwolone "
                         "znaki. Nic nie zmieniono."), 400)

    @app.errorhandler(413)
    def too_large(_error):
        limit = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return _answer(_("Plik jest za duży (najwyżej %(limit)s MB). Nic nie zmieniono.", limit=limit), 413)

    @app.errorhandler(403)
    def forbidden(_error):
        return _answer(_("Twoje konto nie ma dostępu do tej strony."), 403)

    @app.errorhandler(404)
    def not_found(_error):
        return _answer(_("Nie ma takiej strony albo nie należy do Twojej biblioteki."), 404)

    @app.errorhandler(409)
    def conflict(_error):
        return _answer(_("Tego nie można zrobić z tym kodem: został wycofany albo jego miesiąc minął."), 409)

    @app.errorhandler(OperationalError)
    def locked(error):
        if not is_busy(error):
            raise error
        db.session.rollback()
        return busy(error)

    @app.errorhandler(DatabaseBusy)
    def busy(_error):
        return _answer(_("System jest teraz zajęty i niczego nie zmienił. Spróbuj jeszcze raz za chwilę."), 503)
