"""egressctl: its command line, its exit codes, and every subcommand against egressd.

Without egressd: bad usage (2), an unreachable egressd (3), `config check --local`, `passwd`
(the hash checked with Python's own scrypt), and the client's side of the protocol against a
stand-in server on a UNIX socket in the test's folder: a refusal (1), 401/403 (4), a reply
that is not egressd's (3), and an event stream followed with -f.

    gw:isp1 192.0.2.1/24 ------ isp1:eth0 192.0.2.2/24
    gw:isp2 198.51.100.1/24 --- isp2:eth0 198.51.100.2/24

With egressd in gw (its API on a UNIX socket in the lab's run folder): every subcommand,
--json output that parses, and the exit codes for success, refusal and bad usage.
"""

import base64
import hashlib
import http.server
import json
import os
import pty
import select
import signal
import socket
import socketserver
import subprocess
import threading
import time

import pytest

CONF_OK = """
[global]
log_level = info

[uplink isp1]
interface = isp1
gateway = 192.0.2.2
"""

CONF_BAD = """
[global]
log_level = info

[uplink isp1]
interface = isp1
weight = 0
"""


@pytest.fixture(scope="module")
def egressctl(request):
    from conftest import egressd_path
    path = egressd_path(request.config).parent / "egressctl"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("egressctl binary not found at %s (build it)" % path, pytrace=False)
    return path


def ctl(binary, *args, sock=None, input=None, env=None, timeout=20):
    argv = [str(binary)]
    if sock is not None:
        argv += ["--socket", str(sock)]
    argv += [str(a) for a in args]
    e = dict(os.environ)
    e.pop("EGRESS_TOKEN", None)
    e.update(env or {})
    return subprocess.run(argv, input=input, capture_output=True, text=True, env=e,
                          timeout=timeout)


# --- without egressd ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    [],
    ["bogus"],
    ["config"],
    ["config", "nope", "x"],
    ["drain"],
    ["drain", "a", "b"],
    ["uplinks", "extra"],
    ["events", "--confirm", "60s"],
    ["uplinks", "-f"],
    ["config", "check", "x.conf", "--confirm", "60s"],
    ["drain", "isp1", "--confirm", "soon"],
    ["drain", "isp1", "--confirm", "2h"],
    ["--timeout", "0", "status"],
    ["--url", "ftp://gw", "status"],
    ["--no-such-option", "status"],
    ["--socket"],
    ["--token-file", "/nonexistent/token", "status"],
    ["devices", "bogus"],
    ["devices", "active", "extra"],
    ["port-forward"],
    ["port-forward", "add", "8080", "192.168.1.100"],
    ["port-forward", "add", "0", "192.168.1.100", "80"],
    ["port-forward", "remove", "8080", "not-a-device", "80"],
    ["port-forward", "quick-device", "2001:db8::5"],
    ["diagnose", "--direct"],
    ["devices", "--fix-all"],
    ["--state-dir", "/tmp", "devices"],
])
def test_bad_usage_exits_2(egressctl, tmp_path, args):
    r = ctl(egressctl, *args, sock=tmp_path / "none.sock")
    assert r.returncode == 2, r
    assert r.stderr.startswith("egressctl: ") or r.stderr.startswith("usage: "), r.stderr
    assert r.stdout == ""


def test_help_and_version(egressctl):
    r = ctl(egressctl, "--help")
    assert r.returncode == 0
    for cmd in ("status", "uplinks", "connections", "events [-f]", "drain UPLINK",
                "undrain UPLINK", "config check", "config apply FILE", "confirm", "cancel", "backup",
                "restore [FILE]", "passwd", "devices [active]", "port-forward add",
                "port-forward quick-device", "diagnose [--fix-all]", "--direct"):
        assert cmd in r.stdout, cmd
    r = ctl(egressctl, "--version")
    assert r.returncode == 0 and r.stdout.startswith("egressctl ")


@pytest.mark.parametrize("args", [["status"], ["uplinks"], ["events"], ["events", "-f"],
                                  ["drain", "isp1"], ["confirm"], ["backup"]])
def test_no_egressd_exits_3(egressctl, tmp_path, args):
    r = ctl(egressctl, *args, sock=tmp_path / "none.sock")
    assert r.returncode == 3, r
    assert "cannot reach egressd at %s" % (tmp_path / "none.sock") in r.stderr


