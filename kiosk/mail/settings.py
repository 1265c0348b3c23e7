"""The SMTP settings, read from the app's config under Flask-Mail's names and with
its defaults (MAIL_PORT 25, no TLS, no SSL, no login), but for one: without a
MAIL_SERVER mail is off and messages wait in the outbox. Flask-Mail would assume
localhost, and a library PC with no mail server there would retry for hours and
then give every message up; an operator who runs one sets MAIL_SERVER = "localhost"."""
from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import formataddr, parseaddr
from typing import Mapping

# What create_app puts in the config before <instance>/config.py (Flask-Mail's defaults).
DEFAULTS = dict(MAIL_SERVER=None, MAIL_PORT=25, MAIL_USE_TLS=False, MAIL_USE_SSL=False, MAIL_USERNAME=None,
                MAIL_PASSWORD=None, MAIL_DEFAULT_SENDER=None, MAIL_TIMEOUT=30)


class MailNotConfigured(RuntimeError):
    """Mail is off or its settings cannot work; the message says which and how to mend it."""


@dataclass(frozen=True)
class MailSettings:
    server: str
    port: int
    use_tls: bool  # STARTTLS after connecting
    use_ssl: bool  # TLS from the first byte (SMTPS, usually port 465)
    username: str | None
    password: str | None
    sender: str  # the From header: "Name <address>" or "address"
    sender_address: str
    timeout: float

    @property
    def where(self) -> str:
        return f"{self.server}:{self.port}"

    @property
    def domain(self) -> str:
        return self.sender_address.rpartition("@")[2] or "kodomat.invalid"


def mail_settings(config: Mapping) -> MailSettings:
    """The settings, or MailNotConfigured with the reason in words an operator can act on."""
    server = (config.get("MAIL_SERVER") or "").strip()
    if not server:
        raise MailNotConfigured("Wysyłanie e-maili jest wyłączone: w pliku config.py instancji nie ma "
                                "MAIL_SERVER (adresu serwera SMTP). Wiadomości czekają w kolejce.")
    sender = config.get("MAIL_DEFAULT_SENDER")
    if isinstance(sender, (tuple, list)) and len(sender) == 2:  # Flask-Mail's (name, address)
        sender = formataddr((str(sender[0]), str(sender[1])))
    _name, address = parseaddr(sender or "")
    if not _valid_address(address):
        raise MailNotConfigured("W pliku config.py instancji brak poprawnego MAIL_DEFAULT_SENDER (adresu "
                                "nadawcy, np. \"Biblioteka <kody@biblioteka.pl>\"). Wiadomości czekają w kolejce.")
    use_tls, use_ssl = bool(config.get("MAIL_USE_TLS")), bool(config.get("MAIL_USE_SSL"))
    if use_tls and use_ssl:
        raise MailNotConfigured("W pliku config.py instancji włączono naraz MAIL_USE_TLS (STARTTLS, zwykle port "
                                "587) i MAIL_USE_SSL (SSL, zwykle port 465): wybierz jedno.")
    try:
        port, timeout = int(config.get("MAIL_PORT") or 25), float(config.get("MAIL_TIMEOUT") or 30)
    except (TypeError, ValueError):
        raise MailNotConfigured("MAIL_PORT i MAIL_TIMEOUT w pliku config.py instancji muszą być liczbami.")
    if not 0 < port < 65536 or timeout <= 0:
        raise MailNotConfigured("MAIL_PORT w pliku config.py instancji musi być numerem portu (1–65535).")
    return MailSettings(server=server, port=port, use_tls=use_tls, use_ssl=use_ssl,
                        username=config.get("MAIL_USERNAME") or None, password=config.get("MAIL_PASSWORD") or None,
                        sender=str(sender), sender_address=address, timeout=timeout)


def _valid_address(address: str) -> bool:
    return usable_address(address) is not None


def usable_address(address: str) -> str | None:
    """The address as an SMTP envelope can carry it (a non-ASCII domain in IDNA), or
    None for one it cannot: malformed, two addresses, a line break, a non-ASCII name."""
    try:
        parsed = Address(addr_spec=address.strip())
        domain = parsed.domain.encode("idna").decode("ascii")
        parsed.username.encode("ascii")
    except Exception:  # email's parser raises ValueError, IndexError, HeaderParseError, UnicodeError…
        return None
    if not parsed.username or "." not in domain:
        return None
    return Address(username=parsed.username, domain=domain).addr_spec  # quoted where it must be
