"""The client ACL of the proxy and the DNS forwarder ([proxy] allow, [dns] allow, -allow).

    client 10.20.0.2, fd20::2        -- lan0  gw  isp1 192.0.2.1 -- isp1 --+-- inet
           203.0.113.77 (routed by gw                isp2 192.0.2.9 -- isp2 --+   198.51.100.2
           via the client: a LAN-side                                          11.0.0.80 (web)
           host with a public address)
                                         isp1 also holds 172.16.9.2 (a private address on the
                                         internet side, routed by gw via 192.0.2.2)

The proxylab topology (tests/lab/proxylab.py) plus routes that let the internet side reach
gw's LAN address through isp1.  Outsiders (inet, isp1) connect to gw's WAN address and to its
LAN address through the uplink: every listener refuses them in its protocol's way, while the
LAN client beside them is served.  A LAN-side host outside the default set is refused until
-allow (or [dns] allow) names it; nothing widens an uplink interface.
"""
import sys

import pytest

import proxylab
from egressd import Egressd
from lab import Lab
from test_proxy import curl, dns_query, sample

pytestmark = pytest.mark.requires_root

WAN = proxylab.ADDR["isp1"]           # 192.0.2.1
WAN6 = proxylab.ADDR6["isp1"]         # 2001:db8:1::1
LAN = proxylab.GW_LAN                 # 10.20.0.1
LAN6 = "fd20::1"
INET = "198.51.100.2"                 # the internet host's address
PRIVATE_OUTSIDE = "172.16.9.2"        # isp1's private address
REMOTE = "203.0.113.77"               # a LAN-side host with a public address
METRICS = 9102
WEB = "http://%s/" % proxylab.SERVER

# One raw client for the refusals: what the server sent, and how the connection ended
# (closed: FIN, reset: RST, open: still open after the timeout - i.e. served).
PROBE = r"""
import socket, sys
host, port, kind, src = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(3)
if src != "-":
    s.bind((src, 0))
got = b""
def read_to_end():
    global got
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return "closed"
            got += b
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "open"
dst = socket.inet_aton("11.0.0.80") + (80).to_bytes(2, "big")
try:
    s.connect((host, port))  # the reset may come before connect() returns
    if kind == "socks5":
        s.sendall(b"\x05\x01\x00")
        got += s.recv(2)
        s.sendall(b"\x05\x01\x00\x01" + dst)
    elif kind == "socks4":
        s.sendall(b"\x04\x01" + dst[4:] + dst[:4] + b"\x00")
    elif kind == "connect":
        s.sendall(b"CONNECT 11.0.0.80:80 HTTP/1.1\r\nHost: 11.0.0.80:80\r\n\r\n")
    elif kind == "http":
        s.sendall(b"GET http://11.0.0.80/ HTTP/1.1\r\nHost: 11.0.0.80\r\n\r\n")
    else:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    end = read_to_end()
except ConnectionResetError:
    end = "reset"
except BrokenPipeError:
    end = "reset"
print(got.hex(), end)
"""

def probe(node, host, port, kind, src=None):
    """(bytes received, how the connection ended) of one raw PROBE connection."""
    out = node.run([sys.executable, "-c", PROBE, host, str(port), kind, src or "-"],
                   timeout=20).stdout.split()
    return bytes.fromhex(out[0]) if len(out) > 1 else b"", out[-1]


def assert_refused(node, host, port, kind, src=None):
    got, end = probe(node, host, port, kind, src)
    where = "%s -> [%s]:%d %s" % (src or node.name, host, port, kind)
    if kind == "socks5":
        # method "no authentication", then reply 0x02: not allowed by ruleset (RFC 1928 6)
        assert got[:2] == b"\x05\x00" and got[2:4] == b"\x05\x02", (where, got, end)
    elif kind == "socks4":
        assert got[:2] == b"\x00\x5b", (where, got, end)  # 91: rejected
    elif kind in ("connect", "http"):
        assert got.startswith(b"HTTP/1.1 403 Forbidden\r\n"), (where, got, end)
        assert got.endswith(b"\r\n\r\nThis proxy does not serve your address.\n"), (where, got)
    else:
        assert got == b"" and end == "reset", (where, got, end)
        return
    assert end == "closed", (where, got, end)


