"""The proxy, DNS and gateway-mode modules end to end (`egressd dispatch`).

    client (10.20.0.2) -- gw (egressd dispatch 192.0.2.1@3 192.0.2.9@2) --+-- isp1 --+-- inet
                                                                           +-- isp2 --+

See tests/lab/proxylab.py: inet's nginx answers "inet <address it saw>", the echo server
"peer <address>", so each check tells which uplink carried the connection.
"""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import promtext
import proxylab
from egressd import Egressd
from lab import Lab, wait_for

pytestmark = pytest.mark.requires_root
HERE = Path(__file__).resolve().parent
P = proxylab.GW_LAN + ":1080"


@pytest.fixture(scope="module")
def plab():
    with Lab() as lab:
        proxylab.build(lab)
        yield lab


def start(lab, binary, *extra, ratio=("3", "2"), v6=False):
    args = proxylab.dispatch_args("-lhost", proxylab.GW_LAN, "-lport", "1080", *extra,
                                  ratio=ratio, v6=v6)
    return Egressd.command(lab["gw"], binary, args)


def stop(d):
    assert d.stop() == 0
    d.assert_clean()


def curl(node, *args, timeout=5, check=True):
    r = node.run(["curl", "-sS", "--max-time", str(timeout), *args], check=check,
                 timeout=timeout + 5)
    return r if not check else r.stdout.strip()


def flows(node, count, host=proxylab.SERVER, conc=4, bind=None, port=1080,
          proxy=proxylab.GW_LAN):
    args = [sys.executable, str(HERE / "socksflows.py"), proxy, str(port), host,
            "7000", str(count), str(conc)] + ([bind] if bind else [])
    return json.loads(node.run(args, timeout=120).stdout)


@pytest.mark.daemon
def test_protocols(plab, egressd_bin):
    """SOCKS5 (names resolved by the proxy, IPv6), SOCKS4/4a, HTTP CONNECT and plain HTTP on
    one port; each answer comes from one of gw's uplink addresses, never the client's."""
    c, gw = plab["client"], plab["gw"]
    d = start(plab, egressd_bin, v6=True)
    # source routing: per uplink a table, its route through the interface that holds the
    # address (isp2's address would otherwise leave by isp1), and two rules: main without
    # its default routes, then the table
    rules = gw.run(["ip", "rule", "list"]).stdout
    assert "5002:\tfrom 192.0.2.9 lookup main suppress_prefixlength 0 proto 235\n" \
        "5003:\tfrom 192.0.2.9 lookup 5001 proto 235\n" in rules, rules
    assert "default via 192.0.2.10 dev isp2" in gw.run(
        ["ip", "route", "show", "table", "5001"]).stdout
    assert "from 2001:db8:1::1 lookup 5002" in gw.run(["ip", "-6", "rule", "list"]).stdout
    try:
        uplinks = ("inet 192.0.2.1", "inet 192.0.2.9")
        assert curl(c, "--socks5-hostname", P, "http://web.test/") in uplinks
        assert curl(c, "--socks5", P, "http://11.0.0.80/") in uplinks
        # one uplink is IPv6: whatever the ratio picks, an IPv6 destination goes through it
        for _ in range(3):
            assert curl(c, "--socks5", P, "http://[2a00:1::80]/") == "inet 2001:db8:1::1"
        assert curl(c, "--socks4a", P, "http://web.test/") in uplinks
        assert curl(c, "--socks4", P, "http://11.0.0.80/") in uplinks
        assert curl(c, "-p", "-x", "http://" + P, "http://web.test/") in uplinks
        assert curl(c, "-x", "http://" + P, "http://web.test/") in uplinks
        # negatives: an unknown name is refused in each protocol's way
        r = curl(c, "--socks5-hostname", P, "http://nowhere.test/", check=False)
        assert r.returncode != 0
        r = c.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                   "-x", "http://" + P, "http://nowhere.test/"], check=False)
        assert r.stdout.strip() == "502"
        # not a proxy protocol at all: the connection is closed, egressd goes on
        r = c.run([sys.executable, "-c",
                   "import socket; s=socket.create_connection(('%s',1080)); "
                   "s.sendall(b'\\x00junk'); print(repr(s.recv(10)))" % proxylab.GW_LAN])
        assert r.stdout.strip() == "b''"
        assert curl(c, "--socks5-hostname", P, "http://web.test/") in uplinks
    finally:
        stop(d)
    # stop removes the rules and routes
    assert "proto 235" not in gw.run(["ip", "rule", "list"]).stdout
    assert "proto 235" not in gw.run(["ip", "-6", "rule", "list"]).stdout
    assert gw.run(["ip", "route", "show", "table", "5001"]).stdout.strip() == ""


@pytest.mark.daemon
def test_auth(plab, egressd_bin):
    """Username/password: SOCKS5 (RFC 1929) and HTTP Basic; wrong or missing credentials are
    refused, SOCKS4 (which has no password) too."""
    c = plab["client"]
    d = start(plab, egressd_bin, "-username", "alice", "-password", "s3cret")
    try:
        assert curl(c, "-x", "socks5h://alice:s3cret@" + P, "http://web.test/").startswith(
            "inet 192.0.2.")
        assert curl(c, "-x", "http://alice:s3cret@" + P, "http://web.test/").startswith(
            "inet 192.0.2.")
        assert curl(c, "-x", "socks5h://alice:wrong@" + P, "http://web.test/",
                    check=False).returncode != 0
        assert curl(c, "--socks5-hostname", P, "http://web.test/", check=False).returncode != 0
        assert curl(c, "--socks4a", P, "http://web.test/", check=False).returncode != 0
        r = c.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                   "-x", "http://" + P, "http://web.test/"], check=False)
        assert r.stdout.strip() == "407"
    finally:
        stop(d)


@pytest.mark.daemon
def test_contention_ratio(plab, egressd_bin):
    """1000 connections at 3:2 split 60/40 (within 5 points); at 1:4 the other way."""
    c = plab["client"]
    d = start(plab, egressd_bin)
    try:
        r = flows(c, 1000, conc=8)
        assert r["fail"] == 0, r
        share = r["peers"].get(proxylab.ADDR["isp1"], 0) / 1000
        assert abs(share - 0.6) <= 0.05, r
    finally:
        stop(d)
    d = start(plab, egressd_bin, ratio=("1", "4"))
    try:
        r = flows(c, 200, host="web.test")
        assert r["fail"] == 0, r
        share = r["peers"].get(proxylab.ADDR["isp1"], 0) / 200
        assert abs(share - 0.2) <= 0.05, r
    finally:
        stop(d)


