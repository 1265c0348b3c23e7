"""Names of the code's values as people read them: roles, channels."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from kiosk.storage.models import Channel, Role

ROLE_NAMES = {
    Role.DESK: _l("obsługa stanowiska"),
    Role.LIBRARY_ADMIN: _l("administrator biblioteki"),
    Role.CONSORTIUM_ADMIN: _l("administrator konsorcjum"),
}
CHANNEL_NAMES = {
    Channel.KIOSK: _l("kiosk"),
    Channel.DESK: _l("stanowisko"),
    Channel.API: _l("API"),
}


def channel_name(channel: str) -> str:
    return str(CHANNEL_NAMES.get(channel, channel))


def role_name(role: str) -> str:
    return str(ROLE_NAMES.get(role, role))