def assert_served(node, host, port=1080, src=None):
    """The LAN side's positive check: every protocol gets a page through an uplink."""
    p = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    extra = ["--interface", src] if src else []
    pages = ("inet 192.0.2.1", "inet 192.0.2.9")
    for args in (["--socks5", p], ["--socks4", p], ["-p", "-x", "http://" + p],
                 ["-x", "http://" + p]):
        assert curl(node, *extra, *args, WEB) in pages, (node.name, src, args)


def dns_probe(node, server, port, tcp, src=None):
    """rcode of one query for web.test, or "timeout" (dropped)."""
    code = """
import dns.message, dns.query, dns.exception, sys
q = dns.message.make_query("web.test", "A")
f = dns.query.tcp if %s else dns.query.udp
try:
    print(f(q, %r, port=%d, timeout=2, source=%r).rcode())
except dns.exception.Timeout:
    print("timeout")
""" % (tcp, server, port, src)
    out = node.run([sys.executable, "-c", code], timeout=15).stdout.strip()
    return out if out == "timeout" else int(out)


REFUSED = 5  # DNS rcode


@pytest.fixture(scope="module")
def alab():
    with Lab() as lab:
        proxylab.build(lab)
        gw, isp1, inet, client = lab["gw"], lab["isp1"], lab["inet"], lab["client"]
        # the internet side can reach gw's LAN address through isp1 (a weak host takes it)
        isp1.ip("route", "add", "10.20.0.0/24", "via", WAN)
        inet.ip("route", "add", "10.20.0.0/24", "via", "198.51.100.1")
        # a private address on the internet side
        isp1.ip("addr", "add", PRIVATE_OUTSIDE + "/32", "dev", "eth0")
        gw.ip("route", "add", PRIVATE_OUTSIDE, "via", "192.0.2.2", "dev", "isp1")
        # a LAN-side host outside the default set
        client.ip("addr", "add", REMOTE + "/32", "dev", "eth0")
        gw.ip("route", "add", REMOTE, "via", proxylab.CLIENT, "dev", "lan0")
        yield lab


def metrics(gw):
    return gw.curl("http://127.0.0.1:%d/metrics" % METRICS).stdout


def dispatch(lab, binary, *extra):
    """README's example: `egressd dispatch -lhost 0.0.0.0 -lport 1080 ...` (and metrics)."""
    return Egressd.command(lab["gw"], binary, proxylab.dispatch_args(
        "-lhost", "0.0.0.0", "-lport", "1080", "-metrics-port", str(METRICS), *extra))


def stop(d):
    assert d.stop() == 0
    d.assert_clean()


# outsiders: (node, address it connects to, source address)
OUTSIDERS = [
    ("inet", WAN, None),                  # the internet host to the WAN address
    ("inet", LAN, None),                  # ... to the LAN address, through the uplink
    ("isp1", WAN, PRIVATE_OUTSIDE),       # a private address, through the uplink
]


