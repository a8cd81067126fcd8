"""egressd's REST API server in a lab: its listeners, /healthz, routing errors, access.

    gw:isp1 192.0.2.1/24 ------ isp1:eth0 192.0.2.2/24

egressd runs in gw with one uplink over isp1 (link state only) and its API on the
namespace's loopback (127.0.0.1:8090, the default) and on its own UNIX socket in the
lab's run directory.  Requests go through apiclient.ApiClient (curl inside gw).  The
slowloris test adds a LAN host:

    gw:lan0 10.9.0.1/24 ------- lan:eth0 10.9.0.2/24   (slowloris.py)
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from apiclient import ApiClient
from egressd import Egressd
from lab import LabError, wait_for

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

SPEC = """
    gw:isp1 192.0.2.1/24 -- isp1:eth0 192.0.2.2/24
"""

CONF = """
[uplink isp1]
interface = isp1
gateway = 192.0.2.2
"""

TCP = "http://127.0.0.1:8090"
SLOWLORIS = Path(__file__).resolve().parent / "slowloris.py"


@pytest.fixture
def gw(lab):
    lab.apply(SPEC)
    return lab["gw"]


def start(gw, egressd_bin, conf=CONF, **kw):
    return Egressd.start(gw, egressd_bin, conf, **kw)


def test_healthz_over_tcp_and_the_socket(gw, egressd_bin):
    """/healthz answers without credentials on both: 200 and a small JSON while an uplink
    is usable; HEAD too, without a body; other methods 405 with Allow."""
    d = start(gw, egressd_bin)
    tcp, unix = ApiClient.tcp(gw, TCP), ApiClient.unix(d)
    wait_for(lambda: tcp.get("/healthz").status == 200, what="/healthz to say ok")
    for api in (tcp, unix):
        r = api.get("/healthz")
        assert r.status == 200, r
        assert r.json() == {"status": "ok", "uplinks": 1, "usable": 1}
        assert r.headers["content-type"] == "application/json"
        h = api.head("/healthz")
        assert h.status == 200 and h.body == b""
        r = api.post("/healthz", {})
        assert r.status == 405, r
        assert r.headers["allow"] == "GET, HEAD"
        assert "error" in r.json()
    assert d.api_socket.exists()
    assert d.stop() == 0
    d.assert_clean()
    assert not d.api_socket.exists(), "egressd left its socket behind"


def test_healthz_is_503_without_a_usable_uplink(lab, gw, egressd_bin):
    """The uplink's link goes down: 503 with the same JSON; back up: 200 again."""
    d = start(gw, egressd_bin)
    api = ApiClient.tcp(gw, TCP)
    wait_for(lambda: api.get("/healthz").status == 200, what="/healthz to say ok")
    lab.cut(gw, "isp1")
    d.wait_log(r"uplink isp1: up -> down")
    r = api.get("/healthz")
    assert r.status == 503, r
    assert r.json() == {"status": "unavailable", "uplinks": 1, "usable": 0}
    lab.restore(gw, "isp1")
    wait_for(lambda: api.get("/healthz").status == 200, what="/healthz to say ok again")
    assert d.stop() == 0
    d.assert_clean()


def test_unknown_paths_and_bad_paths(gw, egressd_bin):
    """404 as JSON for a path no route has; 400 for a path that does not decode to plain
    segments ("..", an encoded '/', a bad escape); the daemon goes on answering."""
    d = start(gw, egressd_bin)
    api = ApiClient.unix(d)
    r = api.get("/api/nothing-here")
    assert r.status == 404, r
    assert r.json()["error"].startswith("no such resource")
    for bad in ("/api/../healthz", "/api/a%2Fb", "/api/%zz", "/api//x"):
        r = api.get(bad, headers={})
        assert r.status == 400, (bad, r)
        assert r.json() == {"error": "bad request path"}
    assert api.get("/healthz").status == 200
    assert d.stop() == 0
    d.assert_clean()


