"""The e-mail outbox as staff see it: what is waiting, what is being tried again
and why, what was given up and why, and "send again" for the last. A library's
admin sees its own messages, the consortium admin every library's. Addresses are
shown whole: staff check a typo against what the reader says, and the same admins
already import the card register that holds them."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.domain.clock import utcnow
from kiosk.domain.outbox import outbox_state, send_again
from kiosk.mail import wake
from kiosk.mail.settings import MailNotConfigured, mail_settings
from kiosk.storage.models import Library, Role
from kiosk.web.access import ADMIN_ROLES, library_in_scope, login_required, staff_actor
from kiosk.web.admin import bp
from kiosk.web.admin.common import page
from kiosk.wording.mail import mail_problem
from kiosk.wording.slips import slip_id


@bp.get("/<slug>/mail")
@login_required(*ADMIN_ROLES)
def mail(slug: str):
    return _mail_page(library_in_scope(slug))


@bp.get("/mail")
@login_required(Role.CONSORTIUM_ADMIN)
def consortium_mail():
    return _mail_page(None)


def _mail_page(library: Library | None):
    try:
        server = mail_settings(current_app.config).where
    except MailNotConfigured:
        server = None
    state = outbox_state(db.session, library.id if library else None)
    return page("admin/mail.html", library=library, state=state, server=server, mail_problem=mail_problem,
                slip_id=slip_id)


@bp.post("/<slug>/mail/<int:message_id>")
@login_required(*ADMIN_ROLES)
def mail_again(slug: str, message_id: int):
    library = library_in_scope(slug)  # another library's message: 404, as for its page
    library_id, actor = library.id, staff_actor()
    if request.form.get("action") != "again":
        abort(400)
    if write(lambda s: send_again(s, message_id=message_id, library_id=library_id, actor=actor, now=utcnow())):
        wake()
        flash(_("Wiadomość wróciła do kolejki i zostanie wysłana ponownie."))
    else:
        flash(_("Tej wiadomości nie trzeba wysyłać ponownie: już wyszła albo czeka w kolejce."))
    if request.form.get("back") == "consortium":
        return redirect(url_for("admin.consortium_mail"))
    return redirect(url_for("admin.mail", slug=library.slug))