@pytest.mark.daemon
def test_client_rules(plab, egressd_bin):
    """Per-client ratios from the fork's JSON file: the exact address beats the /24.  A slow
    connect is raced only to uplinks the client's rule allows: with isp1 blackholed, the
    client kept to isp1 fails rather than leave by isp2; the /24 gets through by isp2."""
    c, gw = plab["client"], plab["gw"]
    c.ip("addr", "add", "10.20.0.3/24", "dev", "eth0")
    rules = {
        "192.0.2.1:0": {
            "10.20.0.2": {"source_ip": "10.20.0.2", "contention_ratio": 1,
                          "description": "this one only through isp1"},
            "10.20.0.0/24": {"source_ip": "10.20.0.0/24", "contention_ratio": 1,
                             "description": "the rest of the LAN 1:4"},
        },
        "192.0.2.9:0": {
            "10.20.0.0/24": {"source_ip": "10.20.0.0/24", "contention_ratio": 4,
                             "description": "the rest of the LAN 1:4"},
        },
    }
    path = gw.lab.dir / "client-rules.json"
    path.write_text(json.dumps(rules))
    d = start(plab, egressd_bin, "-client-rules", str(path), "-connect-deadline", "2s")
    try:
        r = flows(c, 100, bind="10.20.0.2")
        assert r["fail"] == 0 and r["peers"] == {proxylab.ADDR["isp1"]: 100}, r
        r = flows(c, 200, bind="10.20.0.3")
        assert r["fail"] == 0, r
        assert abs(r["peers"].get(proxylab.ADDR["isp1"], 0) / 200 - 0.2) <= 0.05, r
        # no health check: isp1 stays usable, its connects hang, isp2 is raced after 300 ms
        plab.cut("gw", "isp1", mode="blackhole")
        r = flows(c, 8, bind="10.20.0.2")
        assert r["fail"] == 8 and r["peers"] == {}, r
        r = flows(c, 20, bind="10.20.0.3")
        assert r["fail"] == 0 and r["peers"] == {proxylab.ADDR["isp2"]: 20}, r
    finally:
        plab.restore("gw", "isp1")
        stop(d)
        c.ip("addr", "del", "10.20.0.3/24", "dev", "eth0")


@pytest.mark.daemon
def test_client_rules_reload_fails(plab, egressd_bin):
    """A reload whose client_rules file cannot be read keeps the running rules and applies
    the rest; the proxy goes on serving (it went back to the configuration the daemon had
    just freed: a use after free under ASan)."""
    c, gw = plab["client"], plab["gw"]
    rules = {"192.0.2.1:0": {"10.20.0.2": {"source_ip": "10.20.0.2", "contention_ratio": 1,
                                           "description": "only through isp1"}}}
    path = gw.lab.dir / "client-rules-reload.json"
    path.write_text(json.dumps(rules))
    d = start(plab, egressd_bin, "-client-rules", str(path))
    try:
        r = flows(c, 20, bind="10.20.0.2")
        assert r["fail"] == 0 and r["peers"] == {proxylab.ADDR["isp1"]: 20}, r
        path.unlink()
        d.reload()
        d.wait_log(r"client_rules .*No such file", timeout=10)
        d.wait_log(r"reload 1:", timeout=10)
        r = flows(c, 20, bind="10.20.0.2")
        assert r["fail"] == 0 and r["peers"] == {proxylab.ADDR["isp1"]: 20}, r
        d.reload()
        d.wait_log(r"reload 2:", timeout=10)
        r = flows(c, 20, bind="10.20.0.2")
        assert r["fail"] == 0 and r["peers"] == {proxylab.ADDR["isp1"]: 20}, r
    finally:
        stop(d)


@pytest.mark.daemon
def test_blackholed_uplink(plab, egressd_bin):
    """isp2 drops everything behind a live link: no connect takes over a second, none fails
    (the slow uplink is raced after 300 ms), and once the check says down, isp2 gets none."""
    c = plab["client"]
    d = start(plab, egressd_bin, "-check-kind", "icmp", "-check-target", proxylab.SERVER,
              "-check-interval", "300ms")
    try:
        d.wait_log(r"uplink 192\.0\.2\.9: init -> up", timeout=10)
        plab.cut("gw", "isp2", mode="blackhole")
        r = flows(c, 100, conc=4)
        assert r["fail"] == 0, r
        assert r["connect_max"] < 1.0, r
        d.wait_log(r"uplink 192\.0\.2\.9: up -> down", timeout=10)
        r = flows(c, 50)
        assert r["fail"] == 0 and r["peers"] == {proxylab.ADDR["isp1"]: 50}, r
        plab.restore("gw", "isp2")
        d.wait_log(r"uplink 192\.0\.2\.9: down -> up", timeout=10)
        r = flows(c, 50)
        assert r["peers"].get(proxylab.ADDR["isp2"], 0) == 20, r
    finally:
        plab.restore("gw", "isp2")
        stop(d)


@pytest.mark.daemon
def test_first_check_round(plab, egressd_bin):
    """An uplink not judged yet is tried by the proxy and the DNS forwarder (a restart does
    not refuse clients while the first check round runs, here 5 s against a blackholed
    port); once judged down it is not."""
    c, inet = plab["client"], plab["inet"]
    inet.run(["nft", "-f", "-"], input="table ip eg_test_drop {\n chain input {\n"
             "  type filter hook input priority 0; policy accept;\n"
             "  tcp dport 9 drop\n }\n}\n")
    conf = """
[proxy]
address = %s
port = 1080
resolver = %s

[uplink isp1]
source = %s
check = tcp
check_target = %s
check_port = 9
timeout = 5s
interval = 10s

[dns]
address = %s
""" % (proxylab.GW_LAN, proxylab.DNS, proxylab.ADDR["isp1"], proxylab.SERVER, proxylab.GW_LAN)
    d = Egressd.start(plab["gw"], egressd_bin, conf)
    try:
        assert "isp1: init -> " not in d.log()
        assert curl(c, "--socks5-hostname", P, "http://web.test/") == "inet 192.0.2.1"
        assert dns_query(c, proxylab.GW_LAN, 5353, "web.test", "A")["answers"] == 1
        d.wait_log(r"uplink isp1: init -> down", timeout=10)
        r = curl(c, "--socks5-hostname", P, "http://web.test/", check=False)
        assert r.returncode != 0
    finally:
        stop(d)
        inet.run(["nft", "delete", "table", "ip", "eg_test_drop"], check=False)


def samples(text, name):
    """{frozenset of (label, value): value} of metric `name` in a Prometheus text page."""
    out = {}
    for m in re.finditer(r"^%s(?:\{(.*)\})? (\S+)$" % re.escape(name), text, re.M):
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        out[labels] = float(m.group(2))
    return out


def sample(text, name, **labels):
    return samples(text, name).get(frozenset(labels.items()))


@pytest.mark.daemon
@pytest.mark.parametrize("intercept", ["redirect", "tproxy"])
def test_gateway_mode_ipv6(plab, egressd_bin, intercept):
    """IPv6 clients of gateway mode: TCP from a client with only a default route is taken
    by the transparent proxy (REDIRECT with SO_ORIGINAL_DST's IPv6 form, or IPv6 TPROXY)
    and leaves by the IPv6 uplink; IPv4 clients of the same run keep the IPv4 uplinks."""
    c, gw = plab["client"], plab["gw"]
    url6 = "http://[%s]/" % proxylab.SERVER6
    # negative first: the server has no route back to the LAN's IPv6 prefix
    assert curl(c, "-g", url6, timeout=2, check=False).returncode != 0
    d = Egressd.command(gw, egressd_bin, proxylab.dispatch_args(
        "-gateway", "-gateway-ip", proxylab.GW_LAN, "-subnet", "10.20.0.0/24,fd20::/64",
        "-auto-config", "-intercept", intercept, "-lport", "0",
        "-backup-file", gw.lab.dir / ("backup6-%s.nft" % intercept), v6=True))
    try:
        d.wait_log(r"gateway: intercepting 2 subnets")
        for _ in range(3):
            assert curl(c, "-g", url6) == "inet %s" % proxylab.ADDR6["isp1"]
        assert curl(c, "http://%s/" % proxylab.SERVER) in (
            "inet %s" % a for a in proxylab.ADDR.values())
    finally:
        stop(d)
    assert curl(c, "-g", url6, timeout=2, check=False).returncode != 0


