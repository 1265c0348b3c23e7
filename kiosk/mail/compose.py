"""The message with a reader's code, in the reader's language (pl, en, uk): plain
text and HTML saying what the slip says (the code, the activate-by warning, the
steps), and the slip itself as an A6 PDF. Read from the database when it is sent,
never copied into the outbox: a code withdrawn meanwhile is not mailed."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from flask import render_template
from flask_babel import force_locale, gettext
from sqlalchemy.orm import Session

from kiosk.domain.clock import format_date, local_day
from kiosk.domain.outbox import Claim, MailProblem, code_state
from kiosk.mail.settings import MailSettings, usable_address
from kiosk.mail.smtp import NotSent
from kiosk.wording.languages import language_from
from kiosk.wording.slips import slip_for_issuance
from printing.slip import Slip

PDF_FORMAT = "a6"  # a page a home printer takes, unlike a receipt roll


@dataclass(frozen=True)
class Letter:
    recipient: str
    language: str
    library: str
    slip: Slip


def read_letter(session: Session, claim: Claim, now: datetime) -> Letter:
    """What the message says, read now; NotSent (permanent) when it must not go:
    the code withdrawn, its last day to activate past, an address no message can
    go to."""
    state = code_state(session, claim.issuance_id)
    if state.withdrawn:
        raise NotSent(MailProblem.CODE_WITHDRAWN, "", permanent=True)
    if local_day(now, state.timezone) > state.activate_by:
        raise NotSent(MailProblem.CODE_EXPIRED, format_date(state.activate_by), permanent=True)
    recipient = usable_address(claim.to_address)
    if recipient is None:
        raise NotSent(MailProblem.BAD_ADDRESS, "", permanent=True)
    language = language_from(claim.language)
    return Letter(recipient, language, state.library, slip_for_issuance(session, claim.issuance_id, language, now))


def message_id(claim: Claim, settings: MailSettings) -> str:
    """The same for every attempt at one outbox row: a copy sent twice (the server
    took it, the sender died before marking it) is recognisable as one message."""
    return f"<kodomat.outbox.{claim.id}.{claim.created_at:%Y%m%d%H%M%S%f}@{settings.domain}>"


def compose(letter: Letter, claim: Claim, settings: MailSettings, now: datetime) -> EmailMessage:
    from printing.pdf import render_pdf  # reportlab: loaded by the first message, not by every command

    slip = letter.slip
    with force_locale(letter.language):
        words = dict(
            greeting=gettext("Dzień dobry,"),
            intro=gettext("%(library)s przesyła Twój kod %(platform)s:", library=letter.library,
                          platform=slip.platform),
            attached=gettext("W załączniku jest wydruk z kodem (PDF)."),
            footer=gettext("Wiadomość wysłana automatycznie. Jeśli nie jest do Ciebie, zignoruj ją."),
        )
        subject = f"{slip.title} · {letter.library}"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = letter.recipient
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(claim, settings)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to it
    message.set_content(_text(slip, words))
    message.add_alternative(render_template("mail/code.html", slip=slip, lang=letter.language, **words),
                            subtype="html")
    message.add_attachment(render_pdf(slip, PDF_FORMAT), maintype="application", subtype="pdf",
                           filename=f"kod-{slip.slip_id}.pdf")
    message["Content-Language"] = letter.language  # after the parts: making them moves Content-* headers down
    return message


def _text(slip: Slip, words: dict) -> str:
    steps = [f"{number}. {step}" for number, step in enumerate(slip.steps, 1)]
    notes = " ".join(note for note in (slip.access_note, slip.devices_note) if note)
    return "\n".join([
        words["greeting"], "", words["intro"], "", f"    {slip.grouped_code}", "", slip.warning, "",
        slip.steps_title, *steps, "", notes, *([slip.help_note] if slip.help_note else []), "",
        words["attached"], slip.issued_line, "", "-- ", words["footer"], ""])
