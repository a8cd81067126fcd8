"""egressd's API authentication in a lab: the first-start password, login sessions with their
cookie and CSRF token, API tokens, and the rate limit of failed logins.

    gw:isp1 192.0.2.1/24 ------ isp1:eth0 192.0.2.2/24

egressd runs in gw with one uplink over isp1 and its API on gw's loopback and on
192.0.2.1:8090, so that isp1 is a second client with an address of its own; its UNIX socket
(root: admin) and state directory are its own, in the lab's run directory.
"""

import base64
import hashlib
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from apiclient import ApiClient
from egress_server import EgressServer
from egressd import Egressd
from lab import wait_for
from test_api import self_signed

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

SPEC = """
    gw:isp1 192.0.2.1/24 -- isp1:eth0 192.0.2.2/24
"""

CONF = """
[uplink isp1]
interface = isp1
gateway = 192.0.2.2

[api]
listen = 127.0.0.1:8090 192.0.2.1:8090
"""

TCP = "http://127.0.0.1:8090"
FIRST = r"api: first start: the password for admin is (\S+)"
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def gw(lab):
    lab.apply(SPEC)
    return lab["gw"]


def start(gw, egressd_bin, conf=CONF, **kw):
    """egressd with its API listening (they open before the ready line)."""
    return Egressd.start(gw, egressd_bin, conf, **kw)


def first_password(d):
    return d.wait_log(FIRST).group(1)


def built(c):
    """Is source file c in the build: named outside a comment in its folder's meson.build?
    (A module's part lands with its line commented until the parts it needs are in.)"""
    meson = c.parent / "meson.build"
    text = "\n".join(line.split("#")[0] for line in meson.read_text().splitlines())
    return "'%s'" % c.name in text


def routes(program="egressd"):
    """Every (method, path, access) of the API's route tables in the source: the API
    server's own and authentication's (src/api), then egressd's (the daemon's and the
    modules') or egress-server's (src/server)."""
    rx = re.compile(r'\{[^{}]*?EVHTTP_REQ_(\w+)[^{}]*?"(/[^"]*)"[^{}]*?API_(OPEN|READ|ADMIN)'
                    r'[^{}]*\}', re.S)
    found = set()
    for c in SRC.rglob("*.c"):
        part = c.relative_to(SRC).parts[0]
        if part != "api" and (part == "server") != (program == "egress-server"):
            continue
        if not built(c):
            continue
        for m, path, access in rx.findall(c.read_text()):
            found.add((m, re.sub(r"\{[^}]*\}", "x", path), access.lower()))
    assert len(found) >= 6, found  # at least authentication's own
    return sorted(found)


def scrypt_hash(password, ln=10):
    """A hash as egressctl passwd makes it, by Python's hashlib (the PHC string format)."""
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=1 << ln, r=8, p=1, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
    return "$scrypt$ln=%d,r=8,p=1$%s$%s" % (ln, b64(salt), b64(key))


def test_first_start_password(gw, egressd_bin):
    """The first start makes a password, logs it once and keeps only its scrypt hash (0600);
    it logs in.  A restart keeps it and logs no password."""
    d = start(gw, egressd_bin)
    password = first_password(d)
    assert len(password) >= 20
    kept = d.state_dir / "password_hash"
    st = kept.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    text = kept.read_text()
    assert text.startswith("$scrypt$ln=") and password not in text
    assert d.log().count(password) == 1

    api = ApiClient.tcp(gw, TCP)
    r = api.login("not " + password)
    assert r.status == 401, r
    assert "egress_session" not in r.cookies
    r = api.login(password)
    assert r.status == 200, r
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP
    assert re.search(r"Max-Age=\d+", cookie)
    body = r.json()
    assert body["who"] == "admin" and body["access"] == "admin" and body["csrf"]
    r = api.get("/api/session")
    assert r.status == 200, r
    assert r.json()["csrf"] == body["csrf"] and r.json()["who"] == "admin"
    assert d.stop() == 0
    d.assert_clean()

    d = start(gw, egressd_bin)
    assert not re.search(FIRST, d.log())
    assert kept.read_text() == text
    api = ApiClient.tcp(gw, TCP)
    assert api.login(password).status == 200
    assert api.get("/api/session").status == 200
    assert d.stop() == 0
    d.assert_clean()


def test_configured_password_hash(gw, egressd_bin):
    """[api] password_hash (egressctl passwd's) wins: its password logs in, no password is
    made and nothing is written."""
    conf = CONF + "password_hash = %s\n" % scrypt_hash("correct horse")
    d = start(gw, egressd_bin, conf)
    api = ApiClient.tcp(gw, TCP)
    assert api.login("correct horse").status == 200
    assert api.login("correct horse!").status == 401
    assert not re.search(FIRST, d.log())
    assert not (d.state_dir / "password_hash").exists()
    assert d.stop() == 0
    d.assert_clean()