HOLD_ONE = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), source_address=(sys.argv[4], 0))
s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(sys.argv[3]) + (7000).to_bytes(2, "big"))
assert s.recv(10)[1] == 0
s.sendall(b"who\n"); s.recv(100)
time.sleep(60)
"""


@pytest.mark.daemon
def test_metrics_per_uplink_and_client(plab, egressd_bin):
    """egress_proxy_* per uplink and egress_proxy_client_* per client address count the same
    connections and payload bytes (not the SOCKS reply: it is egressd's own); refused connects
    count as failures; client_metrics = false leaves the per-client series out."""
    c, gw = plab["client"], plab["gw"]
    c.ip("addr", "add", "10.20.0.3/24", "dev", "eth0")
    d = start(plab, egressd_bin, "-metrics-port", "9091")

    def page():
        return gw.curl("http://127.0.0.1:9091/metrics").stdout
    try:
        assert flows(c, 50, bind="10.20.0.2")["fail"] == 0
        assert flows(c, 10, bind="10.20.0.3")["fail"] == 0
        # a refused connect (nothing listens on port 9) is a failure of its client
        assert curl(c, "--socks5", P, "http://%s:9/" % proxylab.SERVER,
                    check=False).returncode != 0
        # "who\n" up, "peer 192.0.2.N\n" down (the 10-byte SOCKS5 reply does not count)
        want = {"10.20.0.2": (50, 200, 50 * 15), "10.20.0.3": (10, 40, 10 * 15)}
        wait_for(lambda: all(sample(page(), "egress_proxy_client_bytes_total", client=a,
                                    direction="down") == w[2] for a, w in want.items()),
                 what="client byte counters", timeout=5)
        text = page()
        for a, (n, up, down) in want.items():
            assert sample(text, "egress_proxy_client_connections_total", client=a) == n
            assert sample(text, "egress_proxy_client_connections_active", client=a) == 0
            assert sample(text, "egress_proxy_client_bytes_total", client=a,
                          direction="up") == up
        assert sample(text, "egress_proxy_client_connect_failures_total",
                      client="10.20.0.2") == 1
        assert sample(text, "egress_proxy_client_connect_failures_total",
                      client="10.20.0.3") == 0
        # the same traffic by uplink: 3:2 of it on each, the sums equal
        per_up = samples(text, "egress_proxy_connections_total")
        assert sorted(dict(k)["uplink"] for k in per_up) == sorted(proxylab.ADDR.values())
        assert sum(per_up.values()) == 60
        assert sum(v for k, v in samples(text, "egress_proxy_bytes_total").items()
                   if ("direction", "up") in k) == 240
        assert sum(v for k, v in samples(text, "egress_proxy_bytes_total").items()
                   if ("direction", "down") in k) == 60 * 15
        # an open connection counts as active, and its bytes count while it lasts
        held = c.popen([sys.executable, "-c", HOLD_ONE, proxylab.GW_LAN, "1080",
                        proxylab.SERVER, "10.20.0.3"], name="held")
        wait_for(lambda: sample(page(), "egress_proxy_client_bytes_total", client="10.20.0.3",
                                direction="down") == 11 * 15, what="open connection's bytes",
                 timeout=5)
        text = page()
        assert sample(text, "egress_proxy_client_connections_active", client="10.20.0.3") == 1
        assert sample(text, "egress_proxy_client_connections_total", client="10.20.0.3") == 11
        assert sample(text, "egress_proxy_client_bytes_total", client="10.20.0.3",
                      direction="up") == 11 * 4
        held.kill()
        held.wait()
        stop(d)
        d = start(plab, egressd_bin, "-metrics-port", "9091",
                  "-set", "proxy.client_metrics=false")
        assert flows(c, 5)["fail"] == 0
        text = page()
        assert sum(samples(text, "egress_proxy_connections_total").values()) == 5
        assert "egress_proxy_client_" not in text
    finally:
        stop(d)
        c.ip("addr", "del", "10.20.0.3/24", "dev", "eth0")


HOLD_UNTIL = r"""
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(sys.argv[3]) + (7000).to_bytes(2, "big"))
assert s.recv(10)[1] == 0
f = s.makefile("rwb", buffering=0)
f.write(b"who\n"); print(f.readline().decode().strip(), flush=True)
while not os.path.exists(sys.argv[4]):
    time.sleep(0.05)
f.write(b"who\n"); print(f.readline().decode().strip(), flush=True)
"""

RELOAD_CONF = """
[proxy]
address = %s
port = %%d
resolver = %s