def test_nothing_listening_on_tcp_exits_3(egressctl):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        r = ctl(egressctl, "--url", "http://127.0.0.1:%d" % port, "uplinks")
    assert r.returncode == 3, r
    assert "Connection refused" in r.stderr


def test_config_check_local(egressctl, tmp_path):
    good = tmp_path / "good.conf"
    good.write_text(CONF_OK)
    bad = tmp_path / "bad.conf"
    bad.write_text(CONF_BAD)
    sock = tmp_path / "none.sock"  # no egressd needed

    r = ctl(egressctl, "config", "check", "--local", good, sock=sock)
    assert r.returncode == 0, r
    assert "valid" in r.stdout

    r = ctl(egressctl, "config", "check", "--local", bad, sock=sock)
    assert r.returncode == 1, r
    assert "%s:7: [uplink isp1] weight" % bad in r.stderr
    assert r.stdout == ""

    r = ctl(egressctl, "--json", "config", "check", "--local", bad, sock=sock)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["valid"] is False and len(doc["errors"]) == 1
    assert "weight" in doc["errors"][0]

    r = ctl(egressctl, "--json", "config", "check", "--local", good, sock=sock)
    assert r.returncode == 0 and json.loads(r.stdout) == {"valid": True, "errors": []}

    r = ctl(egressctl, "config", "check", "--local", tmp_path / "missing.conf", sock=sock)
    assert r.returncode == 1 and "missing.conf" in r.stderr


def scrypt_matches(phc, password):
    """Verify a $scrypt$ln=..,r=..,p=..$SALT$HASH string with Python's own scrypt."""
    _, alg, params, salt, digest = phc.split("$")
    assert alg == "scrypt"
    p = dict(kv.split("=") for kv in params.split(","))

    def b64(s):
        return base64.b64decode(s + "=" * (-len(s) % 4))
    want = b64(digest)
    got = hashlib.scrypt(password.encode(), salt=b64(salt), n=1 << int(p["ln"]),
                         r=int(p["r"]), p=int(p["p"]), maxmem=256 << 20, dklen=len(want))
    return got == want


def test_passwd_from_stdin(egressctl, tmp_path):
    r = ctl(egressctl, "passwd", input="correct horse\n", sock=tmp_path / "none.sock")
    assert r.returncode == 0, r
    h = r.stdout.strip()
    assert h.startswith("$scrypt$") and "\n" not in h
    assert scrypt_matches(h, "correct horse")
    assert not scrypt_matches(h, "correct horse ")
    # a fresh salt each time
    again = ctl(egressctl, "passwd", input="correct horse\n").stdout.strip()
    assert again != h and scrypt_matches(again, "correct horse")

    r = ctl(egressctl, "--json", "passwd", input="x\n")
    assert r.returncode == 0 and scrypt_matches(json.loads(r.stdout)["password_hash"], "x")

    r = ctl(egressctl, "passwd", input="")
    assert r.returncode == 2 and r.stdout == ""