def test_kept_hash_damaged_stops_egressd(gw, egressd_bin):
    """A damaged password_hash file in state_dir is never replaced by a new password:
    egressd refuses to start and says which file and what to do."""
    d = start(gw, egressd_bin)
    first_password(d)
    assert d.stop() == 0
    kept = d.state_dir / "password_hash"
    kept.write_text("$scrypt$ln=15,r=8,p=1$nope\n")
    d = Egressd.start(gw, egressd_bin, CONF, ready=False)
    wait_for(lambda: not d.alive(), what="egressd to exit")
    assert d.proc.returncode != 0
    log = d.log()
    assert str(kept) in log and "SALT must be" in log and "delete the file" in log, log
    assert not re.search(FIRST, log)
    assert kept.read_text() == "$scrypt$ln=15,r=8,p=1$nope\n"


def test_reload_with_a_new_hash_ends_sessions(gw, egressd_bin):
    """A reload that sets password_hash: the new password logs in, the old one no longer,
    and the sessions of the old one end.  A reload that changes nothing keeps them."""
    d = start(gw, egressd_bin)
    old = first_password(d)
    api = ApiClient.tcp(gw, TCP)
    assert api.login(old).status == 200
    d.set_mark()
    d.reload()
    d.wait_log(r"reload \d+:")
    assert api.get("/api/session").status == 200
    d.write_conf(CONF + "password_hash = %s\n" % scrypt_hash("new one"))
    d.set_mark()
    d.reload()
    d.wait_log(r"reload \d+:")
    assert api.get("/api/session").status == 401
    fresh = ApiClient.tcp(gw, TCP)
    assert fresh.login(old).status == 401
    assert fresh.login("new one").status == 200
    assert d.stop() == 0
    d.assert_clean()


def test_bad_password_hash_is_refused(gw, egressd_bin, tmp_path):
    """A malformed password_hash is a config error that names the key and what was
    expected; egressd -n says so and exits non-zero."""
    conf = tmp_path / "bad.conf"
    conf.write_text(CONF + "password_hash = admin\n")
    p = gw.run([str(egressd_bin), "-n", "-c", str(conf)], check=False)
    assert p.returncode != 0
    assert "password_hash" in p.stderr and "expected $scrypt$" in p.stderr, p.stderr


def test_without_credentials_every_route_is_401(gw, egressd_bin):
    """Every route that is not open answers 401 to a caller with no or bad credentials, over
    TCP, before anything else is looked at; the open ones answer."""
    d = start(gw, egressd_bin)
    first_password(d)
    anon = ApiClient.tcp(gw, TCP)
    forged = ApiClient.tcp(gw, TCP, token="A" * 43, cookie={"egress_session": "B" * 43})
    checked = limited = 0
    for method, path, access in routes():
        if access == "open":
            continue
        for api in (anon, forged):
            r = api.request(method, path, body={} if method in ("POST", "PATCH", "PUT")
                            else None)
            # a forged token counts as a failed login: past five, 429 before any lookup
            # (one more try each 12 s, so a slow run sees a 401 now and then)
            if api is forged and r.status == 429 and checked >= 5:
                limited += 1
                assert r.headers.get("retry-after"), r
            else:
                assert r.status == 401, (method, path, r)
            assert "error" in r.json()
        checked += 1
    assert checked >= 5
    assert limited >= (checked - 5) // 2, (limited, checked)
    assert anon.get("/healthz").status in (200, 503)
    assert anon.post("/api/login", {"username": "admin"}).status == 400
    assert d.stop() == 0
    d.assert_clean()


