"""A SIP2 client: asks a library system (Koha, Evergreen, an RFID self-check ACS) what it
knows about a library card. The answer is passed on as sent; kiosk.domain interprets it."""
from kiosk.sip2.client import (Sip2Settings, Sip2Unavailable, close_thread_connections,
                               patron_information)
from kiosk.sip2.protocol import PatronAnswer

__all__ = ["PatronAnswer", "Sip2Settings", "Sip2Unavailable", "close_thread_connections",
           "patron_information"]