def test_socket_admin_and_tcp_needs_credentials(gw, egressd_bin):
    """[api] metrics = yes puts /metrics on the API (read access): root on the UNIX socket
    is an admin and gets it; over TCP, with no credentials, 401; /healthz stays open."""
    d = start(gw, egressd_bin, CONF + "\n[api]\nmetrics = yes\n")
    unix, tcp = ApiClient.unix(d), ApiClient.tcp(gw, TCP)
    r = unix.get("/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    r = tcp.get("/metrics")
    assert r.status == 401, r
    assert r.json() == {"error": "authentication required"}
    assert r.headers["content-type"] == "application/json"
    assert tcp.get("/healthz").status in (200, 503)
    assert d.stop() == 0
    d.assert_clean()


def test_metrics_stay_off_the_api_by_default(gw, egressd_bin):
    d = start(gw, egressd_bin)
    r = ApiClient.unix(d).get("/metrics")
    assert r.status == 404, r
    assert d.stop() == 0
    d.assert_clean()


def test_listen_none_and_socket_none(gw, egressd_bin):
    """listen = none: no TCP listener; socket = none: no socket; the daemon still runs."""
    d = start(gw, egressd_bin, CONF + "\n[api]\nlisten = none\n")
    assert d.api_socket.exists()
    assert not gw.listening(8090)
    assert d.stop() == 0
    d = start(gw, egressd_bin, CONF, args=["--set", "api.socket=none"], name="nosock")
    assert gw.listening(8090)
    assert not d.api_socket.exists()
    assert d.stop() == 0
    d.assert_clean()


def test_a_second_egressd_does_not_take_a_live_socket(gw, egressd_bin):
    """Another egressd pointed at a socket a running one answers on refuses to start and
    leaves the socket to it."""
    d = start(gw, egressd_bin)
    other = Egressd.start(gw, egressd_bin, CONF + "\n[api]\nlisten = none\n",
                          args=["--set", "api.socket=%s" % d.api_socket], name="other",
                          ready=False)
    assert other.proc.wait(10) != 0
    assert "another egressd answers there" in other.log()
    assert ApiClient.unix(d).get("/healthz").status == 200
    assert d.stop() == 0
    d.assert_clean()


def self_signed(node, name="api"):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key) paths."""
    d = node.lab.dir
    cert, key = d / (name + ".pem"), d / (name + ".key")
    node.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
              "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
              "-keyout", key, "-out", cert])
    return cert, key


def test_tls(gw, egressd_bin):
    """tls_cert/tls_key: the TCP listener speaks HTTPS (a client that trusts the certificate
    gets its answer; plain HTTP there gets none); the UNIX socket stays plain HTTP."""
    cert, key = self_signed(gw)
    d = start(gw, egressd_bin, CONF + "\n[api]\nlisten = 127.0.0.1:8443\ntls_cert = %s\n"
              "tls_key = %s\n" % (cert, key))
    assert d.wait_log(r"api: serving https://127.0.0.1:8443/")
    tls = ApiClient.tcp(gw, "https://127.0.0.1:8443", cacert=cert)
    wait_for(lambda: tls.get("/healthz").status == 200, what="/healthz over TLS")
    assert tls.get("/nothing").status == 404
    untrusted = ApiClient.tcp(gw, "https://127.0.0.1:8443")
    with pytest.raises(LabError, match="certificate"):
        untrusted.get("/healthz")
    plain = ApiClient.tcp(gw, "http://127.0.0.1:8443")
    with pytest.raises(LabError):
        plain.get("/healthz")
    assert ApiClient.unix(d).get("/healthz").status == 200
    assert d.stop() == 0
    d.assert_clean()


def test_tls_with_a_bad_key_does_not_start(gw, egressd_bin):
    """A key that is not the certificate's: egressd says which files and stops."""
    cert, _ = self_signed(gw)
    _, other_key = self_signed(gw, "other")
    d = start(gw, egressd_bin, CONF + "\n[api]\nlisten = 127.0.0.1:8443\ntls_cert = %s\n"
              "tls_key = %s\n" % (cert, other_key), ready=False)
    assert d.proc.wait(10) != 0
    assert "api: TLS: cannot use tls_cert %s and tls_key %s" % (cert, other_key) in d.log()
    assert not gw.listening(8443)


SLOW_SPEC = """
    gw:isp1 192.0.2.1/24 -- isp1:eth0 192.0.2.2/24
    gw:lan0 10.9.0.1/24 -- lan:eth0 10.9.0.2/24
"""


def test_slowloris_does_not_stop_other_clients(lab, egressd_bin):
    """A LAN host holds connections that send a header line every 200 ms and never end
    their request, opening a new one whenever one is closed: fewer than max_clients, and
    then three times as many.  The server closes each at its deadline or to make room (no
    answer to any), and a client elsewhere gets every one of its answers meanwhile."""
    lab.apply(SLOW_SPEC)
    gw, lan = lab["gw"], lab["lan"]
    d = start(gw, egressd_bin, CONF + "\n[api]\nlisten = 127.0.0.1:8090, 10.9.0.1:8090\n"
              "max_clients = 16\ntimeout = 2s\n")
    api = ApiClient.tcp(gw, TCP)
    wait_for(lambda: api.get("/healthz").status == 200, what="/healthz to say ok")

    def slowloris(n, seconds):
        slow = lan.popen([sys.executable, str(SLOWLORIS), "10.9.0.1", "8090", str(n),
                          str(seconds), "0.2"], name="slowloris", stdout=subprocess.PIPE,
                         text=True)
        assert slow.stdout.readline().strip() == "ready"
        codes = [api.get("/healthz").status for _ in range(15)]
        out, _ = slow.communicate(timeout=60)
        assert codes == [200] * 15, codes
        return json.loads(out.splitlines()[-1])

    # fewer than max_clients: each is closed at its deadline (2 s), though it keeps sending
    stats = slowloris(8, 5)
    assert stats["closed_by_server"] >= 8, stats
    assert stats["answered"] == 0, stats
    # three times max_clients: they make room with their own connections
    stats = slowloris(48, 6)
    assert stats["closed_by_server"] >= 48, stats
    assert stats["answered"] == 0, stats
    assert d.alive()
    assert ApiClient.unix(d).get("/healthz").status == 200
    assert d.stop() == 0
    d.assert_clean()