[uplink isp1]
source = %s
weight = 3
""" % (proxylab.GW_LAN, proxylab.DNS, proxylab.ADDR["isp1"])
RELOAD_ISP2 = """
[uplink isp2]
source = %s
weight = %%d
""" % proxylab.ADDR["isp2"]


@pytest.mark.daemon
def test_reload(plab, egressd_bin):
    """SIGHUP: the listener moves to its new port, new connections follow the new uplinks
    (one removed) and a connection open across the reload carries on, even one through the
    removed uplink; a bad file changes nothing."""
    c, gw = plab["client"], plab["gw"]
    go = gw.lab.dir / "reload-go"
    d = Egressd.start(gw, egressd_bin, RELOAD_CONF % 1080 + RELOAD_ISP2 % 2)
    try:
        # two held connections: smooth 3:2 sends the first to isp1, the second to isp2
        held = [c.popen([sys.executable, "-c", HOLD_UNTIL, proxylab.GW_LAN, "1080",
                         proxylab.SERVER, str(go)], name="held", stdout=subprocess.PIPE,
                        text=True) for _ in range(2)]
        first = [h.stdout.readline().strip() for h in held]
        assert sorted(first) == sorted("peer " + a for a in proxylab.ADDR.values()), first
        r = flows(c, 50)
        assert r["fail"] == 0 and set(r["peers"]) == set(proxylab.ADDR.values()), r
        # isp2 gone and the listener on 1081
        d.write_conf(RELOAD_CONF % 1081)
        d.reload()
        d.wait_log(r"reload 1: ")
        r = flows(c, 50, port=1081)
        assert r["fail"] == 0 and r["peers"] == {proxylab.ADDR["isp1"]: 50}, r
        assert curl(c, "--socks5", P, "http://%s/" % proxylab.SERVER,
                    check=False).returncode != 0
        go.write_text("")
        for h, was in zip(held, first):
            assert h.stdout.readline().strip() == was  # the same connection, still there
            assert h.wait(5) == 0
        # a file with an error: the running configuration stays
        d.write_conf(RELOAD_CONF % 1082 + RELOAD_ISP2 % 0)
        d.reload()
        d.wait_log(r"reload failed, keeping the running configuration")
        assert flows(c, 10, port=1081)["fail"] == 0
    finally:
        stop(d)


@pytest.mark.daemon
def test_drained_uplink(plab, egressd_bin):
    """enabled = no drains an uplink: new connections avoid it while one already through it
    carries on; enabled again, it takes new connections again."""
    c, gw = plab["client"], plab["gw"]
    go = gw.lab.dir / "drain-go"
    conf = "[global]\nmetrics_port = 9100\nmetrics_address = 127.0.0.1\n" + RELOAD_CONF
    d = Egressd.start(gw, egressd_bin, conf % 1080 + RELOAD_ISP2 % 2)

    def enabled():
        text = gw.run(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:9100/metrics"]).stdout
        return {u: promtext.sample(text, "egress_uplink_enabled", uplink=u)
                for u in ("isp1", "isp2")}
    try:
        held = [c.popen([sys.executable, "-c", HOLD_UNTIL, proxylab.GW_LAN, "1080",
                         proxylab.SERVER, str(go)], name="held", stdout=subprocess.PIPE,
                        text=True) for _ in range(2)]
        first = [h.stdout.readline().strip() for h in held]
        assert sorted(first) == sorted("peer " + a for a in proxylab.ADDR.values()), first
        assert enabled() == {"isp1": 1, "isp2": 1}
        d.write_conf(conf % 1080 + RELOAD_ISP2 % 2 + "enabled = no\n")
        d.reload()
        d.wait_log(r"uplink isp2: changed: drained")
        d.wait_log(r"reload 1: ")
        assert enabled() == {"isp1": 1, "isp2": 0}
        r = flows(c, 50)
        assert r["fail"] == 0 and r["peers"] == {proxylab.ADDR["isp1"]: 50}, r
        # its health is still followed: a drained uplink is not a down one
        assert "uplink isp2: up -> down" not in d.log()
        go.write_text("")
        for h, was in zip(held, first):
            assert h.stdout.readline().strip() == was  # the one on isp2 too
            assert h.wait(5) == 0
        d.write_conf(conf % 1080 + RELOAD_ISP2 % 2 + "enabled = yes\n")
        d.reload()
        d.wait_log(r"uplink isp2: changed: enabled again")
        d.wait_log(r"reload 2: ")
        assert enabled() == {"isp1": 1, "isp2": 1}
        r = flows(c, 50)
        assert r["fail"] == 0 and set(r["peers"]) == set(proxylab.ADDR.values()), r
    finally:
        stop(d)


def dns_query(node, server, port, name, rdtype, tcp=False, payload=1232):
    code = """
import dns.message, dns.query, dns.flags, sys
q = dns.message.make_query(%r, %r, use_edns=%s, payload=%d)
f = dns.query.tcp if %s else dns.query.udp
r = f(q, %r, port=%d, timeout=3, ignore_trailing=True)
print(int(r.flags & dns.flags.TC != 0), r.rcode(), len(r.to_wire()),
      sum(len(rr) for rr in r.answer))
""" % (name, rdtype, "0" if payload else "False", payload or 512, tcp, server, port)
    out = node.run([sys.executable, "-c", code], timeout=15).stdout.split()
    return {"tc": out[0] == "1", "rcode": int(out[1]), "size": int(out[2]),
            "answers": int(out[3])}


@pytest.mark.daemon
def test_dns_forwarder(plab, egressd_bin):
    """UDP and TCP, an answer over 512 bytes whole over UDP with EDNS0, TC without it."""
    c, gw = plab["client"], plab["gw"]
    conf = """
[dns]
address = 10.20.0.1
port = 5300

[uplink isp1]
source = 192.0.2.1
dns = %s

[uplink isp2]
source = 192.0.2.9
dns = %s

