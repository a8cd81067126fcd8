"""egressd's health checks against real peers in a lab.

    gw:isp1 192.0.2.1/24 2001:db8:1::1/64 ---- isp1:eth0 192.0.2.2/24 2001:db8:1::2/64
                                                 namesrv :8080, nginx TLS :8443, dnsmasq :53
    gw:isp2 198.51.100.1/24 ------------------ isp2:eth0 198.51.100.2/24, lo 203.0.113.10
    (gw: 203.0.113.0/24 via isp2 in the main table, via isp1 in table 100 for fwmark 0x66)

egressd runs in gw.  Each kind (http, https with and without verification, tcp, icmp v4 and
v6, dns) brings its uplink up, loses it within the bound the settings promise when isp1 turns
into a black hole, and gets it back after `rise` rounds.  One lost probe changes nothing; a
down link needs rise good rounds; a target reachable only through another uplink never makes
an uplink up (interface, source address and mark all bind the probe); probe loss above
max_loss makes an uplink degraded.  Times come from egressd's own log timestamps.
"""

import re
import time
from datetime import datetime

import pytest

from egressd import Egressd, api_args
from lab import wait_for

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

SPEC = """
    gw:isp1 192.0.2.1/24 2001:db8:1::1/64 -- isp1:eth0 192.0.2.2/24 2001:db8:1::2/64
    gw:isp2 198.51.100.1/24 -- isp2:eth0 198.51.100.2/24
"""

# fast settings so the whole file stays short; the bounds below are computed from them
INTERVAL, FAILING, RECOVERING, TIMEOUT, FALL, RISE = 0.4, 0.2, 0.2, 0.15, 3, 3
TIMING = """interval = 400ms
interval_failing = 200ms
interval_recovering = 200ms
timeout = 150ms
fall = 3
rise = 3
"""
# worst case from the last good probe: one normal interval, then fall-1 failing ones, then
# the last probe's timeout; the scheduler on a loaded (ASan) build gets the margin
DOWN_MAX = INTERVAL + (FALL - 1) * FAILING + TIMEOUT + 0.5
DOWN_MIN = (FALL - 1) * FAILING + TIMEOUT - 0.05
UP_MAX = INTERVAL + (RISE - 1) * RECOVERING + 0.5
UP_MIN = (RISE - 1) * RECOVERING - 0.05

NGINX_TLS = """\
user root;
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    ssl_certificate {dir}/server.pem;
    ssl_certificate_key {dir}/server.key;
    server {{
        listen 8443 ssl default_server;
        return 421 "wrong host\\n";
    }}
    server {{
        listen 8443 ssl;
        server_name probe.test;
        location = / {{ return 200 "tls $host\\n"; }}
    }}
    server {{
        listen 8444 ssl;
        ssl_certificate {dir}/self.pem;
        ssl_certificate_key {dir}/self.key;
        location = / {{ return 200 "self-signed\\n"; }}
    }}
}}
"""