def test_oversized_requests(gw, egressd_bin):
    """A body over max_body gets 413 and a head over max_headers 400, both from the HTTP
    layer before any route runs; the next client is served."""
    d = start(gw, egressd_bin, CONF + "\n[api]\nmax_body = 1024\nmax_headers = 1024\n")
    api = ApiClient.unix(d)
    r = api.post("/api/anything", raw="x" * 2048)
    assert r.status == 413, r
    r = api.get("/healthz", headers={"X-Big": "y" * 2048})
    assert r.status == 400, r  # libevent's own page: the head was never read whole
    assert api.get("/healthz", headers={"X-Small": "y" * 100}).status == 200
    assert d.stop() == 0
    d.assert_clean()


REPO = Path(__file__).resolve().parents[2]
CHARTJS = Path("/usr/share/javascript/chart.js/chart.min.js")


def test_static_files(gw, egressd_bin):
    """web_root at /: index.html for /, each file with its type, byte for byte; Debian's
    Chart.js at /vendor/chart.js/; nothing outside the two folders (dot segments, encoded
    slashes, hidden files, /api/ paths), and no method but GET and HEAD."""
    web = REPO / "web"
    hidden = gw.lab.dir / "web"
    hidden.mkdir()
    (hidden / "index.html").write_text("<p>lab</p>\n")
    (hidden / ".secret").write_text("no\n")
    (hidden / "sub").mkdir()
    d = start(gw, egressd_bin, CONF + "\n[api]\nweb_root = %s\n" % web)
    api = ApiClient.tcp(gw, TCP)
    r = api.get("/")
    assert r.status == 200, r
    assert r.body == (web / "index.html").read_bytes()
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["x-frame-options"] == "DENY"
    for name, ctype in (("egress.js", "text/javascript; charset=utf-8"),
                        ("egress.css", "text/css; charset=utf-8")):
        r = api.get("/" + name)
        assert r.status == 200 and r.body == (web / name).read_bytes(), name
        assert r.headers["content-type"] == ctype
    h = api.head("/egress.js")
    assert h.status == 200 and h.body == b""
    assert int(h.headers["content-length"]) == (web / "egress.js").stat().st_size
    r = api.get("/vendor/chart.js/chart.min.js")
    assert r.status == 200, r
    assert r.body == CHARTJS.read_bytes()
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    # nothing else: not found, or not a path at all
    for path in ("/vendor/chart.js/../../../../etc/passwd", "/..%2f..%2fetc%2fpasswd",
                 "/vendor/chart.js/%2e%2e/%2e%2e/passwd"):
        r = api.get(path)
        assert r.status == 400, (path, r)
    for path in ("/etc/passwd", "/vendor/chart.js/", "/vendor/passwd", "/nothing.js",
                 "/vendor/chart.js/chunks", "/api/index.html"):
        r = api.get(path)
        assert r.status == 404, (path, r)
        assert r.headers["content-type"] == "application/json"
    r = api.post("/egress.js", {})
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD", r
    assert d.stop() == 0
    # another root: its files, never a hidden one or a folder
    d = start(gw, egressd_bin, CONF + "\n[api]\nweb_root = %s\n" % hidden, name="other")
    assert api.get("/").body == b"<p>lab</p>\n"
    for path in ("/.secret", "/sub", "/sub/"):
        assert api.get(path).status == 404, path
    assert d.stop() == 0
    d.assert_clean()


def test_dispatch_web_serves_the_api_on_every_address(lab, gw, egressd_bin):
    """egressd dispatch -web PORT: the API (and dashboard) on PORT on every address, as
    go-dispatch-proxy's -web served its WebUI; not on the default 127.0.0.1:8090."""
    d = Egressd.command(gw, egressd_bin, ["dispatch", "-web", "8091", "192.0.2.1@1"])
    outside = ApiClient.tcp(lab["isp1"], "http://192.0.2.1:8091")
    wait_for(lambda: outside.get("/healthz").status == 200, what="/healthz on -web's port")
    assert ApiClient.tcp(gw, "http://127.0.0.1:8091").get("/healthz").status == 200
    assert outside.get("/metrics").status == 404
    assert not gw.listening(8090)
    assert d.stop() == 0
    d.assert_clean()