@pytest.mark.daemon
def test_outsiders_refused_socks_http(alab, egressd_bin):
    """README's example, `-lhost 0.0.0.0`: hosts on the internet side get a SOCKS5, SOCKS4 or
    HTTP refusal (CONNECT and plain) on the WAN address and on the LAN address, even from a
    private address; the LAN client is served.  Each refusal is counted in
    egress_proxy_refused_total{reason="acl"} and logged with the client's address, and makes
    no per-client entry."""
    c, gw = alab["client"], alab["gw"]
    d = dispatch(alab, egressd_bin)
    try:
        refused = 0
        for name, host, src in OUTSIDERS:
            for kind in ("socks5", "socks4", "connect", "http"):
                assert_refused(alab[name], host, 1080, kind, src)
                refused += 1
        # beside them: the LAN client
        assert_served(c, LAN)
        # what curl tells the outsider's user
        r = curl(alab["inet"], "--socks5", WAN + ":1080", WEB, check=False)
        assert r.returncode != 0 and "(2)" in r.stderr, r.stderr
        r = alab["inet"].run(["curl", "-s", "-w", "%{http_code}", "--max-time", "5",
                              "-x", "http://%s:1080" % WAN, WEB], check=False)
        assert r.stdout.endswith("This proxy does not serve your address.\n403"), r.stdout
        refused += 2
        text = metrics(gw)
        assert sample(text, "egress_proxy_refused_total", reason="acl") == refused
        assert sample(text, "egress_proxy_refused_total", reason="max_per_client") == 0
        assert sample(text, "egress_proxy_client_connections_total", client=INET) is None
        assert sample(text, "egress_proxy_client_connections_total",
                      client=proxylab.CLIENT) == 4
        d.wait_log(r"proxy: client 198\.51\.100\.2 refused on the socks/http listener: "
                   r"came in through an uplink interface \(isp1\)")
        d.wait_log(r"proxy: client 172\.16\.9\.2 refused")
    finally:
        stop(d)


@pytest.mark.daemon
def test_allow_widens_and_replaces(alab, egressd_bin):
    """A LAN-side host outside the default set (a public address routed through the LAN) is
    refused until `-allow local -allow ADDR` admits it beside the LAN; no -allow admits an
    outsider through an uplink interface; `-allow PREFIX` alone replaces the default, so the
    LAN and the host itself are refused then."""
    c, gw, inet = alab["client"], alab["gw"], alab["inet"]
    d = dispatch(alab, egressd_bin)
    try:
        assert_refused(c, LAN, 1080, "socks5", REMOTE)
        d.wait_log(r"proxy: client 203\.0\.113\.77 refused on the socks/http listener: "
                   r"not in the allow list \(lan0\)")
        assert curl(c, "--socks5", LAN + ":1080", WEB).startswith("inet 192.0.2.")
    finally:
        stop(d)
    d = dispatch(alab, egressd_bin, "-allow", "local", "-allow", REMOTE,
                 "-allow", "198.51.100.0/24", "-allow", "0.0.0.0/0")
    try:
        assert_served(c, LAN, src=REMOTE)
        assert_served(c, LAN)
        for kind in ("socks5", "http"):
            assert_refused(inet, WAN, 1080, kind)
            assert_refused(alab["isp1"], WAN, 1080, kind, PRIVATE_OUTSIDE)
    finally:
        stop(d)
    d = dispatch(alab, egressd_bin, "-allow", "203.0.113.0/24")
    try:
        assert_served(c, LAN, src=REMOTE)
        assert_refused(c, LAN, 1080, "socks5")
        assert_refused(gw, "127.0.0.1", 1080, "http")
        assert sample(metrics(gw), "egress_proxy_refused_total", reason="acl") == 2
    finally:
        stop(d)