[proxy]
port = 0
transparent_port = 18888
""" % (proxylab.DNS, proxylab.DNS)
    d = Egressd.start(gw, egressd_bin, conf)
    try:
        r = dns_query(c, proxylab.GW_LAN, 5300, "web.test", "A")
        assert r["rcode"] == 0 and r["answers"] == 1
        r = dns_query(c, proxylab.GW_LAN, 5300, "big.test", "TXT")
        assert r["size"] > 512 and not r["tc"] and r["answers"] == len(proxylab.BIG_TXT), r
        r = dns_query(c, proxylab.GW_LAN, 5300, "big.test", "TXT", tcp=True)
        assert r["size"] > 512 and r["answers"] == len(proxylab.BIG_TXT), r
        # without EDNS0 the client gets TC and retries over TCP, as RFC 1035 says
        r = dns_query(c, proxylab.GW_LAN, 5300, "big.test", "TXT", payload=0)
        assert r["tc"] and r["size"] <= 512, r
        r = dns_query(c, proxylab.GW_LAN, 5300, "nowhere.test", "A")
        assert r["rcode"] == 3  # NXDOMAIN passed through
    finally:
        stop(d)


def ruleset(node):
    return node.run(["nft", "-s", "list", "ruleset"]).stdout


@pytest.mark.daemon
@pytest.mark.parametrize("intercept", ["redirect", "tproxy"])
def test_gateway_mode(plab, egressd_bin, intercept):
    """Gateway mode end to end: a client with only a default route reaches the internet
    through the transparent proxy (TCP, balanced), the DNS forwarder (port 53 redirected) and
    NAT (UDP); the ruleset is saved first, other tables are left alone, and a restore puts the
    saved ruleset back exactly."""
    c, gw = plab["client"], plab["gw"]
    gw.run(["nft", "-f", "-"], input="table ip foreign {\n chain input {\n"
           "  type filter hook input priority 0; policy accept;\n"
           "  tcp dport 9 counter drop\n }\n}\n")
    before = ruleset(gw)
    backup = gw.lab.dir / ("backup-%s.nft" % intercept)
    # negative first: without gateway mode the server cannot answer the LAN's addresses
    assert curl(c, "http://11.0.0.80/", timeout=2, check=False).returncode != 0
    d = Egressd.command(gw, egressd_bin, [
        "dispatch", "-resolver", proxylab.DNS, "-gateway", "-gateway-ip", proxylab.GW_LAN,
        "-subnet", "10.20.0.0/24", "-auto-config", "-intercept", intercept,
        "-backup-file", backup, "-lport", "0",
        "%s@3" % proxylab.ADDR["isp1"], "%s@2" % proxylab.ADDR["isp2"]])
    try:
        d.wait_log(r"gateway: intercepting 1 subnet")
        assert backup.exists() and "table ip foreign" in backup.read_text()
        seen = set()
        for _ in range(10):
            out = curl(c, "http://11.0.0.80/")
            assert out in ("inet 192.0.2.1", "inet 192.0.2.9"), out
            seen.add(out)
        assert len(seen) == 2
        # the client's DNS goes to egressd's forwarder whatever server it asks
        r = c.run([sys.executable, "-c",
                   "import dns.resolver as R; r=R.Resolver(configure=False); "
                   "r.nameservers=['%s']; print(r.resolve('web.test','A')[0])" %
                   proxylab.GW_LAN])
        assert r.stdout.strip() == proxylab.SERVER
        # UDP that is not DNS is NATed out
        r = c.run([sys.executable, "-c",
                   "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                   "s.settimeout(3); s.sendto(b'who\\n', ('11.0.0.80', 7000)); "
                   "print(s.recv(100).decode().strip())"])
        assert r.stdout.strip().startswith("peer 192.0.2."), r.stdout
        assert "table ip foreign" in ruleset(gw)
        # restore: the saved ruleset, exactly
        r = gw.run([str(egressd_bin), "dispatch", "-restore", "-backup-file", str(backup)])
        assert ruleset(gw) == before
        assert curl(c, "http://11.0.0.80/", timeout=2, check=False).returncode != 0
    finally:
        stop(d)
        gw.run(["nft", "delete", "table", "ip", "foreign"], check=False)
    assert "egress" not in ruleset(gw)


def legacy_tables(node):
    """iptables-legacy-save and ip6tables-legacy-save as {(family, table): text}, without
    their comments and with the counters blanked (traffic moves them)."""
    tables = {}
    for family, cmd in (("ipv4", "iptables-legacy-save"), ("ipv6", "ip6tables-legacy-save")):
        name = None
        for line in node.run([cmd]).stdout.splitlines():
            if line.startswith("#"):
                continue
            if line.startswith("*"):
                name = (family, line[1:])
                tables[name] = ""
            elif name:
                tables[name] += re.sub(r"\[\d+:\d+\]", "[n:n]", line) + "\n"
    return tables


HOLD_LOCK = r"""
import fcntl, sys, time
f = open(sys.argv[1], "w")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(600)
"""


@pytest.mark.daemon
def test_gateway_waits_for_the_xtables_lock(plab, egressd_bin):
    """While another program holds iptables-legacy's lock, gateway mode's start waits for it
    on the loop: egressd goes on to be ready meanwhile, and the table comes after the backup
    once the lock is free; a lock held past 5 s stops egressd with the reason."""
    gw = plab["gw"]
    lock, held = gw.lab.dir / "xt.lock", gw.lab.dir / "xt.held"
    backup = gw.lab.dir / "backup-lock.nft"
    args = ["dispatch", "-resolver", proxylab.DNS, "-gateway", "-gateway-ip", proxylab.GW_LAN,
            "-subnet", "10.20.0.0/24", "-auto-config", "-backup-file", backup, "-lport", "0",
            "%s@1" % proxylab.ADDR["isp1"]]
    env = {"XTABLES_LOCKFILE": str(lock)}

    holder = gw.popen([sys.executable, "-c", HOLD_LOCK, lock, held], name="xtlock")
    wait_for(held.exists, what="the xtables lock to be held")
    d = Egressd.command(gw, egressd_bin, args, env=env)
    log = d.log()
    assert log.index("is held by another program: the backup, and then the table, wait") < \
        log.index(" ready: "), log
    assert not backup.exists()
    assert "egress_gateway" not in gw.run(["nft", "list", "tables"]).stdout
    holder.stop()
    d.wait_log(r"gateway: intercepting 1 subnet")
    assert backup.exists()
    stop(d)

    held.unlink()
    backup.unlink()
    holder = gw.popen([sys.executable, "-c", HOLD_LOCK, lock, held], name="xtlock2")
    wait_for(held.exists, what="the xtables lock to be held")
    d = Egressd.command(gw, egressd_bin, args, env=env)
    wait_for(lambda: d.proc.poll() is not None, timeout=15, what="egressd to give up")
    assert d.proc.returncode == 1
    assert "gave up after 5 s; not changing the firewall" in d.log()
    assert "gateway mode could not start: stopping" in d.log()
    assert not backup.exists()
    assert "egress_gateway" not in gw.run(["nft", "list", "tables"]).stdout
    holder.stop()


@pytest.mark.daemon
def test_gateway_backup_iptables_legacy(plab, egressd_bin):
    """A firewall in iptables-legacy: the backup holds its tables (IPv4 and IPv6, rules,
    chains, policies) beside the nftables ruleset; a restore that cannot finish changes
    nothing; a restore puts them back exactly and leaves a table that was not in use alone."""
    gw = plab["gw"]
    legacy = [
        ["iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"],
        ["iptables-legacy", "-N", "lanonly"],
        ["iptables-legacy", "-A", "lanonly", "-s", "10.20.0.0/24", "-j", "RETURN"],
        ["iptables-legacy", "-A", "lanonly", "-j", "LOG", "--log-prefix", "not-lan "],
        ["iptables-legacy", "-A", "FORWARD", "-j", "lanonly"],
        ["iptables-legacy", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/16",
         "-j", "MASQUERADE"],
        ["ip6tables-legacy", "-A", "INPUT", "-s", "2001:db8::/32", "-j", "DROP"],
    ]
    backup = gw.lab.dir / "backup-legacy.nft"
    d = None
    try:
        for cmd in legacy:
            gw.run(cmd)
        before, nft_before = legacy_tables(gw), ruleset(gw)
        assert {("ipv4", "filter"), ("ipv4", "nat"), ("ipv6", "filter")} <= set(before)
        d = Egressd.command(gw, egressd_bin, [
            "dispatch", "-resolver", proxylab.DNS, "-gateway", "-gateway-ip", proxylab.GW_LAN,
            "-subnet", "10.20.0.0/24", "-auto-config", "-backup-file", backup, "-lport", "0",
            "%s@1" % proxylab.ADDR["isp1"]])
        d.wait_log(r"gateway: intercepting 1 subnet")
        stop(d)
        d = None
        text = backup.read_text()
        for t in ("ipv4 filter", "ipv4 nat", "ipv6 filter"):
            assert "\n# xt-legacy %s " % t in text
        # the firewall changes after the backup: rules flushed, a chain gone, a policy, and
        # a table in use that was not before
        gw.run(["iptables-legacy", "-F"])
        gw.run(["iptables-legacy", "-X", "lanonly"])
        gw.run(["iptables-legacy", "-P", "FORWARD", "DROP"])
        gw.run(["ip6tables-legacy", "-F"])
        gw.run(["iptables-legacy", "-t", "mangle", "-A", "PREROUTING", "-j", "ACCEPT"])
        changed, nft_changed = legacy_tables(gw), ruleset(gw)
        # a backup whose last table the kernel does not have: refused, nothing changed
        bad = gw.lab.dir / "backup-legacy-bad.nft"
        bad.write_text(text.replace("# xt-legacy ipv6 filter ", "# xt-legacy ipv6 nosuch "))
        r = gw.run([str(egressd_bin), "dispatch", "-restore", "-backup-file", str(bad)],
                   check=False)
        assert r.returncode != 0 and "nosuch" in r.stderr, r.stderr
        assert legacy_tables(gw) == changed
        assert ruleset(gw) == nft_changed
        # the same where only filter is in use, as after boot: putting nat back brings it
        # into use, and undoing leaves it there (the kernel cannot unload it) but empty
        r = gw.run(["unshare", "-n", "sh", "-c",
                    'iptables-legacy -S >/dev/null || exit 99; '
                    '"$0" dispatch -restore -backup-file "$1"; echo "rc=$?"; '
                    'iptables-legacy-save -t nat', str(egressd_bin), str(bad)], check=False)
        assert "rc=0" not in r.stdout and "rc=" in r.stdout, (r.stdout, r.stderr)
        assert "*nat" in r.stdout and ":POSTROUTING ACCEPT" in r.stdout, r.stdout
        assert "MASQUERADE" not in r.stdout and "\n-A " not in r.stdout, r.stdout
        assert "nosuch" in r.stderr and "ipv4 nat" in r.stderr and "empty" in r.stderr, r.stderr
        # without the line the iptables-legacy tables follow, nft would take them for
        # comments: refused, the line named, nothing changed
        bad.write_text(text.replace("\n# iptables-legacy tables, put back",
                                    "\n# iptables legacy tables, put back"))
        r = gw.run([str(egressd_bin), "dispatch", "-restore", "-backup-file", str(bad)],
                   check=False)
        assert r.returncode != 0 and "line" in r.stderr, r.stderr
        assert legacy_tables(gw) == changed
        assert ruleset(gw) == nft_changed
        # a damaged line: refused before anything is touched, the line named
        bad.write_text(text.replace("# xt-legacy ipv4 nat 27 ", "# xt-legacy ipv4 nat 99 "))
        r = gw.run([str(egressd_bin), "dispatch", "-restore", "-backup-file", str(bad)],
                   check=False)
        assert r.returncode != 0 and "hooks" in r.stderr, r.stderr
        assert legacy_tables(gw) == changed
        # the restore: every saved table as it was, the unsaved one left
        r = gw.run([str(egressd_bin), "dispatch", "-restore", "-backup-file", str(backup)])
        after = legacy_tables(gw)
        assert after.pop(("ipv4", "mangle")) == changed[("ipv4", "mangle")]
        assert after == before
        assert ruleset(gw) == nft_before
        # what was there is a backup of its own; a second restore keeps the first's
        assert Path(str(backup) + ".before-restore").read_text().startswith(
            "# egress ruleset backup, saved ")
        first, restored = Path(str(backup) + ".before-restore").read_text(), legacy_tables(gw)
        gw.run([str(egressd_bin), "dispatch", "-restore", "-backup-file", str(backup)])
        assert Path(str(backup) + ".before-restore.1").read_text() == first
        assert legacy_tables(gw) == restored
    finally:
        if d:
            stop(d)
        for cmd in ("iptables-legacy", "ip6tables-legacy"):
            for table in ("filter", "nat", "mangle"):
                gw.run([cmd, "-t", table, "-F"], check=False)
                gw.run([cmd, "-t", table, "-X"], check=False)
            gw.run([cmd, "-P", "FORWARD", "ACCEPT"], check=False)


UDP_CLIENT = r"""
import socket, struct, sys
proxy = (sys.argv[1], int(sys.argv[2]))
t = socket.create_connection(proxy, timeout=5)
t.sendall(b"\x05\x01\x00"); assert t.recv(2) == b"\x05\x00"
t.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
rep = t.recv(10); assert rep[1] == 0, rep
relay = (socket.inet_ntoa(rep[4:8]), struct.unpack("!H", rep[8:10])[0])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
for target in (sys.argv[3], sys.argv[4]):
    if target[0].isdigit():
        head = b"\x00\x00\x00\x01" + socket.inet_aton(target)
    else:
        head = b"\x00\x00\x00\x03" + bytes([len(target)]) + target.encode()
    u.sendto(head + struct.pack("!H", 7000) + b"who\n", relay)
    data = u.recv(2048)
    assert data[:4] == b"\x00\x00\x00\x01", data
    print(data[10:].decode().strip())
