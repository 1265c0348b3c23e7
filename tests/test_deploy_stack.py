"""The consortium deployment of deploy/, started for real on 127.0.0.1 as
docs/deploy.md installs it: a fresh PostgreSQL database, the `kiosk` commands
through deploy/kodomat.sh with deploy/kodomat.env, gunicorn with
deploy/gunicorn.conf.py (2 gthread workers) and deploy/config.py, and nginx with
deploy/nginx/kodomat.conf in front, over HTTPS with a certificate made here. Only
ports, paths, the database's name and the certificate are substituted, so these
tests check the files an IT person copies.

Through nginx: HTTPS /healthz, HTTP sent on to HTTPS, the security headers once
each, static files from nginx with their cache headers, a kiosk that issues a code,
each client's own address from X-Forwarded-For (one locked out of signing in, the
other not), the sign-in lock and the kiosk pause holding across both workers (the
limits live in PostgreSQL, not in a worker), and bodies past the limits refused
with 413. The PostgreSQL settings (deploy/postgresql.conf) are checked by the
server's own parser, and the systemd units by systemd-analyze.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import pytest

from helpers import PROJECT, TOKEN, require, require_command
from kiosk.app.factory import CONTENT_SECURITY_POLICY
from kiosk.storage.database import normalise_database_url

DEPLOY = PROJECT / "deploy"
NGINX = "/usr/sbin/nginx"
SLIP_CODE = re.compile(r'id="slip-code">([^<]*)<')
PAUSED = "Chwila przerwy"
LOCKED = "Za dużo nieudanych prób logowania"
APP_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy")
HSTS = "Strict-Transport-Security"
MIB = 1024 * 1024


# -- the stack ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def substituted(text: str, replacements: dict[str, str]) -> str:
    """Each replacement must find its text: a change to the deploy file that a
    substitution no longer matches fails here, not as a test of the wrong thing."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in the deploy file"
        text = text.replace(old, new)
    return text


def self_signed(folder: Path) -> Path:
    """A certificate for 127.0.0.1 in fullchain.pem/privkey.pem, as certbot lays them out."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kodomat test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder.mkdir()
    (folder / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return folder / "fullchain.pem"


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """The process and everything it started (its own process group)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    try:  # workers left behind by a master that died first
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Stack:
    folder: Path
    env: dict
    https_port: int = 0
    http_port: int = 0
    ca_file: Path | None = None
    gunicorn_log: Path | None = None
    gunicorn_port: int = 0
    processes: list = field(default_factory=list)

    def kodomat(self, *args: str) -> str:
        """deploy/kodomat.sh (the `kodomat` command of docs/deploy.md) as the operator runs it."""
        done = subprocess.run([str(DEPLOY / "kodomat.sh"), *args], env=self.env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, f"kodomat {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def client(self, address: str = "127.0.0.1") -> "Client":
        return Client(self, address)

    def pid_of(self, answer: "Answer") -> int:
        """The gunicorn worker that served the request: the app's access line with the
        answer's request id (nginx's, passed on in X-Request-Id) names its pid."""
        request_id = answer.headers["X-Request-Id"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a worker logs a request just after answering it
            for line in self.gunicorn_log.read_text(errors="replace").splitlines():
                if request_id in line:
                    logged = json.loads(line)
                    if logged.get("logger") == "kiosk.http" and logged.get("request_id") == request_id:
                        return logged["pid"]
            time.sleep(0.05)
        raise AssertionError(f"no access log line for request {request_id}")


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str
    marker: str


class Client:
    """A browser at its own address (127.0.0.x), with its cookies, over HTTPS to nginx."""

    def __init__(self, stack: Stack, address: str):
        self.stack, self.address, self.cookies = stack, address, {}
        self.tls = ssl.create_default_context(cafile=str(stack.ca_file))

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None,
                body: bytes | None = None, tls: ssl.SSLContext | None = None) -> Answer:
        marker = f"test-{uuid.uuid4().hex}"
        conn = http.client.HTTPSConnection("127.0.0.1", self.stack.https_port, context=tls or self.tls,
                                           timeout=60, source_address=(self.address, 0))
        sent = {"User-Agent": marker, "Connection": "close", **(headers or {})}
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if method == "POST":  # Flask-WTF checks the Referer of HTTPS posts against the host
            sent.setdefault("Referer", f"https://127.0.0.1:{self.stack.https_port}{path}")
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body, sent)
            answer = conn.getresponse()
            text = answer.read().decode(errors="replace")
        finally:
            conn.close()
        jar = SimpleCookie()
        for header in answer.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        return Answer(answer.status, answer.headers, text, marker)

    def token(self, path: str) -> str:
        page = self.request("GET", path)
        assert page.status == 200, (path, page.status, page.text[:300])
        return TOKEN.search(page.text)[1]

    def sign_in(self, username: str, password: str) -> Answer:
        return self.request("POST", "/login", {"username": username, "password": password,
                                               "csrf_token": self.token("/login")})