def test_tokens(gw, egressd_bin):
    """Tokens are made and deleted by an admin (here root over the UNIX socket); the secret
    is shown once and only its hash is kept; a read-only token reads and gets 403 on every
    state change and on the token routes; an admin token may; tokens survive a restart."""
    d = start(gw, egressd_bin)
    first_password(d)
    admin = ApiClient.unix(d)
    r = admin.post("/api/tokens", {"name": "ci", "access": "read"})
    assert r.status == 201, r
    ro = r.json()
    assert ro["name"] == "ci" and ro["access"] == "read" and len(ro["token"]) >= 40
    r = admin.post("/api/tokens", {"name": "deploy", "access": "admin"})
    assert r.status == 201, r
    rw = r.json()
    assert admin.post("/api/tokens", {"name": "ci", "access": "admin"}).status == 409
    r = admin.post("/api/tokens", {"name": "bad name", "access": "read"})
    assert r.status == 400 and r.json()["field"] == "name", r
    r = admin.post("/api/tokens", {"name": "x", "access": "root"})
    assert r.status == 400 and r.json()["field"] == "access", r
    r = admin.post("/api/tokens", {"name": "x", "access": "read", "expires": 1})
    assert r.status == 400 and r.json()["field"] == "expires", r

    r = admin.get("/api/tokens")
    assert r.status == 200, r
    listed = {t["name"]: t for t in r.json()["tokens"]}
    assert set(listed) == {"ci", "deploy"}
    assert "token" not in listed["ci"] and listed["ci"]["access"] == "read"
    kept = d.state_dir / "tokens.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert ro["token"] not in kept.read_text() and rw["token"] not in kept.read_text()

    before = r_tokens(admin)
    reader = ApiClient.tcp(gw, TCP, token=ro["token"])
    r = reader.get("/api/session")
    assert r.status == 200 and r.json() == {"who": "token:ci", "access": "read"}, r
    assert reader.get("/api/tokens").status == 403
    for method, path, access in routes():
        if access == "open":
            continue
        if method in ("GET", "HEAD") and access == "read":
            continue
        if (method, path) == ("POST", "/api/logout"):
            continue  # read access: a reader may end its own session
        r = reader.request(method, path, body={} if method in ("POST", "PATCH", "PUT")
                           else None)
        assert r.status == 403, (method, path, r)
    assert r_tokens(admin) == before  # nothing changed

    writer = ApiClient.tcp(gw, TCP, token=rw["token"])
    r = writer.post("/api/tokens", {"name": "tmp", "access": "read"})
    assert r.status == 201, r
    assert writer.delete("/api/tokens/tmp").status == 200
    assert writer.delete("/api/tokens/tmp").status == 404
    changes = [(e["who"], e["message"]) for e in admin.get("/api/events").json()["events"]
               if e["kind"] == "change" and "token" in e["message"]]
    assert changes == [("uid:0", "token ci (read) made"), ("uid:0", "token deploy (admin) made"),
                       ("token:deploy", "token tmp (read) made"),
                       ("token:deploy", "token tmp deleted")], changes
    assert d.stop() == 0
    d.assert_clean()

    # a restart keeps them
    d = start(gw, egressd_bin)
    assert ApiClient.tcp(gw, TCP, token=ro["token"]).get("/api/session").status == 200
    assert ApiClient.tcp(gw, TCP, token=rw["token"]).get("/api/tokens").status == 200
    assert ApiClient.unix(d).delete("/api/tokens/ci").status == 200
    assert ApiClient.tcp(gw, TCP, token=ro["token"]).get("/api/session").status == 401
    assert d.stop() == 0
    d.assert_clean()


def r_tokens(api):
    return api.get("/api/tokens").json()["tokens"]


def test_session_state_changes_need_the_csrf_token(gw, egressd_bin):
    """A cookie alone does not change state: without X-CSRF-Token, or with another one,
    403 and nothing changes; with the session's token it does.  Reads need no token.
    Logout ends the session."""
    d = start(gw, egressd_bin)
    password = first_password(d)
    api = ApiClient.tcp(gw, TCP)
    assert api.login(password).status == 200
    csrf, api.csrf = api.csrf, None
    r = api.post("/api/tokens", {"name": "ci", "access": "read"})
    assert r.status == 403, r
    assert "X-CSRF-Token" in r.json()["error"]
    api.csrf = "A" * len(csrf)
    assert api.post("/api/tokens", {"name": "ci", "access": "read"}).status == 403
    assert api.post("/api/logout").status == 403
    assert r_tokens(ApiClient.unix(d)) == []
    assert api.get("/api/tokens").status == 200  # a read needs no token

    api.csrf = csrf
    assert api.post("/api/tokens", {"name": "ci", "access": "read"}).status == 201
    r = api.post("/api/logout")
    assert r.status == 200, r
    assert "Max-Age=0" in r.headers["set-cookie"]
    assert api.get("/api/session").status == 401
    assert api.get("/api/tokens").status == 401
    assert d.stop() == 0
    d.assert_clean()


def test_failed_logins_are_rate_limited(lab, gw, egressd_bin):
    """Five wrong passwords from one address, then 429 with Retry-After, even for the right
    password; another address still logs in.  egress_api_logins_total counts each."""
    d = start(gw, egressd_bin, CONF + "metrics = yes\n")
    password = first_password(d)
    api = ApiClient.tcp(gw, TCP)
    for _ in range(5):
        assert api.login("wrong").status == 401
    r = api.login(password)
    assert r.status == 429, r
    assert 1 <= int(r.headers["retry-after"]) <= 12
    assert "egress_session" not in r.cookies
    other = ApiClient.tcp(lab["isp1"], "http://192.0.2.1:8090")
    assert other.login(password).status == 200
    events = [e for e in ApiClient.unix(d).get("/api/events").json()["events"]
              if e["kind"] == "login"]
    assert [(e["who"], e["message"]) for e in events] == \
        [("anonymous", "failed login from 127.0.0.1")] * 5 + \
        [("admin", "admin logged in from 192.0.2.2")], events
    text = ApiClient.unix(d).get("/metrics").text
    for result, n in (("success", 1), ("failure", 5), ("rate_limited", 1)):
        assert 'egress_api_logins_total{result="%s"} %d\n' % (result, n) in text, text
    assert d.stop() == 0
    d.assert_clean()