@pytest.mark.daemon
@pytest.mark.parametrize("intercept", ["redirect", "tproxy"])
def test_transparent_and_dns(alab, egressd_bin, intercept):
    """Gateway mode with the proxy on `::`: an outsider connecting straight to the
    transparent port is reset, over IPv4 and IPv6, while the LAN client's intercepted TCP
    goes through it; the SOCKS port refuses outsiders over IPv6 and IPv4-mapped alike; the
    implied DNS forwarder (on every address) drops outsiders' UDP queries unanswered and
    answers their TCP queries REFUSED, and answers the LAN.  Both counters move."""
    c, gw, inet, isp1 = alab["client"], alab["gw"], alab["inet"], alab["isp1"]
    d = Egressd.command(gw, egressd_bin, proxylab.dispatch_args(
        "-lhost", "::", "-lport", "1080", "-metrics-port", str(METRICS),
        "-gateway", "-gateway-ip", LAN, "-subnet", "10.20.0.0/24", "-auto-config",
        "-intercept", intercept, "-backup-file", gw.lab.dir / ("acl-%s.nft" % intercept)))
    try:
        d.wait_log(r"gateway: intercepting 1 subnet")
        # the transparent port: the LAN's intercepted TCP goes through, outsiders are reset
        assert curl(c, WEB) in ("inet 192.0.2.1", "inet 192.0.2.9")
        for node, host, src in (("inet", WAN, None), ("inet", LAN, None),
                                ("isp1", WAN, PRIVATE_OUTSIDE), ("isp1", WAN6, None)):
            assert_refused(alab[node], host, 8888, "raw", src)
        # the SOCKS/HTTP port on "::": IPv6 and IPv4-mapped
        assert_refused(isp1, WAN6, 1080, "socks5")
        assert_refused(inet, WAN, 1080, "socks5")
        assert curl(c, "--socks5", "[%s]:1080" % LAN6, WEB).startswith("inet 192.0.2.")
        assert curl(c, "--socks5", LAN + ":1080", WEB).startswith("inet 192.0.2.")
        # DNS: the LAN is answered over UDP and TCP ...
        for tcp in (False, True):
            r = dns_query(c, LAN, 5353, "web.test", "A", tcp=tcp)
            assert r["rcode"] == 0 and r["answers"] == 1, r
        # ... outsiders' UDP is dropped, their TCP answered REFUSED
        assert dns_probe(inet, WAN, 5353, tcp=False) == "timeout"
        assert dns_probe(inet, LAN, 5353, tcp=False) == "timeout"
        assert dns_probe(isp1, WAN6, 5353, tcp=False) == "timeout"
        assert dns_probe(isp1, WAN, 5353, tcp=False, src=PRIVATE_OUTSIDE) == "timeout"
        assert dns_probe(inet, WAN, 5353, tcp=True) == REFUSED
        assert dns_probe(isp1, WAN6, 5353, tcp=True) == REFUSED
        text = metrics(gw)
        assert sample(text, "egress_proxy_refused_total", reason="acl") == 6
        assert sample(text, "egress_dns_refused_total", reason="acl") == 6
        assert sample(text, "egress_dns_refused_total", reason="max_pending") == 0
        d.wait_log(r"dns: UDP query from 198\.51\.100\.2 refused: came in through an uplink "
                   r"interface \(isp1\)")
    finally:
        stop(d)


DNS_CONF = """
[dns]
address = ::
port = 5300
allow = %s

[uplink isp1]
source = %s
dns = %s
"""


@pytest.mark.daemon
def test_dns_allow_without_proxy(alab, egressd_bin):
    """The DNS forwarder alone, with [dns] allow: a LAN-side host outside the list hears
    REFUSED over UDP and TCP (it is not dropped: it did not come through an uplink); a
    reload that adds it to the list lets it in; an outsider stays refused."""
    c, gw, inet = alab["client"], alab["gw"], alab["inet"]
    conf = DNS_CONF % ("local", WAN, proxylab.DNS)
    d = Egressd.start(gw, egressd_bin, conf)
    try:
        assert dns_probe(c, LAN, 5300, tcp=False) == 0
        assert dns_probe(c, LAN, 5300, tcp=False, src=REMOTE) == REFUSED
        assert dns_probe(c, LAN, 5300, tcp=True, src=REMOTE) == REFUSED
        assert dns_probe(inet, WAN, 5300, tcp=False) == "timeout"
        d.write_conf(DNS_CONF % ("local, %s" % REMOTE, WAN, proxylab.DNS))
        d.reload()
        d.wait_log(r"reload 1: ")
        assert dns_probe(c, LAN, 5300, tcp=False, src=REMOTE) == 0
        assert dns_probe(c, LAN, 5300, tcp=True, src=REMOTE) == 0
        assert dns_probe(c, LAN, 5300, tcp=False) == 0
        assert dns_probe(inet, WAN, 5300, tcp=False) == "timeout"
        assert dns_probe(inet, WAN, 5300, tcp=True) == REFUSED
    finally:
        stop(d)