def intruder(bind, label):
    x = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); x.settimeout(1)
    x.bind((bind, 0))
    x.sendto(b"\x00\x00\x00\x01" + socket.inet_aton(sys.argv[3]) + struct.pack("!H", 7000)
             + b"who\n", relay)
    try:
        print(label, "answered:", x.recv(2048))
    except socket.timeout:
        print(label, "ignored")
if len(sys.argv) > 5:
    # a stranger (another address of the client's host) gets nothing through the relay
    intruder(sys.argv[5], "stranger")
    # the client's own address, another port: the association is u's (it sent first)
    intruder(u.getsockname()[0], "other port")
"""


@pytest.mark.daemon
def test_socks5_udp_associate(plab, egressd_bin):
    """UDP ASSOCIATE: datagrams to an address and to a name go out through an uplink and
    the answers come back wrapped; a stranger's datagrams to the relay port are ignored, and
    so are the client's own from another port than the one it first sent from."""
    c, gw = plab["client"], plab["gw"]
    c.ip("addr", "add", "10.20.0.3/24", "dev", "eth0")
    d = start(plab, egressd_bin, "-metrics-port", "9091")
    try:
        r = c.run([sys.executable, "-c", UDP_CLIENT, proxylab.GW_LAN, "1080", proxylab.SERVER,
                   "web.test", "10.20.0.3"], timeout=20)
        lines = r.stdout.split("\n")
        assert len(lines) >= 3 and lines[0] == lines[1] and lines[0] in (
            "peer 192.0.2.1", "peer 192.0.2.9"), r.stdout
        assert lines[2] == "stranger ignored", r.stdout
        assert lines[3] == "other port ignored", r.stdout
        # the association counts like a connection: two "who\n" up, two answers down
        # (payloads, without the SOCKS headers)
        def page():
            return gw.curl("http://127.0.0.1:9091/metrics").stdout
        wait_for(lambda: sample(page(), "egress_proxy_client_connections_active",
                                client=proxylab.CLIENT) == 0, what="association closed")
        text = page()
        uplink = lines[0].split()[1]
        assert sample(text, "egress_proxy_connections_total", uplink=uplink) == 1
        assert sample(text, "egress_proxy_client_connections_total",
                      client=proxylab.CLIENT) == 1
        assert sample(text, "egress_proxy_client_bytes_total", client=proxylab.CLIENT,
                      direction="up") == 8
        assert sample(text, "egress_proxy_client_bytes_total", client=proxylab.CLIENT,
                      direction="down") == 2 * len("peer %s\n" % uplink)
        assert sample(text, "egress_proxy_bytes_total", uplink=uplink, direction="down") == 30
        assert sample(text, "egress_proxy_connections_active", uplink=uplink) == 0
    finally:
        stop(d)
        c.ip("addr", "del", "10.20.0.3/24", "dev", "eth0")


def tunnel_flows(node, count, port=1081):
    """Connections through the tunnel listener: raw bytes, "who" answered by the upstream."""
    code = """
import socket, sys
ok = fail = 0
for i in range(%d):
    try:
        with socket.create_connection(("%s", %d), timeout=5) as s:
            s.sendall(b"who\\n")
            ok += s.makefile("rb").readline().startswith(b"peer ")
    except OSError:
        fail += 1
print(ok, fail)
""" % (count, proxylab.GW_LAN, port)
    ok, fail = node.run([sys.executable, "-c", code], timeout=60).stdout.split()
    return int(ok), int(fail)