def passwd_on_tty(binary, answers, timeout=20.0):
    """egressctl passwd on a pseudo-terminal, typing answers at its prompts; a child that
    hangs is killed (and the test fails on its status)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(binary), [str(binary), "passwd"])
    deadline = time.monotonic() + timeout
    seen = b""

    def read_some():
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(seen)
        return os.read(fd, 1024)
    try:
        for a in answers:
            while not seen.rstrip().endswith(b":"):
                seen += read_some()
            os.write(fd, a.encode() + b"\n")
            seen += b"|"
        while True:
            d = read_some()
            if not d:
                break
            seen += d
    except OSError:  # EIO: the child closed the terminal
        pass
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen.decode()


def test_passwd_on_a_terminal_asks_twice_without_echo(egressctl):
    rc, out = passwd_on_tty(egressctl, ["s3cret-pass", "s3cret-pass"])
    assert rc == 0, out
    assert out.count(":") >= 2 and "s3cret-pass" not in out
    h = [w for w in out.split() if w.startswith("$scrypt$")]
    assert len(h) == 1 and scrypt_matches(h[0], "s3cret-pass")

    rc, out = passwd_on_tty(egressctl, ["s3cret-pass", "other-pass"])
    assert rc == 2 and "differ" in out and "$scrypt$" not in out


# --- the client's side of the protocol, against a stand-in on a UNIX socket ---------------

class StandIn(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


def stand_in(path, routes):
    """A small HTTP server on a UNIX socket: routes[(METHOD, PATH)] = (status, body, type)."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def address_string(self):
            return "unix"

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            seen.append((self.command, self.path, dict(self.headers), self.rfile.read(n)))
            status, body, ctype = routes.get((self.command, self.path),
                                             (404, '{"error": "no such route"}',
                                              "application/json"))
            if callable(body):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.end_headers()
                body(self)
                return
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = handle_any

    srv = StandIn(str(path), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, seen


@pytest.fixture
def fake(tmp_path):
    made = []

    def make(routes):
        path = tmp_path / "fake.sock"
        srv, seen = stand_in(path, routes)
        made.append(srv)
        return path, seen
    yield make
    for srv in made:
        srv.shutdown()
        srv.server_close()


J = "application/json"


def test_exit_codes_of_replies(egressctl, fake):
    sock, seen = fake({
        ("GET", "/api/uplinks"): (401, '{"error": "who are you?"}', J),
        ("GET", "/api/connections"): (403, '{"error": "read-only token"}', J),
        ("PATCH", "/api/uplinks/nosuch"): (404, '{"error": "no uplink nosuch", "field": "name"}',
                                           J),
        ("POST", "/api/config/confirm"): (409, '{"error": "nothing to confirm"}', J),
        ("GET", "/api/events"): (200, "<html>not egressd</html>", "text/html"),
        ("GET", "/api/modules"): (503, '{"error": "module proxy is not running"}', J),
    })
    cases = [
        (["uplinks"], 4, "who are you?"),
        (["connections"], 4, "read-only token"),
        (["drain", "nosuch"], 1, "name: no uplink nosuch"),
        (["confirm"], 1, "nothing to confirm"),
        (["events"], 3, "not JSON"),
        (["status"], 1, "module proxy is not running"),
    ]
    for args, code, msg in cases:
        r = ctl(egressctl, *args, sock=sock)
        assert r.returncode == code, (args, r)
        assert msg in r.stderr, (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)


def test_drain_sends_the_change_and_the_token(egressctl, fake, tmp_path):
    sock, seen = fake({
        ("PATCH", "/api/uplinks/isp%201?confirm=90s"): (200, '{"name": "isp 1"}', J),
        ("PATCH", "/api/uplinks/isp2"): (200, '{"name": "isp2"}', J),
    })
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    r = ctl(egressctl, "drain", "isp 1", "--confirm", "90", "--token-file", token, sock=sock)
    assert r.returncode == 0, r
    assert "uplink isp 1 drained" in r.stdout and "egressctl confirm" in r.stdout
    method, path, headers, body = seen[-1]
    assert json.loads(body) == {"enabled": False}
    assert headers["Authorization"] == "Bearer tok-123"

    r = ctl(egressctl, "--json", "undrain", "isp2", sock=sock, env={"EGRESS_TOKEN": "env-tok"})
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {"name": "isp2"}
    method, path, headers, body = seen[-1]
    assert json.loads(body) == {"enabled": True}
    assert headers["Authorization"] == "Bearer env-tok"


def test_events_follow_the_stream(egressctl, fake):
    history = {"events": [
        {"id": 1, "time": 1767366245000, "kind": "config", "who": "egressd",
         "message": "started"},
        {"id": 2, "time": 1767366246000, "kind": "transition", "who": "egressd",
         "message": "uplink isp1: down -> up"},
    ]}

    def stream(h):
        # replays event 2 (already in the history), then two new ones, then closes
        for ev in history["events"][1:] + [
                {"id": 3, "time": 1767366247000, "kind": "change", "who": "uid:0",
                 "message": "uplink isp2 drained"},
                {"id": 4, "time": 1767366248000, "kind": "transition", "who": "egressd",
                 "message": "uplink isp1: up -> down"}]:
            h.wfile.write(b": keep-alive\n\n")
            h.wfile.write(("id: %d\nevent: %s\ndata: %s\n\n"
                           % (ev["id"], ev["kind"], json.dumps(ev))).encode())
            h.wfile.flush()

    sock, seen = fake({
        ("GET", "/api/events"): (200, json.dumps(history), J),
        ("GET", "/api/events/stream"): (200, stream, "text/event-stream"),
    })
    r = ctl(egressctl, "events", sock=sock)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "TIME", "KIND", "WHO", "MESSAGE"]
    assert len(lines) == 3 and lines[2].endswith("uplink isp1: down -> up")

    r = ctl(egressctl, "events", "-f", sock=sock)
    assert r.returncode == 3  # the stream ended: egressd went away
    assert "closed the event stream" in r.stderr
    msgs = [line.split(None, 5)[-1] for line in r.stdout.splitlines()]
    assert msgs == ["started", "uplink isp1: down -> up", "uplink isp2 drained",
                    "uplink isp1: up -> down"]
    assert seen[-1][2].get("Last-Event-ID") == "2"

    r = ctl(egressctl, "--json", "events", "-f", sock=sock)
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == [1, 2, 3, 4]