def database_urls() -> tuple[str, str]:
    url = os.environ.get("TEST_DATABASE_URL")
    require(bool(url), "TEST_DATABASE_URL", "e.g. postgresql://postgres@127.0.0.1:5432/test")
    parts = urlsplit(url)
    name = f"kodomat_deploy_{uuid.uuid4().hex[:10]}"
    return url, urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require(os.path.exists(NGINX) or bool(shutil.which("nginx")), "nginx", "apt-get install nginx-light")
    require(importlib.util.find_spec("gunicorn") is not None, "gunicorn", "pip install -e '.[deploy]'")
    kiosk_command = Path(sys.prefix) / "bin" / "kiosk"
    require(kiosk_command.exists(), "the `kiosk` command in this venv", "pip install -e .")
    from sqlalchemy import create_engine, text

    admin_url, url = database_urls()
    name = urlsplit(url).path.lstrip("/")
    admin = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    processes: list[subprocess.Popen] = []
    try:
        yield _stack(tmp_path_factory.mktemp("deploy"), url, processes)
    finally:
        for process in reversed(processes):
            stop_group(process)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _stack(folder: Path, url: str, processes: list) -> Stack:
    instance = folder / "var-lib-kodomat"
    instance.mkdir()
    # deploy/config.py, unchanged: the instance's config.py.
    shutil.copy(DEPLOY / "config.py", instance / "config.py")
    env_file = folder / "kodomat.env"
    env_file.write_text(substituted((DEPLOY / "kodomat.env").read_text(), {
        "postgresql://kodomat@/kodomat?host=/var/run/postgresql": url,
        "KIOSK_INSTANCE=/var/lib/kodomat": f"KIOSK_INSTANCE={instance}"}))
    # What systemd gives the service: kodomat.env and the unit's Environment= lines.
    service_env = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
    for line in env_file.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            service_env[key] = value
    stack = Stack(folder, {**service_env, "KODOMAT_ENV": str(env_file), "KODOMAT_HOME": str(PROJECT),
                           "KODOMAT_VENV": sys.prefix, "KODOMAT_USER": pwd.getpwuid(os.geteuid()).pw_name},
                  processes=processes)
    stack.kodomat("db", "upgrade")
    _start_gunicorn(stack, service_env)
    _start_nginx(stack)
    return stack


def _start_gunicorn(stack: Stack, env: dict) -> None:
    """deploy/gunicorn.conf.py as kodomat.service runs it (WorkingDirectory: the
    project, the environment of kodomat.env); only the address is given: a socket
    handed over, so no other process can take its port meanwhile."""
    listener = socket.create_server(("127.0.0.1", 0))
    stack.gunicorn_port = listener.getsockname()[1]
    stack.gunicorn_log = stack.folder / "gunicorn.log"
    with stack.gunicorn_log.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(DEPLOY / "gunicorn.conf.py"),
             "--bind", f"fd://{listener.fileno()}"],
            cwd=PROJECT, env=env, pass_fds=(listener.fileno(),), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    listener.close()
    stack.processes.append(process)
    deadline = time.monotonic() + 60
    while len(re.findall(r"Kodomat ready in worker \d+", stack.gunicorn_log.read_text(errors="replace"))) < 2:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"gunicorn did not start both workers: {stack.gunicorn_log.read_text()[-3000:]}")
        time.sleep(0.1)


