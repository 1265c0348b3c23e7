"""How a library's system is asked about cards over SIP2: the settings, checked in
one place whether they come from the admin panel or `kiosk sip2`, saved with the
login password sealed, every change logged (never the password itself)."""
from __future__ import annotations

import dataclasses
import enum
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Mapping

from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.refusals import Problem, Refused
from kiosk.sip2 import Sip2Settings
from kiosk.storage.models import CardCheckKind, Library, Sip2Setting
from kiosk.storage.secrets import seal, unseal

log = logging.getLogger("kiosk.sip2")
ENCODINGS = ("utf-8", "cp1250", "cp852", "cp850")  # Polish library systems differ
TIMEOUT_RANGE = (0.5, 30.0)  # seconds
DEFAULT_TIMEOUT = 3.0
MAX_TEXT = 100
# A host name or an IPv4/IPv6 address: letters, digits, dots, dashes, colons.
HOST = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,255}")


class OnFailure(enum.StrEnum):
    """What a kiosk does when the library system does not answer."""

    REFUSE = "refuse"  # "we cannot check your card right now, ask at the desk"
    REGISTRY = "registry"  # the imported card register decides (said in the log)


class Sip2Problem(enum.StrEnum):
    HOST = "sip2_host"
    PORT = "sip2_port"
    CA_FILE = "sip2_ca_file"
    LOGIN = "sip2_login"
    PASSWORD = "sip2_password"
    PASSWORD_AGAIN = "sip2_password_again"  # the server or the user changed: the password is asked again
    ENCODED = "sip2_encoded"  # a text the server's encoding cannot carry
    INSTITUTION = "sip2_institution"
    LOCATION = "sip2_location"
    ENCODING = "sip2_encoding"
    TIMEOUT = "sip2_timeout"
    ON_FAILURE = "sip2_on_failure"
    NOT_SET_UP = "sip2_not_set_up"  # card check "sip2" chosen before the connection is set


class Sip2Refused(Refused):
    pass


@dataclass(frozen=True)
class Sip2Form:
    """The settings as an admin sees them: the password is never shown back, only
    whether one is set; None in `password` keeps the one saved."""

    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None
    login_user: str | None = None
    password: str | None = field(default=None, repr=False)
    has_password: bool = False
    institution: str = ""
    location: str | None = None
    encoding: str = "utf-8"
    timeout: float = DEFAULT_TIMEOUT
    on_failure: OnFailure = OnFailure.REFUSE
    require_pin: bool = False


@dataclass(frozen=True)
class Sip2Config:
    """What the issuing channels need: how to connect, and what to do without an answer."""

    settings: Sip2Settings
    on_failure: OnFailure
    require_pin: bool


def _resolvable_name(host: str) -> bool:
    """A name the resolver can be asked about: no empty label ("koha..pl"), none
    longer than 63 characters."""
    try:
        host.encode("idna")
        return True
    except UnicodeError:
        return False


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "on", "yes", "tak")


def _sip_text(value: str | None, limit: int, problem: Sip2Problem, problems: list) -> str | None:
    """A value sent inside a SIP2 field: no field delimiter, no control characters."""
    text = (value or "").strip()
    if len(text) > limit or "|" in text or not text.isprintable():
        problems.append(Problem(problem, {"limit": limit}))
    return text or None