# --- against egressd ----------------------------------------------------------------------

SPEC = """
    gw:isp1 192.0.2.1/24 -- isp1:eth0 192.0.2.2/24
    gw:isp2 198.51.100.1/24 -- isp2:eth0 198.51.100.2/24
"""

CONF = """
[global]
log_level = info

[uplink isp1]
interface = isp1
gateway = 192.0.2.2

[uplink isp2]
interface = isp2
gateway = 198.51.100.2
weight = 2
"""


@pytest.fixture
def gw(lab):
    lab.apply(SPEC)
    return lab["gw"]


def start(gw, egressd_bin, conf=CONF, **kw):
    from egressd import Egressd
    return Egressd.start(gw, egressd_bin, conf, **kw)


def run_json(binary, d, *args):
    r = ctl(binary, "--json", *args, sock=d.api_socket)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def weight(binary, d):
    """isp2's weight in the running configuration."""
    return run_json(binary, d, "config", "show")["uplink"]["isp2"]["weight"]


def uplink(binary, d, name):
    doc = run_json(binary, d, "uplinks")
    rows = doc["uplinks"] if isinstance(doc, dict) else doc
    return [u for u in rows if u["name"] == name][0]


@pytest.mark.daemon
@pytest.mark.requires_root
def test_reading_commands(egressctl, gw, egressd_bin):
    """status, events, config show: a table, and with --json the API's document."""
    d = start(gw, egressd_bin)
    sock = d.api_socket

    r = ctl(egressctl, "status", sock=sock)
    assert r.returncode == 0, r
    assert r.stdout.splitlines()[0].split() == ["MODULE", "STATE", "STATUS"]
    doc = run_json(egressctl, d, "status")
    assert {m["name"] for m in doc["modules"]} >= {"route", "policy", "proxy", "dns"}
    assert doc["pending"]["pending"] is False

    r = ctl(egressctl, "events", sock=sock)
    assert r.returncode == 0, r
    assert r.stdout.splitlines()[0].split() == ["ID", "TIME", "KIND", "WHO", "MESSAGE"]
    doc = run_json(egressctl, d, "events")
    assert doc["events"] and all({"id", "time", "kind", "who", "message"} <= set(e)
                                 for e in doc["events"])

    r = ctl(egressctl, "config", "show", sock=sock)
    assert r.returncode == 0, r
    assert "[uplink isp2]" in r.stdout and "weight = 2" in r.stdout
    doc = run_json(egressctl, d, "config", "show")
    assert doc["uplink"]["isp2"]["weight"] == "2"

    assert d.stop() == 0
    d.assert_clean()
    r = ctl(egressctl, "status", sock=sock)
    assert r.returncode == 3, r


@pytest.mark.daemon
@pytest.mark.requires_root
def test_config_check_and_apply(egressctl, gw, egressd_bin, tmp_path):
    """config check through egressd changes nothing and names the line of an error;
    config apply makes the file the configuration; with --confirm, cancel rolls it back."""
    d = start(gw, egressd_bin)
    sock = d.api_socket
    new = tmp_path / "new.conf"
    new.write_text(CONF.replace("weight = 2", "weight = 5"))
    bad = tmp_path / "bad.conf"
    bad.write_text(CONF.replace("weight = 2", "weight = 0"))

    r = ctl(egressctl, "config", "check", new, sock=sock)
    assert r.returncode == 0, r
    assert "-weight = 2" in r.stdout and "+weight = 5" in r.stdout
    assert weight(egressctl, d) == "2"
    doc = run_json(egressctl, d, "config", "check", new)
    assert doc["valid"] is True and doc["changes"] is True

    r = ctl(egressctl, "config", "check", bad, sock=sock)
    assert r.returncode == 1, r
    assert r.stderr.startswith("%s:12: [uplink isp2] weight" % bad), r.stderr
    r = ctl(egressctl, "--json", "config", "check", bad, sock=sock)
    assert r.returncode == 1
    assert json.loads(r.stdout)["errors"][0]["line"] == 12
    r = ctl(egressctl, "config", "apply", bad, sock=sock)
    assert r.returncode == 1, r
    assert weight(egressctl, d) == "2"

    r = ctl(egressctl, "config", "apply", new, sock=sock)
    assert r.returncode == 0, r
    assert weight(egressctl, d) == "5"
    assert "weight = 5" in d.conf_path.read_text()

    back = tmp_path / "back.conf"
    back.write_text(CONF)
    r = ctl(egressctl, "config", "apply", back, "--confirm", "60s", sock=sock)
    assert r.returncode == 0, r
    assert "rolls back in 60s" in r.stdout
    assert weight(egressctl, d) == "2"
    assert ctl(egressctl, "cancel", sock=sock).returncode == 0
    assert weight(egressctl, d) == "5"

    r = ctl(egressctl, "config", "apply", tmp_path / "missing.conf", sock=sock)
    assert r.returncode == 2, r

    assert d.stop() == 0
    d.assert_clean()