# Debian's /etc/nginx/nginx.conf around the site, with the lines that could weaken
# it (TLS 1.0/1.1 allowed at the http level): the site's own settings must win.
NGINX_MAIN = """
{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log {folder}/nginx-access.log;
    gzip on;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/kodomat.conf;
}}
"""


def _start_nginx(stack: Stack) -> None:
    folder = stack.folder
    stack.ca_file = self_signed(folder / "tls")
    for attempt in range(3):  # a free port may be taken between the probe and nginx
        stack.http_port, stack.https_port = free_port(), free_port()
        (folder / "kodomat.conf").write_text(substituted((DEPLOY / "nginx" / "kodomat.conf").read_text(), {
            "listen 80;": f"listen 127.0.0.1:{stack.http_port};",
            "listen [::]:80;": "",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{stack.https_port} ssl http2;",
            "listen [::]:443 ssl http2;": "",
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{stack.gunicorn_port};",
            "/etc/letsencrypt/live/kodomat/": f"{folder}/tls/",
            "/srv/kodomat/": f"{PROJECT}/",
            "/var/log/nginx/kodomat.access.log": f"{folder}/kodomat-access.log"}))
        # As root (CI), the workers stay root: the test's files are the test user's.
        user = "user root;" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(NGINX_MAIN.format(folder=folder, user=user))
        binary = NGINX if os.path.exists(NGINX) else shutil.which("nginx")
        checked = subprocess.run([binary, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        log = (folder / "nginx.out").open("w")
        process = subprocess.Popen([binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", stack.https_port), timeout=1).close()
                stack.processes.append(process)
                return
            except OSError:
                time.sleep(0.05)
        stop_group(process)
    pytest.fail(f"nginx did not start: {(folder / 'nginx.out').read_text()}"
                f"{(folder / 'nginx-error.log').read_text() if (folder / 'nginx-error.log').exists() else ''}")


# -- through nginx -----------------------------------------------------------------

def test_https_health_check_through_nginx_and_plain_http_is_sent_to_https(stack):
    health = stack.client().request("GET", "/healthz")
    assert health.status == 200, health.text[:300]

    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
    conn.request("GET", "/kiosk/?lang=en", headers={"Host": "kody.example.pl"})
    plain = conn.getresponse()
    conn.close()
    assert plain.status == 301
    assert plain.headers["Location"] == "https://kody.example.pl/kiosk/?lang=en"
    assert "nginx/" not in (plain.headers["Server"] or ""), "server_tokens off: no version shown"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_only_tls_1_2_and_1_3_are_spoken(stack):
    client = stack.client()
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=str(stack.ca_file))
        context.minimum_version = context.maximum_version = version
        assert client.request("GET", "/healthz", tls=context).status == 200
    old = ssl.create_default_context(cafile=str(stack.ca_file))
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    # This client can speak TLS 1.1 (at security level 0); the server refuses it
    # (ssl_protocols, and OpenSSL 3's own default security level).
    with pytest.raises(ssl.SSLError):
        client.request("GET", "/healthz", tls=old)


def test_every_security_header_once_on_pages(stack):
    client = stack.client()
    for path, status in (("/login", 200), ("/kiosk/", 403), ("/no-such-page", 404)):
        answer = client.request("GET", path)
        assert answer.status == status, (path, answer.status)
        for name in (*APP_HEADERS, HSTS):
            assert len(answer.headers.get_all(name) or []) == 1, (path, name, answer.headers.get_all(name))
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers[HSTS] == "max-age=31536000"
        # The session cookie is Secure (deploy/config.py) and HttpOnly.
        cookie = " ".join(answer.headers.get_all("Set-Cookie") or [])
        if "session=" in cookie:
            assert "Secure" in cookie and "HttpOnly" in cookie


def test_static_files_come_from_nginx_with_cache_headers(stack):
    client = stack.client()
    login = client.request("GET", "/login")
    versioned = re.search(r'href="(/static/kodomat\.css\?v=[0-9a-f]+)"', login.text)[1]
    vendored = re.search(r'src="(/static/vendor/htmx-[^"]+\.js)"', login.text)[1]

    for path, cache in ((versioned, "public, max-age=31536000, immutable"),
                        (vendored, "public, max-age=31536000, immutable"),
                        ("/static/kodomat.css", "no-cache")):
        answer = client.request("GET", path, headers={"Accept-Encoding": "identity"})
        assert answer.status == 200, path
        assert answer.text == (PROJECT / path.split("?")[0].lstrip("/")).read_text(), path
        assert answer.headers.get_all("Cache-Control") == [cache], path
        assert answer.headers.get_all("X-Content-Type-Options") == ["nosniff"], path
        assert answer.headers.get_all(HSTS) == ["max-age=31536000"], path
        assert "X-Request-Id" not in answer.headers, f"gunicorn served {path}"  # the app's header
    # The classic alias slip (/static../) reaches no file outside static/.
    assert "create_app" not in client.request("GET", "/static../wsgi.py").text


def _enrolled_kiosk(stack: Stack, address: str) -> tuple[Client, str]:
    """A library with this month's pool, and a kiosk enrolled through its link."""
    slug = f"lib{uuid.uuid4().hex[:6]}"
    stack.kodomat("add-library", slug, "--name", "Biblioteka Testowa")
    month = dt.datetime.now(ZoneInfo("Europe/Warsaw")).strftime("%Y-%m")
    pool = stack.folder / f"{slug}.csv"
    pool.write_text("Kod\n" + "".join(f"{slug.upper()}{n:04d}\n" for n in range(40)))
    stack.kodomat("import-codes", str(pool), "--library", slug, "--month", month)
    printed = stack.kodomat("enroll-kiosk", "--library", slug, "--name", "Hol")
    link = re.search(r"https://\S+/kiosk/enrol/\S+", printed)[0]
    assert link.startswith("https://kody.example.pl/"), "KIOSK_BASE_URL of deploy/config.py"
    kiosk = stack.client(address)
    path = urlsplit(link).path
    enrolled = kiosk.request("POST", path, {"csrf_token": kiosk.token(path)})
    assert enrolled.status == 302, enrolled.text[:300]
    return kiosk, kiosk.token("/kiosk/")


def _scan(kiosk: Client, csrf: str, card: str) -> Answer:
    return kiosk.request("POST", "/kiosk/scan", {"card": card, "entry": "scan", "lang": "pl", "csrf_token": csrf},
                         headers={"HX-Request": "true"})


def test_a_kiosk_issues_and_its_pause_holds_on_both_workers(stack):
    from kiosk.domain.kiosks import CODES_SHOWN

    kiosk, csrf = _enrolled_kiosk(stack, "127.0.0.4")
    issued = [_scan(kiosk, csrf, f"9{n:03d}{uuid.uuid4().int % 10**8:08d}") for n in range(CODES_SHOWN.count)]
    assert [a.status for a in issued] == [200] * CODES_SHOWN.count
    assert all(SLIP_CODE.search(a.text) for a in issued), [a.text[:300] for a in issued if not SLIP_CODE.search(a.text)]
    counted_by = {stack.pid_of(a) for a in issued}

    # Paused now, whichever worker answers: scan on until the worker that counted
    # none of the codes (if one did not) has answered too.
    paused_by: set[int] = set()
    for n in range(60):
        answer = _scan(kiosk, csrf, f"8{n:03d}{uuid.uuid4().int % 10**8:08d}")
        assert answer.status == 200 and PAUSED in answer.text and not SLIP_CODE.search(answer.text), answer.text[:300]
        paused_by.add(stack.pid_of(answer))
        if len(counted_by | paused_by) == 2 and (len(counted_by) == 2 or paused_by - counted_by):
            break
    workers = counted_by | paused_by
    assert len(workers) == 2, f"every request went to worker {workers}: the sharing was not shown"
    assert len(counted_by) == 2 or paused_by - counted_by


def test_each_client_counts_from_its_own_address_and_the_lock_holds_on_both_workers(stack):
    printed = stack.kodomat("create-user", "koordynator", "--role", "consortium_admin")
    password = re.search(r"Hasło .*: (\S+)", printed)[1]
    a, b = stack.client("127.0.0.2"), stack.client("127.0.0.3")

    failed = [a.sign_in("koordynator", "not the password") for _ in range(5)]
    assert [f.status for f in failed] == [401] * 5
    failed_at = {stack.pid_of(f) for f in failed}
    locked_at: set[int] = set()
    for _ in range(60):  # locked, whichever worker answers
        locked = a.sign_in("koordynator", password)
        assert locked.status == 401 and LOCKED in locked.text, locked.text[:300]
        locked_at.add(stack.pid_of(locked))
        if len(failed_at | locked_at) == 2 and (len(failed_at) == 2 or locked_at - failed_at):
            break
    assert len(failed_at | locked_at) == 2, "every request went to one worker: the sharing was not shown"
    # A claims another address: nginx puts the real one in X-Forwarded-For.
    forged = a.request("POST", "/login", {"username": "koordynator", "password": password,
                                          "csrf_token": a.token("/login")},
                       headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"})
    assert forged.status == 401 and LOCKED in forged.text

    # B, at another address, signs in with the same name at once.
    signed_in = b.sign_in("koordynator", password)
    assert signed_in.status == 302, signed_in.text[:300]
    assert signed_in.headers["Location"].endswith("/account/password")  # a new account's first sign-in


def test_a_form_posted_over_http2_passes_the_csrf_check(stack, tmp_path):
    """Browsers speak HTTP/2 to nginx, which has no Host header but :authority:
    X-Forwarded-Host must still carry the host and port the Referer names."""
    curl = require_command("curl", "curl")
    jar, base = tmp_path / "cookies", f"https://127.0.0.1:{stack.https_port}"
    common = [curl, "--silent", "--http2", "--cacert", str(stack.ca_file), "-b", str(jar), "-c", str(jar),
              "--interface", "127.0.0.5", "-w", "\\n%{http_version} %{http_code}"]
    page = subprocess.run([*common, f"{base}/login"], capture_output=True, text=True, timeout=30).stdout
    assert page.endswith("2 200"), page[-200:]
    posted = subprocess.run([*common, "-H", f"Referer: {base}/login", "--data-urlencode", "username=nikt",
                             "--data-urlencode", "password=wrong", "--data-urlencode",
                             f"csrf_token={TOKEN.search(page)[1]}", f"{base}/login"],
                            capture_output=True, text=True, timeout=30).stdout
    assert posted.endswith("2 401") and "Nieprawidłowa nazwa użytkownika lub hasło" in posted, posted[-300:]


def test_bodies_past_the_limits_are_refused_with_413(stack):
    client = stack.client()
    token = client.token("/login")
    # Past the app's 16 MiB but within nginx's 17 MiB: the app's own page says why.
    app_refused = client.request("POST", "/login", body=b"a=" + b"x" * (16 * MIB + 100 * 1024),
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "X-CSRFToken": token})
    assert app_refused.status == 413
    assert "Plik jest za duży" in app_refused.text
    # Past nginx's: refused before gunicorn sees it.
    nginx_refused = client.request("POST", "/login", body=b"a=" + b"x" * (18 * MIB),
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert nginx_refused.status == 413
    assert "X-Request-Id" not in nginx_refused.headers  # the app's header: gunicorn never saw it
    # The server is well after both.
    assert client.request("GET", "/healthz").status == 200


# -- the files checked by their own tools -------------------------------------------

def test_postgresql_settings_are_accepted_by_postgresql():
    """deploy/postgresql.conf included in a fresh cluster's postgresql.conf, as
    Debian's conf.d/ includes it: the server's own parser reads it (`postgres -C`)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if shutil.which("pg_config"):
        candidates.insert(0, Path(subprocess.run(["pg_config", "--bindir"], capture_output=True,
                                                 text=True).stdout.strip()))
    bindir = next((b for b in candidates if (b / "initdb").exists()), None)
    require(bindir is not None, "PostgreSQL's initdb", "apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="kodomat-pg-"))
    run_as: list[str] = []
    try:
        shutil.copy(DEPLOY / "postgresql.conf", folder / "kodomat.conf")
        if os.geteuid() == 0:  # initdb refuses root: the cluster is the postgres user's
            run_as = ["runuser", "-u", "postgres", "--"]
            os.chown(folder, pwd.getpwnam("postgres").pw_uid, -1)
            (folder / "kodomat.conf").chmod(0o644)
        data = folder / "cluster"
        made = subprocess.run([*run_as, str(bindir / "initdb"), "-N", "-A", "trust", "-D", str(data)],
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"include '{folder / 'kodomat.conf'}'\n")
        values = {}
        for name in ("max_connections", "shared_buffers", "idle_in_transaction_session_timeout",
                     "listen_addresses", "synchronous_commit"):
            shown = subprocess.run([*run_as, str(bindir / "postgres"), "-D", str(data), "-C", name],
                                   capture_output=True, text=True, timeout=60)
            assert shown.returncode == 0, shown.stderr
            values[name] = shown.stdout.strip()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert values == {"max_connections": "80", "shared_buffers": "131072",  # in 8 kB pages: 1 GB
                      "idle_in_transaction_session_timeout": "60000", "listen_addresses": "localhost",
                      "synchronous_commit": "on"}


def test_systemd_units_are_valid(tmp_path):
    analyze = require_command("systemd-analyze", "systemd")
    units = tmp_path / "units"
    units.mkdir()
    gunicorn = Path(sys.prefix) / "bin" / "gunicorn"
    kiosk = Path(sys.prefix) / "bin" / "kiosk"
    for name in ("kodomat.service", "kodomat-backup.service", "kodomat-backup.timer"):
        text = (DEPLOY / name).read_text()
        # Only the paths of this machine's venv and checkout: what systemd-analyze
        # checks exists.
        text = text.replace("/srv/kodomat/.venv/bin/gunicorn", str(gunicorn)).replace(
            "/srv/kodomat/.venv/bin/kiosk", str(kiosk)).replace("/srv/kodomat", str(PROJECT))
        (units / name).write_text(text)
    checked = subprocess.run([analyze, "verify", *(str(units / n) for n in sorted(os.listdir(units)))],
                             capture_output=True, text=True, timeout=60)
    complaints = [line for line in (checked.stdout + checked.stderr).splitlines()
                  if line.strip() and "kodomat" in line]
    assert checked.returncode == 0 and not complaints, checked.stdout + checked.stderr


def test_the_guide_names_only_files_and_commands_that_exist():
    """docs/deploy.md copies files from deploy/ and runs `kodomat COMMAND`: each
    of them must be there, or the IT person's afternoon stops at that line."""
    from kiosk.cli import COMMANDS

    guide = (PROJECT / "docs" / "deploy.md").read_text()
    named = set(re.findall(r"/srv/kodomat/(deploy/[\w./-]+\w)", guide)) | set(re.findall(r"`(deploy/[\w./-]+\w)`", guide))
    assert {"deploy/kodomat.service", "deploy/nginx/kodomat.conf", "deploy/postgresql.conf"} <= named
    assert [path for path in sorted(named) if not (PROJECT / path).exists()] == []
    commands = set(re.findall(r"^kodomat ([a-z][a-z-]+)", guide, re.MULTILINE)) | set(
        re.findall(r"`kodomat ([a-z][a-z-]+)", guide))
    assert {"db", "create-user", "pools", "add-library", "enroll-kiosk", "send-mail"} <= commands
    assert sorted(commands - set(COMMANDS)) == []