def parse_sip2_settings(values: Mapping[str, object], current: Sip2Form | None) -> Sip2Form:
    """The settings as the form or the command gives them; a field left out keeps
    its value (a first set-up needs the host and the port). Every problem at once."""
    problems: list[Problem] = []
    get = lambda key, default=None: values[key] if values.get(key) is not None else (  # noqa: E731
        getattr(current, key) if current is not None else default)
    host = str(get("host", "") or "").strip()
    if not HOST.fullmatch(host) or not _resolvable_name(host):
        problems.append(Problem(Sip2Problem.HOST, {"value": host[:60]}))
    port = 0
    try:
        port = int(str(get("port", "")).strip())
    except ValueError:
        pass
    if not 1 <= port <= 65535:
        problems.append(Problem(Sip2Problem.PORT, {"low": 1, "high": 65535}))
    tls = _flag(get("tls", False))
    ca_file = (str(get("ca_file", "") or "").strip() or None) if tls else None
    if ca_file is not None and (len(ca_file) > 500 or not _is_file(ca_file)):
        problems.append(Problem(Sip2Problem.CA_FILE, {"value": ca_file[:120]}))
    login_user = _sip_text(get("login_user"), MAX_TEXT, Sip2Problem.LOGIN, problems)
    password = None
    if values.get("password"):
        password = _sip_text(str(values["password"]), MAX_TEXT, Sip2Problem.PASSWORD, problems)
    # The saved password goes only where it went before: a new server or user needs it
    # typed again, or an admin could send it to a server of their own and read it there.
    # (The encoding too: the saved password must still travel in the new one.)
    same_place = current is not None and (current.host, current.port, current.tls, current.ca_file,
                                          current.login_user, current.encoding) == (
        host, port, tls, ca_file, login_user, str(get("encoding", "utf-8")).strip().lower())
    has_password = password is not None or bool(same_place and current.has_password and login_user)
    if login_user and not has_password:
        moved = current is not None and current.has_password
        problems.append(Problem(Sip2Problem.PASSWORD_AGAIN if moved else Sip2Problem.PASSWORD, {"limit": MAX_TEXT}))
    encoding = str(get("encoding", "utf-8")).strip().lower()
    if encoding not in ENCODINGS:
        problems.append(Problem(Sip2Problem.ENCODING, {"value": encoding[:20], "choices": ", ".join(ENCODINGS)}))
    timeout = DEFAULT_TIMEOUT
    try:
        timeout = float(str(get("timeout", DEFAULT_TIMEOUT)).strip().replace(",", "."))
        if not TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]:
            raise ValueError
    except ValueError:
        problems.append(Problem(Sip2Problem.TIMEOUT, {"low": TIMEOUT_RANGE[0], "high": TIMEOUT_RANGE[1]}))
    on_failure = str(get("on_failure", OnFailure.REFUSE.value)).strip()
    if on_failure not in {choice.value for choice in OnFailure}:
        problems.append(Problem(Sip2Problem.ON_FAILURE, {"value": on_failure[:20]}))
    form = Sip2Form(
        host=host, port=port, tls=tls, ca_file=ca_file, login_user=login_user, password=password,
        has_password=has_password and bool(login_user),
        institution=_sip_text(get("institution", ""), MAX_TEXT, Sip2Problem.INSTITUTION, problems) or "",
        location=_sip_text(get("location"), MAX_TEXT, Sip2Problem.LOCATION, problems),
        encoding=encoding, timeout=round(timeout, 1), on_failure=OnFailure(on_failure) if not problems else
        OnFailure.REFUSE, require_pin=_flag(get("require_pin", False)))
    if not problems:
        # Every text must travel in the server's encoding ("Łódź" does not fit cp850).
        for name, problem in (("institution", Sip2Problem.INSTITUTION), ("location", Sip2Problem.LOCATION),
                              ("login_user", Sip2Problem.LOGIN), ("password", Sip2Problem.PASSWORD)):
            try:
                (getattr(form, name) or "").encode(encoding)
            except UnicodeEncodeError:
                problems.append(Problem(Sip2Problem.ENCODED, {"field": name, "encoding": encoding}))
    if problems:
        raise Sip2Refused.of(problems)
    return form


def current_sip2(session: Session, library_id: int) -> Sip2Form | None:
    row = session.get(Sip2Setting, library_id)
    if row is None:
        return None
    return Sip2Form(host=row.host, port=row.port, tls=row.tls, ca_file=row.ca_file, login_user=row.login_user,
                    has_password=row.password_sealed is not None, institution=row.institution,
                    location=row.location, encoding=row.encoding, timeout=row.timeout_ms / 1000,
                    on_failure=OnFailure(row.on_failure), require_pin=row.require_pin)


def save_sip2_settings(session: Session, library_id: int, form: Sip2Form, *, pepper: str, actor: Actor,
                       now: datetime) -> dict:
    """Saves the settings and makes SIP2 the library's card check; logs and returns
    what changed (the password as "changed", never its value)."""
    row = session.get(Sip2Setting, library_id)
    if row is None:
        row = Sip2Setting(library_id=library_id, host=form.host, port=form.port)
        session.add(row)
        before: dict = {}
    else:
        before = dataclasses.asdict(current_sip2(session, library_id))
    after = dataclasses.asdict(form)
    changed = {key: value for key, value in after.items()
               if key not in ("password", "has_password") and before.get(key) != value}
    for key, value in changed.items():
        setattr(row, "timeout_ms" if key == "timeout" else key,
                int(value * 1000) if key == "timeout" else getattr(value, "value", value))
    if form.password is not None:
        row.password_sealed = seal(pepper, form.password)
        changed["password"] = "changed"
    if not form.login_user and row.password_sealed is not None:
        row.password_sealed = None
        changed["password"] = "removed"
    library = session.get(Library, library_id)
    if library.card_check != CardCheckKind.SIP2.value:
        library.card_check = CardCheckKind.SIP2.value
        changed["card_check"] = CardCheckKind.SIP2.value
    if changed:
        record_event(session, kind=EventKind.SETTINGS, actor=actor, library_id=library_id, now=now,
                     scope="sip2", **changed)
    return changed


def sip2_config(session: Session, library_id: int, pepper: str) -> Sip2Config | None:
    """The connection the issuing channels use; None when none is set up."""
    return config_of(session.get(Sip2Setting, library_id), library_id, pepper)


def config_of(row, library_id: int, pepper: str) -> Sip2Config | None:
    """The connection a stored settings row (or a copy of one) describes."""
    if row is None:
        return None
    password = unseal(pepper, row.password_sealed) if row.password_sealed else None
    if row.password_sealed and password is None:
        log.error("the SIP2 password of library %s cannot be unsealed with this instance's pepper; "
                  "set it again (kiosk sip2 --password)", library_id)
    try:
        settings = Sip2Settings(host=row.host, port=row.port, tls=row.tls, ca_file=row.ca_file,
                                login_user=row.login_user, login_password=password, institution=row.institution,
                                location=row.location, encoding=row.encoding, timeout=row.timeout_ms / 1000)
    except ValueError as error:  # settings written by hand, past the checks: cards are refused, not waved through
        log.error("the SIP2 settings of library %s cannot be used: %s", library_id, error)
        return None
    return Sip2Config(settings=settings, on_failure=OnFailure(row.on_failure), require_pin=row.require_pin)
