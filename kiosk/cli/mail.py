"""`kiosk send-mail`: the outbox's sender, once, for cron or by hand, where no server
thread sends (`kiosk serve` and each gunicorn worker run one: kiosk.app.background).
Safe beside those threads and beside itself: each message is claimed by one sender
only."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from kiosk.app.extensions import db
from kiosk.cli import refuse


@click.command("send-mail")
@click.option("--limit", type=click.IntRange(min=1), help="Najwyżej tyle wiadomości w tym uruchomieniu.")
@with_appcontext
def send_mail(limit) -> None:
    """Wysyła e-maile z kodami, które czekają w kolejce (dla crona, gdy nie działa
    `kiosk serve`). Kod wyjścia 0: wysłano wszystko, co czekało."""
    from kiosk.mail.sender import send_due
    from kiosk.mail.settings import MailNotConfigured, mail_settings
    from kiosk.wording.mail import mail_problem

    try:
        settings = mail_settings(current_app.config)
    except MailNotConfigured as off:
        refuse(str(off))
    done = send_due(db.session, settings, limit=limit)
    click.echo(f"Wysłano: {done.sent}; do ponowienia: {done.retrying}; nie do wysłania: {done.given_up}; "
               f"czeka: {done.still_due}.")
    said = set()
    for problem in done.problems:
        line = f"{mail_problem(problem.problem)} {problem.detail}".strip()
        if line not in said:
            said.add(line)
            click.echo(line, err=True)
    sys.exit(0 if done.all_sent else 1)
