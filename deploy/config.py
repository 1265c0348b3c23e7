"""An instance's settings behind nginx: copy to /var/lib/kodomat/config.py
(root:kodomat, mode 0640) and change what is marked. Flask reads it as it starts;
the README's Configuration section lists every setting."""

# nginx (deploy/nginx/kodomat.conf) is the only way in: the client's address comes
# from X-Forwarded-For (each reader's and each staff member's own address counts
# for the sign-in and online-form limits) and the scheme from X-Forwarded-Proto.
TRUST_PROXY = True

# The server's public address, in kiosk enrolment links and e-mails. CHANGE IT.
KIOSK_BASE_URL = "https://kody.example.pl"

# Every page comes over HTTPS: the session cookie is never sent without it.
SESSION_COOKIE_SECURE = True

# E-mail with the online form's codes (README: E-mail). Without MAIL_SERVER nothing
# is sent and the messages wait in the outbox.
# MAIL_SERVER = "smtp.biblioteka.pl"
# MAIL_PORT = 587
# MAIL_USE_TLS = True
# MAIL_USERNAME = "kody@biblioteka.pl"
# MAIL_PASSWORD = "…"
# MAIL_DEFAULT_SENDER = ("Biblioteka Publiczna", "kody@biblioteka.pl")

# Printers a library admin may pick for a kiosk in the panel, besides "browser"
# (README: Setting up a kiosk PC).
# PRINTERS = ["escpos-tcp:192.168.1.50", "cups:desk"]