@pytest.mark.daemon
def test_tunnel_and_list(plab, egressd_bin):
    """-tunnel relays whole connections to upstream proxies (here two echo servers standing in
    for them); one that stops answering fails its TCP check and gets none, and no client
    connection fails meanwhile.  -list prints the interfaces and addresses."""
    c, gw, inet = plab["client"], plab["gw"], plab["inet"]
    out = gw.run([str(egressd_bin), "dispatch", "-list"]).stdout
    assert "[isp2] 192.0.2.9/29" in out and "[isp1] 2001:db8:1::1/64" in out, out
    second = inet.popen([sys.executable, str(HERE / "echosrv.py"), "7001", "::"],
                        name="echo7001")
    wait_for(lambda: inet.listening(7001), what="second upstream")
    d = Egressd.command(gw, egressd_bin, [
        "dispatch", "-tunnel", "-lhost", proxylab.GW_LAN, "-lport", "1081",
        "-check-interval", "300ms", "11.0.0.80:7000@1", "11.0.0.80:7001@1"])
    try:
        d.wait_log(r"uplink 11\.0\.0\.80:7001: init -> up", timeout=10)
        assert tunnel_flows(c, 20) == (20, 0)
        second.stop()
        assert tunnel_flows(c, 20) == (20, 0)  # refused by the dead one: the other is tried
        d.wait_log(r"uplink 11\.0\.0\.80:7001: up -> down", timeout=10)
        assert tunnel_flows(c, 20) == (20, 0)
    finally:
        stop(d)


LIMIT_CLIENT = r"""
import socket, struct, sys
def socks(port=7000):
    try:
        return connect(port)
    except OSError:
        return None
def connect(port):
    s = socket.create_connection((sys.argv[1], 1080), timeout=5)
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        return None
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("11.0.0.80") + struct.pack("!H", port))
    r = s.recv(10)
    return s if r[:2] == b"\x05\x00" else None
held = [socks() for _ in range(3)]
print(all(held))
print(socks() is None)
held.pop().close()
import time; time.sleep(0.3)
print(socks() is not None)
"""


@pytest.mark.daemon
def test_per_client_limit(plab, egressd_bin):
    """max_per_client: the connection over the limit is closed at once, and a slot that is
    freed can be used again."""
    c = plab["client"]
    d = start(plab, egressd_bin, "--set", "proxy.max_per_client=3")
    try:
        out = c.run([sys.executable, "-c", LIMIT_CLIENT, proxylab.GW_LAN], timeout=20).stdout
        assert out.split() == ["True", "True", "True"], out
        d.wait_log(r"client 10\.20\.0\.2 refused: max_per_client reached")
    finally:
        stop(d)


# Requests whose names resolve slowly (the resolver's answers are dropped for a while) or
# not at all; each mode prints what the client saw.
SLOW_CLIENT = r"""
import socket, struct, sys
gw, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def greet():
    s = socket.create_connection((gw, port), timeout=10)
    s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
    return s
def socks5(name, dport=7000, cmd=1):
    s = greet()
    s.sendall(bytes([5, cmd, 0, 3, len(name)]) + name.encode() + dport.to_bytes(2, "big"))
    return s
def until_eof(s):
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            return data
        data += b
if mode == "abandon":       # clients that leave while their name is being resolved
    for _ in range(20):
        socks5("web.test").close()
    s = greet()             # and a UDP association that does the same
    s.sendall(b"\x05\x03\x00\x01" + bytes(6))
    rep = s.recv(10); assert rep[1] == 0, rep
    relay = (socket.inet_ntoa(rep[4:8]), struct.unpack("!H", rep[8:10])[0])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for name in ("web.test", "a" * 64 + ".test"):     # slow; refused by the resolver at once
        u.sendto(b"\x00\x00\x00\x03" + bytes([len(name)]) + name.encode()
                 + struct.pack("!H", 7000) + b"who\n", relay)
    s.close()
    print("ok")
elif mode == "badname":     # a name the resolver refuses at once: one failure reply
    print(until_eof(socks5("a" * 64 + ".test")).hex())
elif mode == "bind":        # an unsupported command: one reply, "command not supported"
    print(until_eof(socks5("web.test", cmd=2)).hex())
elif mode == "early":       # data and EOF right behind the request reach the server
    s = socks5("web.test")
    s.sendall(b"who\n")
    s.shutdown(socket.SHUT_WR)
    data = until_eof(s)
    assert data[:2] == b"\x05\x00", data
    print(data[10:].decode().strip())
elif mode == "connect":     # HTTP CONNECT with data right behind the head: 200, then data
    s = socket.create_connection((gw, port), timeout=10)
    s.sendall(b"CONNECT %s:7000 HTTP/1.1\r\nHost: %s:7000\r\n\r\nwho\n"
              % (sys.argv[4].encode(), sys.argv[4].encode()))
    s.shutdown(socket.SHUT_WR)
    head, _, rest = until_eof(s).partition(b"\r\n\r\n")
    print(head.split(b"\r\n")[0].decode(), "|", rest.decode().strip())
"""

DNS_DROP = """table inet eg_dnsdrop {
    chain in {
        type filter hook input priority 0;
        udp dport 53 drop
        tcp dport 53 drop
    }
}
"""


@pytest.mark.daemon
def test_session_ends_while_resolving(plab, egressd_bin):
    """Sessions that end while their name is being resolved (TCP and UDP ASSOCIATE), names
    the resolver refuses at once, and data with EOF sent right behind the request while the
    name resolves: egressd answers each once, loses no byte and runs on (the ASan build
    catches any use of a freed session)."""
    c, inet = plab["client"], plab["inet"]
    d = start(plab, egressd_bin)
    dropped = False

    def client(*args, timeout=30):
        return c.run([sys.executable, "-c", SLOW_CLIENT, proxylab.GW_LAN, "1080", *args],
                     timeout=timeout).stdout.strip()
    try:
        inet.run(["nft", "-f", "-"], input=DNS_DROP)
        dropped = True
        assert client("abandon") == "ok"
        # SOCKS5 reply 4 (host unreachable), once, then EOF
        assert client("badname") == "05040001" + "00" * 6
        assert client("bind") == "05070001" + "00" * 6
        early = c.popen([sys.executable, "-c", SLOW_CLIENT, proxylab.GW_LAN, "1080", "early"],
                        name="early", stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)     # the request waits for its name; evdns asks again after 2 s
        inet.run(["nft", "delete", "table", "inet", "eg_dnsdrop"])
        dropped = False
        out, _ = early.communicate(timeout=20)
        assert early.returncode == 0 and out.strip() in (
            "peer 192.0.2.1", "peer 192.0.2.9"), out
        assert client("connect", proxylab.SERVER) in (
            "HTTP/1.1 200 Connection established | peer 192.0.2.1",
            "HTTP/1.1 200 Connection established | peer 192.0.2.9")
        assert curl(c, "--socks5-hostname", P, "http://web.test/").startswith("inet 192.0.2.")
    finally:
        if dropped:
            inet.run(["nft", "delete", "table", "inet", "eg_dnsdrop"], check=False)
        stop(d)


# Plain HTTP forwarding to a hostile origin (tests/lab/httporigin.py: it answers once the
# client side has been quiet, with what it received as the body, ignores "Connection: close"
# and appends a forged second response).  The client sends its parts (with a pause between
# them), then reads until EOF and writes what it got to stdout (in hex).
HTTP_CLIENT = r"""
import ast, socket, sys, time
gw, port, parts = sys.argv[1], int(sys.argv[2]), ast.literal_eval(sys.argv[3])
s = socket.create_connection((gw, port), timeout=5)
for i, p in enumerate(parts):
    if i:
        time.sleep(0.2)
    try:
        s.sendall(p)
    except OSError:
        pass
data = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
except OSError:
    pass
sys.stdout.write(data.hex())
"""
ORIGIN_PORT = 7100
ORIGIN = "%s:%d" % (proxylab.SERVER, ORIGIN_PORT)


