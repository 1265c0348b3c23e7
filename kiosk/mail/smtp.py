"""Talking to the SMTP server (smtplib): one connection for a round of messages,
and every way it can go wrong as a MailProblem, temporary or permanent.

Permanent (the message is given up at once): a 5xx answer to the recipient or to
the message itself. Everything else is tried again later: the server down, slow
or dropping the line, a 4xx answer, and the server's settings (TLS, login, the
sender's address), which staff can have mended before the attempts run out."""
from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from kiosk.domain.outbox import MailProblem
from kiosk.mail.settings import MailSettings


@dataclass
class NotSent(Exception):
    problem: MailProblem
    detail: str
    permanent: bool = False
    # The server itself failed (down, TLS, login, sender): the next message would too.
    whole_round: bool = False

    def __str__(self) -> str:
        return f"{self.problem}: {self.detail}"


def _answer(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}".strip()


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """smtplib's login, but for a name or password with letters beyond ASCII (a
    Polish password), which smtplib cannot send: AUTH PLAIN in UTF-8 (RFC 4616)."""
    if (username + password).isascii():
        smtp.login(username, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        raise smtplib.SMTPNotSupportedError("the server offers no AUTH PLAIN for a non-ASCII name or password")
    token = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode()).decode("ascii")
    code, answer = smtp.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


class Postman:
    """Sends messages over one SMTP connection, opened at the first and reopened
    after the server dropped it; close() ends it."""

    def __init__(self, settings: MailSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, recipient: str) -> None:
        try:
            self._connected().send_message(message, from_addr=self.settings.sender_address, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as refused:
            code, text = next(iter(refused.recipients.values()))
            raise NotSent(MailProblem.RECIPIENT_REFUSED if code >= 500 else MailProblem.TEMPORARY,
                          _answer(code, text), permanent=code >= 500) from None
        except smtplib.SMTPSenderRefused as refused:
            self._drop()
            raise NotSent(MailProblem.SENDER_REFUSED, _answer(refused.smtp_code, refused.smtp_error),
                          whole_round=True) from None
        except smtplib.SMTPDataError as refused:
            raise NotSent(MailProblem.REJECTED if refused.smtp_code >= 500 else MailProblem.TEMPORARY,
                          _answer(refused.smtp_code, refused.smtp_error), permanent=refused.smtp_code >= 500) from None
        except NotSent:
            raise
        except smtplib.SMTPResponseException as other:  # e.g. 421 closing, or a 5xx to MAIL FROM's options
            self._drop()
            raise NotSent(MailProblem.TEMPORARY, _answer(other.smtp_code, other.smtp_error),
                          whole_round=True) from None
        except (smtplib.SMTPException, OSError) as lost:  # dropped mid-message; a timeout
            self._drop()
            raise NotSent(MailProblem.UNREACHABLE, f"{self.settings.where}: {lost or type(lost).__name__}",
                          whole_round=True) from None

    def _connected(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        s = self.settings
        try:
            if s.use_ssl:
                smtp = smtplib.SMTP_SSL(s.server, s.port, timeout=s.timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(s.server, s.port, timeout=s.timeout)
        except ssl.SSLError as failed:
            raise NotSent(MailProblem.TLS, f"{s.where}: {failed}", whole_round=True) from None
        except (OSError, smtplib.SMTPException) as failed:  # refused, no such host, timed out, 4xx/5xx greeting
            what = str(failed) or type(failed).__name__
            if isinstance(failed, socket.gaierror):
                what = f"{failed.strerror}"
            raise NotSent(MailProblem.UNREACHABLE, f"{s.where}: {what}", whole_round=True) from None
        try:
            if s.use_tls:
                smtp.starttls(context=ssl.create_default_context())
        except (ssl.SSLError, smtplib.SMTPNotSupportedError) as failed:
            self._close(smtp)
            raise NotSent(MailProblem.TLS, f"{s.where}: {failed}", whole_round=True) from None
        except (OSError, smtplib.SMTPException) as failed:
            self._close(smtp)
            raise NotSent(MailProblem.UNREACHABLE, f"{s.where}: {failed or type(failed).__name__}",
                          whole_round=True) from None
        try:
            if s.username:
                _login(smtp, s.username, s.password or "")
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as refused:
            self._close(smtp)
            detail = (_answer(refused.smtp_code, refused.smtp_error)
                      if isinstance(refused, smtplib.SMTPAuthenticationError) else str(refused))
            raise NotSent(MailProblem.LOGIN_FAILED, detail, whole_round=True) from None
        except (OSError, smtplib.SMTPException) as failed:
            self._close(smtp)
            raise NotSent(MailProblem.UNREACHABLE, f"{s.where}: {failed or type(failed).__name__}",
                          whole_round=True) from None
        self._smtp = smtp
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            self._close(smtp)

    @staticmethod
    def _close(smtp: smtplib.SMTP) -> None:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def close(self) -> None:
        self._drop()