def test_secure_cookie_under_tls(gw, egressd_bin):
    """Under TLS the session cookie is Secure (a browser sends it over HTTPS only), the
    cookie that ends it too."""
    cert, key = self_signed(gw)
    d = start(gw, egressd_bin, CONF.replace("listen = 127.0.0.1:8090 192.0.2.1:8090",
                                            "listen = 127.0.0.1:8443") +
              "tls_cert = %s\ntls_key = %s\n" % (cert, key))
    password = first_password(d)
    api = ApiClient.tcp(gw, "https://127.0.0.1:8443", cacert=cert)
    r = api.login(password)
    assert r.status == 200, r
    assert "; Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    r = api.post("/api/logout")
    assert r.status == 200, r
    assert "; Secure" in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert d.stop() == 0
    d.assert_clean()


def test_every_server_route_needs_credentials(tmp_path, server_bin):
    """egress-server's routes, read from src/server like egressd's above: 401 without
    credentials or with forged ones, 403 for a read-only token on every state change, and
    nothing changed by either."""
    srv = EgressServer.start_local(tmp_path, server_bin)
    try:
        reader = ApiClient.tcp(srv.node, srv.url, token=srv.token("ro", access="read"))
        anon = ApiClient.tcp(srv.node, srv.url)
        forged = ApiClient.tcp(srv.node, srv.url, token="A" * 43,
                               cookie={"egress_session": "B" * 43})
        found = routes("egress-server")
        assert ("POST", "/api/entries", "admin") in found, found
        assert ("GET", "/api/entries", "read") in found, found
        checked = 0
        for method, path, access in found:
            if access == "open":
                continue
            body = {} if method in ("POST", "PATCH", "PUT") else None
            r = anon.request(method, path, body=body)
            assert r.status == 401, (method, path, r)
            if not (method in ("GET", "HEAD") and access == "read") and \
                    (method, path) != ("POST", "/api/logout"):
                r = reader.request(method, path, body=body)
                assert r.status == 403, (method, path, r)
            checked += 1
        assert checked >= 8
        # a forged token counts as a failed login: past five, 429 before any lookup (and
        # then the reader from the same address waits too, as after five wrong passwords)
        # (one more try each 12 s, so a slow run sees a 401 now and then)
        statuses = [forged.request(method, path, body={} if method in ("POST", "PATCH", "PUT")
                                   else None).status
                    for method, path, access in found if access != "open"]
        assert statuses[:5] == [401] * 5, statuses
        assert set(statuses[5:]) <= {401, 429} and \
            statuses[5:].count(429) >= len(statuses[5:]) // 2, statuses
        assert srv.api().get("/api/entries").json()["entries"] == []
    finally:
        srv.stop()


def test_server_secrets_masked_and_kept(tmp_path, server_bin):
    """egress-server -n masks its secrets ([api] password_hash whole, a PostgreSQL
    conninfo's password inside it); a configuration written back so and reloaded keeps the
    running secrets: the password still logs in and its session lives on."""
    h = scrypt_hash("correct horse")
    conf = tmp_path / "check.conf"
    conf.write_text("[api]\npassword_hash = %s\n\n[store]\nbackend = postgresql\n"
                    "conninfo = host=db1 dbname=egress user=egress password=s3cret\n" % h)
    r = subprocess.run([str(server_bin), "-n", "-c", str(conf)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in r.stdout and h not in r.stdout, r.stdout
    assert "password_hash = ********\n" in r.stdout, r.stdout
    conninfo = [line for line in r.stdout.splitlines() if line.startswith("conninfo")]
    assert len(conninfo) == 1 and "password=********" in conninfo[0] and \
        "host=db1" in conninfo[0], conninfo
    # the same output at a start, with nothing running: refused, the key named
    conf.write_text(r.stdout)
    r = subprocess.run([str(server_bin), "-n", "-c", str(conf)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "conninfo" in r.stderr and "password_hash" in r.stderr, \
        r.stderr
    srv = EgressServer.start_local(tmp_path, server_bin, settings={"api": {"password_hash": h}})
    try:
        api = srv.tcp()
        assert api.login("correct horse").status == 200
        srv.reload({"api": {"password_hash": "********"}})
        srv.wait_log(r"reload 1: replica")
        assert "reload failed" not in srv.log()
        assert api.get("/api/session").status == 200  # the session lives on
        assert srv.tcp().login("correct horse").status == 200
    finally:
        srv.stop()