def make_pki(node, d):
    """With the openssl CLI: a lab CA, a certificate it signs for probe.test, a self-signed
    one for probe.test, and a hashed CA directory (d/cadir) that trusts the lab CA only."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    san = "subjectAltName=DNS:probe.test"
    node.run(["openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=Egress Lab CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-keyout", d / "ca.key", "-out", d / "ca.pem"])
    node.run(["openssl", "req", "-new", *ec, "-subj", "/CN=probe.test", "-keyout",
              d / "server.key", "-out", d / "server.csr"])
    (d / "ext.cnf").write_text(san + "\n")
    node.run(["openssl", "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.pem",
              "-CAkey", d / "ca.key", "-CAcreateserial", "-days", "2", "-extfile",
              d / "ext.cnf", "-out", d / "server.pem"])
    node.run(["openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=probe.test",
              "-addext", san, "-keyout", d / "self.key", "-out", d / "self.pem"])
    (d / "cadir").mkdir()
    (d / "cadir" / "egress-lab-ca.pem").write_bytes((d / "ca.pem").read_bytes())
    node.run(["openssl", "rehash", d / "cadir"])
    return d / "cadir"


def start_tls_server(node):
    """nginx on 8443 with a lab-CA certificate for probe.test (200 for Host probe.test, 421
    for any other) and on 8444 with a self-signed one.  Returns the CA directory."""
    d = node.lab.dir / ("%s.nginx-tls" % node.name)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    cadir = make_pki(node, d)
    (d / "nginx.conf").write_text(NGINX_TLS.format(dir=d))
    node.spawn_daemon(["nginx", "-p", str(d), "-c", str(d / "nginx.conf"), "-e", "stderr"],
                      name="nginx-tls", port=8443)
    return cadir


def start_trusting(node, binary, conf_text, cadir):
    """Egressd.start(), but egressd sees cadir as /etc/ssl/certs (libcurl's CA directory) in
    a private mount namespace of its own: it trusts the lab CA, and nothing on the host
    changes."""
    conf_path = node.lab.dir / ("%s.egressd.conf" % node.name)
    conf_path.write_text(conf_text)
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/ssl/certs && exec "$@"', str(cadir), str(binary), "-d",
            "-c", str(conf_path)] + api_args(node, "egressd")
    proc = node.spawn_daemon(argv, name="egressd", log_match=r"egressd \S+ ready: ")
    return Egressd(node, binary, conf_path, proc)


def uplink(name, kind, target, extra="", interface="isp1"):
    head = "[uplink %s]\n" % name
    if interface:
        head += "interface = %s\n" % interface
    return head + "check = %s\ncheck_target = %s\n%s%s\n" % (kind, target, extra, TIMING)


def log_time(line):
    return datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def wait_line(d, pattern, timeout=5.0):
    """Wait for a line (logged since the mark) matching pattern; return (line, its time)."""
    m = d.wait_log(pattern, timeout=timeout)
    text = d.since_mark()
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    line = text[start:end if end >= 0 else len(text)]
    return line, log_time(line)


def transitions(d, name):
    return re.findall(r"uplink %s: (\w+ -> \w+ \(.*\))" % re.escape(name), d.since_mark())


@pytest.fixture
def topo(lab):
    lab.apply(SPEC)
    return lab


GOOD = ["http", "https", "https_verify", "tcp", "icmp4", "icmp6", "dns"]
BAD = ["https_selfsigned", "https_wrongname", "https_nohost", "dns_refused"]


def test_every_kind_up_down_up(topo, egressd_bin):
    lab = topo
    gw, isp1 = lab["gw"], lab["isp1"]
    web = isp1.http_server(8080, bind="::")
    cadir = start_tls_server(isp1)
    isp1.dnsmasq("--address=/probe.test/192.0.2.9")
    conf = "[global]\nlog_level = debug\n\n" + "".join([
        uplink("http", "http", "192.0.2.2", "check_port = 8080\n"),
        uplink("https", "https", "192.0.2.2",
               "check_port = 8443\ncheck_host = probe.test\ncheck_tls_verify = false\n"),
        uplink("https_verify", "https", "192.0.2.2", "check_port = 8443\n"
               "check_host = probe.test\ncheck_tls_verify = true\n"),
        uplink("https_selfsigned", "https", "192.0.2.2", "check_port = 8444\n"
               "check_host = probe.test\ncheck_tls_verify = true\n"),
        uplink("https_wrongname", "https", "192.0.2.2", "check_port = 8443\n"
               "check_host = other.test\ncheck_tls_verify = true\n"),
        uplink("https_nohost", "https", "192.0.2.2",
               "check_port = 8443\ncheck_tls_verify = false\n"),
        uplink("tcp", "tcp", "192.0.2.2", "check_port = 8080\n"),
        uplink("icmp4", "icmp", "192.0.2.2"),
        uplink("icmp6", "icmp", "2001:db8:1::2"),
        uplink("dns", "dns", "192.0.2.2", "check_dns_name = probe.test\n"),
        uplink("dns_refused", "dns", "192.0.2.2", "check_dns_name = other.test\n"),
    ])
    d = start_trusting(gw, egressd_bin, conf, cadir)
    for name in GOOD:
        d.wait_log(r"uplink %s: init -> up \(first round passed\)" % name)
    # the negative twins: verification refuses a self-signed certificate and one for another
    # name; without check_host the Host header is the address and nginx answers 421;
    # dnsmasq refuses names it does not serve
    d.wait_log(r"uplink https_selfsigned: init -> down \(first round failed: tls: "
               r"SSL certificate problem: self-signed certificate\)")
    d.wait_log(r"uplink https_wrongname: init -> down \(first round failed: tls: .*"
               r"'other\.test'\)")
    d.wait_log(r"uplink https_nohost: init -> down \(first round failed: status 421\)")
    d.wait_log(r"uplink dns_refused: init -> down \(first round failed: rcode REFUSED\)")
    assert "IPv4 raw socket" in d.log() and "IPv6 raw socket" in d.log()

    # isp1 becomes a black hole: every kind goes down within its bound, none before fall rounds
    d.set_mark()
    t0 = time.time()
    lab.cut(gw, "isp1", mode="blackhole")
    t1 = time.time()
    for name in GOOD:
        line, at = wait_line(d, r"uplink %s: up -> down \(3 of 3 rounds failed: timeout\)"
                             % name, timeout=DOWN_MAX + 3)
        assert at - t0 <= DOWN_MAX, "%s: down after %.2fs > %.2fs" % (name, at - t0, DOWN_MAX)
        assert at - t1 >= DOWN_MIN, "%s: down after %.2fs < %.2fs" % (name, at - t1, DOWN_MIN)
    assert re.search(r"debug uplink http: check http 192\.0\.2\.2:8080: timeout", d.since_mark())
    assert re.search(r"uplink icmp6: check icmp 2001:db8:1::2: timeout", d.since_mark())
    for name in BAD:
        assert transitions(d, name) == []

    # and back after rise good rounds
    d.set_mark()
    t0 = time.time()
    lab.restore(gw, "isp1")
    t1 = time.time()
    for name in GOOD:
        line, at = wait_line(d, r"uplink %s: down -> up \(3 of 3 rounds passed\)" % name,
                             timeout=UP_MAX + 3)
        assert at - t0 <= UP_MAX, "%s: up after %.2fs > %.2fs" % (name, at - t0, UP_MAX)
        assert at - t1 >= UP_MIN, "%s: up after %.2fs < %.2fs" % (name, at - t1, UP_MIN)
    for name in BAD:
        assert transitions(d, name) == []

    # a stopped server: the kinds that use it go down, refused; the others stay up
    d.set_mark()
    web.stop()
    d.wait_log(r"uplink http: up -> down \(3 of 3 rounds failed: Connection refused\)")
    d.wait_log(r"uplink tcp: up -> down \(3 of 3 rounds failed: Connection refused\)")
    for name in ("https", "https_verify", "icmp4", "icmp6", "dns"):
        assert transitions(d, name) == []

    assert d.stop() == 0
    d.assert_clean()


def echo_counters(node):
    """Counters of the echo requests node received and of those it dropped."""
    data = node.json(["nft", "-j", "list", "table", "inet", "eg_once"])["nftables"]
    for item in data:
        if "rule" in item:
            counters = [e["counter"]["packets"] for e in item["rule"]["expr"] if "counter" in e]
            return counters[0], counters[1]
    raise AssertionError("no rule in table inet eg_once")


def test_one_lost_probe_link_down_and_reload(topo, egressd_bin):
    lab = topo
    gw, isp1 = lab["gw"], lab["isp1"]
    # ping (datagram) sockets where ping_group_range admits us
    gw.sysctl(**{"net.ipv4.ping_group_range": "0 2147483647"})
    conf = "[global]\nlog_level = debug\n\n" + uplink("a", "icmp", "192.0.2.2")
    d = Egressd.start(gw, egressd_bin, conf)
    d.wait_log(r"uplink a: init -> up \(first round passed\)")
    assert "uplink a: check icmp: IPv4 ping (datagram) socket" in d.log()

    # exactly one echo request is dropped (numgen counts the matching packets from 0)
    d.set_mark()
    isp1.run(["nft", "-f", "-"], input="table inet eg_once {\n chain in {\n  type filter hook "
             "input priority 0;\n  icmp type echo-request counter numgen inc mod 1000000 0 "
             "counter drop\n }\n}\n")
    wait_for(lambda: echo_counters(isp1)[0] >= 8, timeout=10,
             what="8 probes, the dropped one first")
    seen, dropped = echo_counters(isp1)
    assert dropped == 1
    assert len(re.findall(r"uplink a: check icmp 192\.0\.2\.2: timeout", d.since_mark())) == 1
    assert transitions(d, "a") == []

    # the link goes down: down at once; back up only after rise good rounds
    d.set_mark()
    lab.cut(gw, "isp1")
    d.wait_log(r"uplink a: up -> down \(link isp1 is down\)")
    d.set_mark()
    seen_down = echo_counters(isp1)[0]
    lab.restore(gw, "isp1")
    d.wait_log(r"uplink a: down -> up \(3 of 3 rounds passed\)", timeout=5)
    # not on the link event itself: three probes reached isp1 first
    assert echo_counters(isp1)[0] - seen_down >= 3
    assert "link isp1 is up" not in d.since_mark()

    # reload with another (dead) target: the engine follows the change
    d.write_conf(conf.replace("check_target = 192.0.2.2", "check_target = 192.0.2.99"))
    d.reload()
    d.wait_log(r"uplink a: changed: check settings")
    d.wait_log(r"uplink a: up -> down \(3 of 3 rounds failed: timeout\)")
    assert "192.0.2.99: timeout" in d.since_mark()
    assert d.stop() == 0
    d.assert_clean()


def test_probe_leaves_through_its_uplink(topo, egressd_bin):
    lab = topo
    gw, isp2 = lab["gw"], lab["isp2"]
    # 203.0.113.10 lives behind isp2 only; the mark 0x66 routes it to isp1 instead
    isp2.ip("addr", "add", "203.0.113.10/32", "dev", "lo")
    isp2.http_server(8080)
    gw.route("203.0.113.0/24", "via", "198.51.100.2")
    gw.ip("route", "add", "203.0.113.0/24", "via", "192.0.2.2", "table", "100")
    gw.ip("rule", "add", "fwmark", "0x66", "lookup", "100")
    tgt = "203.0.113.10"
    conf = "[global]\nlog_level = debug\n\n" + "".join([
        uplink("icmp_isp2", "icmp", tgt, interface="isp2"),
        uplink("icmp_isp1", "icmp", tgt, interface="isp1"),
        uplink("tcp_isp2", "tcp", tgt, "check_port = 8080\n", interface="isp2"),
        uplink("tcp_isp1", "tcp", tgt, "check_port = 8080\n", interface="isp1"),
        uplink("http_isp2", "http", tgt, "check_port = 8080\n", interface="isp2"),
        uplink("http_isp1", "http", tgt, "check_port = 8080\n", interface="isp1"),
        # no interface: the source address binds (isp2 has no route back to 192.0.2.1) ...
        uplink("src_isp2", "icmp", tgt, "source = 198.51.100.1\n", interface=None),
        uplink("src_isp1", "icmp", tgt, "source = 192.0.2.1\n", interface=None),
        uplink("dns_src_isp1", "dns", tgt, "source = 192.0.2.1\n", interface=None),
        # ... or the mark does
        uplink("nomark", "icmp", tgt, "gateway = 198.51.100.2\n", interface=None),
        uplink("mark_isp1", "icmp", tgt, "gateway = 192.0.2.2\ncheck_mark = 0x66\n",
               interface=None),
    ])
    d = Egressd.start(gw, egressd_bin, conf)
    for name in ("icmp_isp2", "tcp_isp2", "http_isp2", "src_isp2", "nomark"):
        d.wait_log(r"uplink %s: init -> up \(first round passed\)" % name)
    bad = ("icmp_isp1", "tcp_isp1", "http_isp1", "src_isp1", "dns_src_isp1", "mark_isp1")
    for name in bad:
        d.wait_log(r"uplink %s: init -> down \(first round failed: " % name)
    # several rounds later none of them has come up
    wait_for(lambda: all(len(re.findall(r"uplink %s: check \w+ [\d.:]+: " % n, d.log())) >= 6
                         for n in bad), timeout=10, what="6 failed probes of each")
    for name in bad:
        assert not re.search(r"uplink %s: \w+ -> up" % name, d.log()), name
    assert d.stop() == 0
    d.assert_clean()


def test_degraded_by_loss(topo, egressd_bin):
    lab = topo
    gw, isp1 = lab["gw"], lab["isp1"]
    # six targets, quorum 1: a round fails only when all six replies are lost (1/64 at 50%
    # loss), so three failed rounds in a row (down) is a one-in-260000 event
    targets = ["192.0.2.%d" % i for i in range(11, 17)]
    for t in targets:
        isp1.ip("addr", "add", t + "/24", "dev", "eth0")
    conf = """[global]
log_level = debug

[uplink a]
interface = isp1
check = icmp
check_target = %s
check_quorum = 1
interval = 200ms
interval_failing = 100ms
timeout = 100ms
window = 10
max_loss = 20
""" % ", ".join(targets)
    d = Egressd.start(gw, egressd_bin, conf)
    d.wait_log(r"uplink a: init -> up \(first round passed\)")
    # a full window of clean rounds: not degraded
    isp1.run(["nft", "-f", "-"], input="table inet eg_count {\n chain in {\n  type filter hook "
             "input priority 0;\n  icmp type echo-request counter\n }\n}\n")

    def requests():
        data = isp1.json(["nft", "-j", "list", "table", "inet", "eg_count"])["nftables"]
        return [e["counter"]["packets"] for i in data if "rule" in i
                for e in i["rule"]["expr"] if "counter" in e][0]
    wait_for(lambda: requests() >= len(targets) * 12, timeout=10, what="12 rounds")
    assert transitions(d, "a") == ["init -> up (first round passed)"]

    # half the replies lost: degraded (still usable), never down
    d.set_mark()
    isp1.netem("eth0", loss_pct=50)
    d.wait_log(r"uplink a: up -> degraded \(loss \d+% over 10 rounds > 20%\)", timeout=10)
    d.set_mark()
    isp1.netem("eth0")
    d.wait_log(r"uplink a: degraded -> up \(loss \d+% over 10 rounds <= 20%\)", timeout=10)
    assert "-> down" not in d.log()
    assert d.stop() == 0
    d.assert_clean()


def test_interface_made_again(lab, egressd_bin):
    """An interface that appears later, goes away and comes back with a new index: the
    uplink follows it each time (the ICMP socket is bound to the interface's index)."""
    gw, isp3 = lab.node("gw"), lab.node("isp3")
    conf = "[global]\nlog_level = debug\n\n" + uplink("a", "icmp", "203.0.113.2",
                                                      interface="isp3")
    d = Egressd.start(gw, egressd_bin, conf)
    d.wait_log(r"uplink a: init -> down \(interface isp3 does not exist\)")
    d.wait_log(r"uplink a: check icmp 203\.0\.113\.2: No such device")
    for _ in range(2):
        d.set_mark()
        # by hand, not lab.link(): the lab knows each interface name once
        gw.ip("link", "add", "isp3", "type", "veth", "peer", "name", "eth0", "netns", isp3.ns)
        gw.ip("addr", "add", "203.0.113.1/24", "dev", "isp3")
        isp3.ip("addr", "add", "203.0.113.2/24", "dev", "eth0")
        isp3.ip("link", "set", "eth0", "up")
        gw.ip("link", "set", "isp3", "up")
        d.wait_log(r"uplink a: down -> up \(3 of 3 rounds passed\)")
        d.set_mark()
        gw.ip("link", "del", "dev", "isp3")
        d.wait_log(r"uplink a: up -> down \((link isp3 is down|interface isp3 does not exist)\)")
    assert d.stop() == 0
    d.assert_clean()
