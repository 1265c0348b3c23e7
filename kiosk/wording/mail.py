"""Why an e-mail did not go, in words staff can act on (the panel's outbox page and
`kiosk send-mail`); the server's own answer follows in small print."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from kiosk.domain.outbox import MailProblem

MAIL_PROBLEMS = {
    MailProblem.UNREACHABLE: _l("Nie udało się połączyć z serwerem poczty: jest wyłączony, niedostępny albo "
                                "w ustawieniach jest zły adres lub port."),
    MailProblem.TLS: _l("Nie udało się nawiązać szyfrowanego połączenia z serwerem poczty (TLS/SSL)."),
    MailProblem.LOGIN_FAILED: _l("Serwer poczty nie przyjął nazwy użytkownika lub hasła z ustawień serwera."),
    MailProblem.SENDER_REFUSED: _l("Serwer poczty nie przyjął adresu nadawcy z ustawień serwera."),
    MailProblem.TEMPORARY: _l("Serwer poczty chwilowo nie przyjął wiadomości; spróbujemy ponownie."),
    MailProblem.RECIPIENT_REFUSED: _l("Serwer poczty odrzucił adres odbiorcy: adres nie istnieje albo "
                                      "skrzynka nie przyjmuje poczty."),
    MailProblem.REJECTED: _l("Serwer poczty odrzucił wiadomość."),
    MailProblem.BAD_ADDRESS: _l("To nie jest poprawny adres e-mail: wiadomości nie da się wysłać."),
    MailProblem.NOT_COMPOSED: _l("Nie udało się przygotować wiadomości (błąd programu; szczegóły w logu "
                                 "serwera)."),
    MailProblem.CODE_WITHDRAWN: _l("Kod wycofano, zanim wiadomość wyszła: nieważnego kodu nie wysłano."),
    MailProblem.CODE_EXPIRED: _l("Termin aktywacji kodu minął, zanim wiadomość wyszła: nie wysłano jej."),
    MailProblem.INTERRUPTED: _l("Wysyłanie przerwano przy ostatniej próbie: nie wiadomo, czy wiadomość "
                                "doszła."),
}


def mail_problem(problem: MailProblem | None) -> str:
    return str(MAIL_PROBLEMS[problem]) if problem is not None else ""