def http_exchange(lab, *parts):
    """Start the hostile origin if it is not running yet; send parts through gw's proxy;
    return the bytes the client got, up to the proxy's close."""
    inet = lab["inet"]
    if not inet.listening(ORIGIN_PORT):
        inet.popen([sys.executable, str(HERE / "httporigin.py"), str(ORIGIN_PORT),
                    proxylab.SERVER], name="httporigin")
        wait_for(lambda: inet.listening(ORIGIN_PORT), what="hostile origin")
    r = lab["client"].run([sys.executable, "-c", HTTP_CLIENT, proxylab.GW_LAN, "1080",
                           repr(list(parts))], timeout=30)
    return bytes.fromhex(r.stdout.strip())


def length_response(body):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
        len(body), body)


@pytest.mark.daemon
def test_http_forwarding_stops_at_the_body(plab, egressd_bin):
    """Plain HTTP forwarding sends the origin one request: its head (rewritten) and its body
    (Content-Length), even when the body comes in parts; a pipelined request behind it or a
    later one on the same connection never reaches that origin (nor its credentials), while
    the origin's answer still reaches the client."""
    d = start(plab, egressd_bin)
    try:
        out = http_exchange(
            plab,
            b"POST http://%s/first HTTP/1.1\r\nContent-Length: 7\r\n\r\nwho\n" % ORIGIN.encode(),
            b"hi\nGET http://%s/second HTTP/1.1\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n"
            % ORIGIN.encode(),
            b"GET http://%s/third HTTP/1.1\r\n\r\n" % ORIGIN.encode())
        assert out == length_response(
            b"POST /first HTTP/1.1\r\nHost: %s\r\nContent-Length: 7\r\nConnection: close\r\n"
            b"\r\nwho\nhi\n" % ORIGIN.encode()), out
        for word in (b"second", b"third", b"Proxy-Authorization", b"c2VjcmV0", b"forged"):
            assert word not in out, out
    finally:
        stop(d)


@pytest.mark.daemon
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_http_forwarding_one_response(plab, egressd_bin, framing):
    """The origin's response is passed on up to the end of its body (Content-Length, or the
    chunked coding's last chunk and trailer, after a 100 Continue) and the client's
    connection closes there: the second response a hostile origin appends, which a
    keep-alive client would take for the answer to its next request, never reaches it."""
    d = start(plab, egressd_bin)
    try:
        out = http_exchange(plab, b"GET http://%s/%s HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"
                            % (ORIGIN.encode(), framing.encode()))
        req = b"GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (
            framing.encode(), ORIGIN.encode())
        if framing == "length":
            want = length_response(req)
        else:
            want = (b"HTTP/1.1 100 Continue\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    + b"%x\r\n" % len(req) + req + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
        assert out == want, out
        assert b"forged" not in out and out.count(b"HTTP/1.1 200") == 1, out
    finally:
        stop(d)


@pytest.mark.daemon
def test_http_chunked_request_body(plab, egressd_bin):
    """A chunked request body reaches the origin whole (its last chunk and trailer too, also
    when its lines come split across reads) and nothing after it: a request smuggled behind
    the body's end is dropped.  A malformed chunked body gets the client a 400."""
    d = start(plab, egressd_bin)
    try:
        head = b"POST http://%s/length HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" % (
            ORIGIN.encode())
        out = http_exchange(
            plab, head + b"5\r\nhel",
            b"lo\r\n1", b"0;ext=1\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\n\r\n"
            b"GET http://%s/smuggled HTTP/1.1\r\n\r\n" % ORIGIN.encode())
        assert out == length_response(
            b"POST /length HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\n10;ext=1\r\n0123456789abcdef\r\n"
            b"0\r\nX-Sum: 1\r\n\r\n" % ORIGIN.encode()), out
        assert b"smuggled" not in out, out
        out = http_exchange(plab, head + b"5\r\nhello\r\nzz\r\n")
        assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out
        assert b"forged" not in out and b"hello" not in out, out
    finally:
        stop(d)


@pytest.mark.daemon
def test_restart_with_fewer_uplinks(plab, egressd_bin):
    """What an earlier run made for an uplink the new run does not have (its source rule and
    its table's route) is gone as soon as the new run has started, not at its stop."""
    gw = plab["gw"]
    d = start(plab, egressd_bin, v6=True)  # three uplinks: the third is isp1's IPv6 address
    assert "from 2001:db8:1::1 lookup 5002" in gw.run(["ip", "-6", "rule", "list"]).stdout
    assert gw.run(["ip", "-6", "route", "show", "table", "5002"]).stdout.strip()
    d.signal(signal.SIGKILL)  # it leaves its rules and routes behind
    d.proc.wait(10)
    d = start(plab, egressd_bin)  # two uplinks
    try:
        assert "from 2001:db8:1::1" not in gw.run(["ip", "-6", "rule", "list"]).stdout
        assert gw.run(["ip", "-6", "route", "show", "table", "5002"]).stdout.strip() == ""
        # negative: the uplinks it has keep theirs
        assert "from 192.0.2.9 lookup 5001" in gw.run(["ip", "rule", "list"]).stdout
        assert gw.run(["ip", "route", "show", "table", "5001"]).stdout.strip()
    finally:
        stop(d)
    assert "proto 235" not in gw.run(["ip", "rule", "list"]).stdout


@pytest.mark.daemon
def test_lan_client_on_the_uplink_address(plab, egressd_bin):
    """A LAN client that connects to gw on an uplink's address (a SOCKS client set up with
    gw's WAN address) is answered: the replies from that address follow main's route back
    to the LAN, only main's default gives way to the uplink's table.  The proxy's own
    connections from isp2's address still leave by isp2 while main's default goes through
    isp1, which here refuses anything from that address."""
    c, gw, isp1 = plab["client"], plab["gw"], plab["isp1"]
    d = Egressd.command(gw, egressd_bin, proxylab.dispatch_args(
        "-lhost", "::", "-lport", "1080", ratio=("1", "4"), v6=True))
    isp1.ip("rule", "add", "from", proxylab.ADDR["isp2"], "prohibit")
    try:
        uplinks = ("inet 192.0.2.1", "inet 192.0.2.9")
        for a in (proxylab.ADDR["isp1"], proxylab.ADDR["isp2"]):
            assert curl(c, "--socks5", a + ":1080", "http://11.0.0.80/") in uplinks, a
        v6 = "[%s]:1080" % proxylab.ADDR6["isp1"]
        assert curl(c, "--socks5", v6, "http://[2a00:1::80]/") == "inet 2001:db8:1::1"
        # negative: gw's own connections from isp2's address take isp2's table, not main
        route = gw.run(["ip", "route", "get", proxylab.SERVER, "from",
                        proxylab.ADDR["isp2"]]).stdout
        assert "dev isp2" in route, route
        # 1:4, through the proxy on isp2's address: isp2's share comes out of isp2 (through
        # isp1 it would be refused and raced to isp1's address)
        r = flows(c, 100, proxy=proxylab.ADDR["isp2"])
        assert r["fail"] == 0, r
        assert r["peers"].get(proxylab.ADDR["isp2"], 0) >= 60, r
    finally:
        isp1.ip("rule", "del", "from", proxylab.ADDR["isp2"], "prohibit")
        stop(d)