@pytest.mark.daemon
@pytest.mark.requires_root
def test_events_follow(egressctl, gw, egressd_bin, tmp_path):
    """events -f prints the log, then each new event as it comes; when egressd stops, the
    stream ends and egressctl exits 3."""
    d = start(gw, egressd_bin)
    argv = [str(egressctl), "--socket", str(d.api_socket), "--json", "events", "-f"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []

        def has(pred):
            while True:
                ready = select.select([proc.stdout], [], [], 0.2)[0]
                if not ready:
                    return any(pred(e) for e in seen)
                line = proc.stdout.readline()
                if not line:
                    return any(pred(e) for e in seen)
                seen.append(json.loads(line))

        from lab import wait_for
        wait_for(lambda: has(lambda e: True), timeout=10, what="the event log so far")
        new = tmp_path / "new.conf"
        new.write_text(CONF.replace("weight = 2", "weight = 3"))
        assert ctl(egressctl, "config", "apply", new, sock=d.api_socket).returncode == 0
        wait_for(lambda: has(lambda e: e["kind"] == "config" and e["who"] == "uid:0"),
                 timeout=10, what="the change's event on the stream")
        ids = [e["id"] for e in seen]
        assert ids == sorted(set(ids)), "an event twice, or out of order"
        assert d.stop() == 0
        assert proc.wait(timeout=10) == 3
        assert "closed the event stream" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    d.assert_clean()


@pytest.mark.daemon
@pytest.mark.requires_root
def test_tcp_needs_a_token(egressctl, gw, egressd_bin, tmp_path):
    """Over TCP (inside gw: 127.0.0.1:8090, the default listener) without a token, or with a
    wrong one, egressd answers 401: exit 4.  A port nobody listens on: exit 3."""
    d = start(gw, egressd_bin)
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-a-token\n")
    env = {k: v for k, v in os.environ.items() if k != "EGRESS_TOKEN"}
    for extra in ([], ["--token-file", str(wrong)]):
        r = gw.run([str(egressctl), "--url", "http://127.0.0.1:8090"] + extra + ["status"],
                   check=False, env=env)
        assert r.returncode == 4, r
        assert "authentication required" in r.stderr or "token" in r.stderr, r.stderr
        assert r.stdout == ""
    r = gw.run([str(egressctl), "--url", "http://127.0.0.1:8091", "uplinks"], check=False,
               env=env)
    assert r.returncode == 3, r
    assert d.stop() == 0
    d.assert_clean()


@pytest.mark.daemon
@pytest.mark.requires_root
def test_socket_is_for_root_and_its_group(egressctl, gw, egressd_bin):
    """A user who is neither root nor in the socket's group cannot use the socket: exit 4,
    saying who may."""
    d = start(gw, egressd_bin)
    os.chmod(d.api_socket.parent, 0o755)  # the run folder: only the socket's mode decides
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(egressctl), "--socket", str(d.api_socket), "status"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 4, r
    assert "root or the egress group" in r.stderr or "egressd:" in r.stderr, r.stderr
    assert ctl(egressctl, "status", sock=d.api_socket).returncode == 0
    assert d.stop() == 0
    d.assert_clean()


# --- the proxy's connections and gateway mode's backup (tests/lab/proxylab.py's lab) ------

# A SOCKS5 client holding one connection to the lab's echo server; prints its local port,
# then waits for EOF on stdin.
HOLD = r"""
import socket, struct, sys
s = socket.create_connection((sys.argv[1], 1080), timeout=5)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(sys.argv[2]) + struct.pack("!H", 7000))
assert s.recv(10)[:2] == b"\x05\x00"
s.sendall(b"who\n")
s.makefile("rb").readline()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def plab():
    import proxylab
    from lab import Lab
    with Lab() as lab:
        proxylab.build(lab)
        yield lab


@pytest.mark.daemon
@pytest.mark.requires_root
def test_connections_backup_restore(egressctl, plab, egressd_bin):
    """connections lists a live connection of the proxy; backup shows gateway mode's backup;
    restore refuses a file that is not egressd's backup, and puts back the one that is."""
    import sys
    import proxylab
    from egressd import Egressd
    from lab import wait_for
    gw, client = plab["gw"], plab["client"]
    backup = gw.lab.dir / "ctl-backup.nft"
    d = Egressd.command(gw, egressd_bin, proxylab.dispatch_args(
        "-lhost", proxylab.GW_LAN, "-lport", "1080", "-gateway", "-gateway-ip",
        proxylab.GW_LAN, "-subnet", "10.20.0.0/24", "-auto-config", "-backup-file", backup),
        name="egressd-ctl")
    d.wait_log(r"gateway: intercepting 1 subnet")
    sock = d.api_socket
    hold = client.popen([sys.executable, "-c", HOLD, proxylab.GW_LAN, proxylab.SERVER],
                        name="hold", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(hold.stdout.readline())
        me = "%s:%d" % (proxylab.CLIENT, port)

        def listed():
            r = ctl(egressctl, "connections", sock=sock)
            assert r.returncode == 0, r
            return [line.split() for line in r.stdout.splitlines() if me in line.split()]
        (row,) = wait_for(listed, what="the connection in egressctl connections")
        assert row[:3] == ["TCP", me, "%s:7000" % proxylab.SERVER], row
        assert row[4] in proxylab.ADDR.values(), row  # the uplink: go-dispatch-proxy's name
        doc = run_json(egressctl, d, "connections")
        assert [c for c in doc["active_connections"] if c["source_port"] == port]

        r = ctl(egressctl, "backup", sock=sock)
        assert r.returncode == 0, r
        assert "backup_exists:" in r.stdout and str(backup) in r.stdout
        info = run_json(egressctl, d, "backup")
        assert info["backup_exists"] is True and info["backup_file"] == str(backup)

        assert gw.run(["nft", "list", "table", "inet", "egress_gateway"], check=False
                      ).returncode == 0
        other = gw.lab.dir / "other.nft"
        other.write_text("")
        r = ctl(egressctl, "restore", other, sock=sock)
        assert r.returncode == 1, r
        assert "restores its own backup, %s" % backup in r.stderr
        assert gw.run(["nft", "list", "table", "inet", "egress_gateway"], check=False
                      ).returncode == 0, "a refused restore changed the ruleset"
        r = ctl(egressctl, "restore", backup, sock=sock)
        assert r.returncode == 0, r
        assert r.stdout == "restored the ruleset saved in %s; gateway mode is off\n" % backup
        assert gw.run(["nft", "list", "table", "inet", "egress_gateway"], check=False
                      ).returncode != 0
    finally:
        hold.stop()
        assert d.stop() == 0
    d.assert_clean()


@pytest.mark.daemon
@pytest.mark.requires_root
def test_tokens_over_tcp_and_a_passwd_hash(egressctl, gw, egressd_bin, tmp_path):
    """Over TCP with a read-only token egressctl reads (0) and may not have a configuration
    checked (4); with an admin token it may (0).  A hash from egressctl passwd in [api] password_hash logs in
    with its password, and with no other."""
    from apiclient import ApiClient
    h = ctl(egressctl, "passwd", input="lab-pass-1\n").stdout.strip()
    d = start(gw, egressd_bin, CONF + "\n[api]\npassword_hash = %s\n" % h)
    unix = ApiClient.unix(d)
    files = {}
    for access in ("read", "admin"):
        r = unix.post("/api/tokens", {"name": "ctl-" + access, "access": access})
        assert r.status in (200, 201), r
        files[access] = tmp_path / ("token-" + access)
        files[access].write_text(r.json()["token"] + "\n")
        files[access].chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "EGRESS_TOKEN"}

    def tcp(access, *args):
        return gw.run([str(egressctl), "--url", "http://127.0.0.1:8090", "--token-file",
                       str(files[access])] + list(args), check=False, env=env)

    conf = tmp_path / "check.conf"
    conf.write_text(CONF)
    r = tcp("read", "status")
    assert r.returncode == 0, r
    assert "policy" in r.stdout
    r = tcp("read", "config", "check", conf)  # egressd's check is an admin's request
    assert r.returncode == 4, r
    r = tcp("admin", "config", "check", conf)
    assert r.returncode == 0, r
    r = gw.run([str(egressctl), "--url", "http://127.0.0.1:8090", "status"], check=False,
               env=dict(env, EGRESS_TOKEN=files["read"].read_text().strip()))
    assert r.returncode == 0, r

    tcp_api = ApiClient.tcp(gw, "http://127.0.0.1:8090")
    r = tcp_api.post("/api/login", {"username": "admin", "password": "lab-pass-1"})
    assert r.status == 200, r
    r = tcp_api.post("/api/login", {"username": "admin", "password": "lab-pass-2"})
    assert r.status == 401, r
    assert d.stop() == 0
    d.assert_clean()


@pytest.mark.daemon
@pytest.mark.requires_root
def test_drain_confirm_cancel(egressctl, gw, egressd_bin):
    """uplinks; drain and undrain; with --confirm the change waits: confirm keeps it, cancel takes it
    back; a second change while one waits, an unknown uplink, nothing to confirm: exit 1."""
    d = start(gw, egressd_bin)
    sock = d.api_socket

    r = ctl(egressctl, "uplinks", sock=sock)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["UPLINK", "STATE", "ENABLED"]
    assert [line.split()[0] for line in lines[1:]] == ["isp1", "isp2"]
    assert uplink(egressctl, d, "isp2")["weight"] == 2

    r = ctl(egressctl, "drain", "isp2", sock=sock)
    assert r.returncode == 0, r
    assert r.stdout == "uplink isp2 drained\n"
    assert uplink(egressctl, d, "isp2")["enabled"] is False
    assert uplink(egressctl, d, "isp1")["enabled"] is True
    r = ctl(egressctl, "uplinks", sock=sock)
    assert "drained" in [line for line in r.stdout.splitlines() if line.startswith("isp2")][0]
    assert ctl(egressctl, "undrain", "isp2", sock=sock).returncode == 0
    assert uplink(egressctl, d, "isp2")["enabled"] is True

    r = ctl(egressctl, "drain", "nosuch", sock=sock)
    assert r.returncode == 1, r
    assert "nosuch" in r.stderr and r.stdout == ""

    r = ctl(egressctl, "confirm", sock=sock)
    assert r.returncode == 1, r
    assert "nothing awaits a confirmation" in r.stderr

    r = ctl(egressctl, "drain", "isp1", "--confirm", "5m", sock=sock)
    assert r.returncode == 0, r
    assert "egressctl confirm" in r.stdout
    assert uplink(egressctl, d, "isp1")["enabled"] is False
    pending = run_json(egressctl, d, "status")["pending"]
    assert pending["pending"] is True and 0 < pending["seconds_left"] <= 300
    assert "awaits its confirmation" in ctl(egressctl, "status", sock=sock).stdout
    r = ctl(egressctl, "drain", "isp2", "--confirm", "60s", sock=sock)
    assert r.returncode == 1, r  # another change waits
    assert uplink(egressctl, d, "isp2")["enabled"] is True
    r = ctl(egressctl, "confirm", sock=sock)
    assert r.returncode == 0 and r.stdout == "confirmed\n", r
    assert run_json(egressctl, d, "status")["pending"]["pending"] is False
    assert uplink(egressctl, d, "isp1")["enabled"] is False

    r = ctl(egressctl, "--json", "undrain", "isp1", "--confirm", "5m", sock=sock)
    assert r.returncode == 0, r
    json.loads(r.stdout)
    assert uplink(egressctl, d, "isp1")["enabled"] is True
    r = ctl(egressctl, "cancel", sock=sock)
    assert r.returncode == 0 and r.stdout == "rolled back\n", r
    assert uplink(egressctl, d, "isp1")["enabled"] is False
    assert ctl(egressctl, "cancel", sock=sock).returncode == 1

    assert d.stop() == 0
    d.assert_clean()
