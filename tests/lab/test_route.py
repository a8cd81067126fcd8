"""The route module: ECMP over the healthy gateways (gateway-route-manager, done right).

                                  +-- g1 (10.0.0.10, health :9999) --+
    lan -- gw (egressd) -- br0 ---+-- g2 (10.0.0.11, health :9999) --+-- inet (11.0.0.80: echo)
    .50.2   .50.1  10.0.0.1/24    +-- g3 (10.0.0.12, health :9999) --+

Each gateway masquerades towards inet, so the internet side sees which gateway carried a
flow.  gw's main table has its own default route via g1 (the "host's default route" that
fail-open falls back to).  egressd runs `egressd route -start-ip 10.0.0.10 -end-ip 10.0.0.12`
with short check periods so the tests run quickly.
"""

import json
import signal
import subprocess
import sys
import time

import pytest

from egressd import Egressd, api_args
from lab import wait_for

from routelab import (FAST, GWS, GWS6, HERE, LEAVE_WITHIN, NH_BASE, PRIO, SERVER, SERVER6,
                      TABLE, build)

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]


def nexthops(gw):
    return {nh["id"]: nh for nh in gw.json(["ip", "-j", "nexthop", "show"])}


def active(gw, family=4):
    """Gateways in egressd's group (resilient mode) or multipath route (fallback)."""
    nhs = nexthops(gw)
    group = nhs.get(NH_BASE + (0 if family == 4 else 1))
    if group is not None:
        return sorted(nhs[m["id"]]["gateway"] for m in group["group"])
    for r in table_routes(gw, family):
        if r.get("type", "unicast") != "unicast":
            continue
        if "nexthops" in r:
            return sorted(h["gateway"] for h in r["nexthops"])
        if "gateway" in r:
            return [r["gateway"]]
    return []


def table_routes(gw, family=4):
    """Routes in egressd's table; [] when the kernel has no such table (nothing in it)."""
    r = gw.run(["ip", "-%d" % family, "-j", "route", "show", "table", str(TABLE)], check=False)
    if r.returncode != 0:
        assert "does not exist" in r.stderr, r.stderr
        return []
    return json.loads(r.stdout)


def rules(gw, family=4):
    return [r for r in gw.json(["ip", "-%d" % family, "-j", "rule"])
            if r.get("priority") in (PRIO, PRIO + 1)]


def route_get(gw, dst):
    r = gw.run(["ip", "-j", "route", "get", dst], check=False)
    if r.returncode != 0:
        return {"error": r.stderr.strip()}
    return json.loads(r.stdout)[0]


def start(gw, egressd_bin, *args, ready=True):
    d = Egressd.start(gw, egressd_bin, "", args=["route"] + list(args))
    return d


def egressd_route(gw, egressd_bin, *extra):
    """egressd route over the three gateways, -c pointing at an empty file so the
    command line alone configures it (the subcommand reads no default file)."""
    conf = gw.lab.dir / "route.conf"
    conf.write_text("")
    argv = [str(egressd_bin), "route", "-d", "-start-ip", GWS[0], "-end-ip", GWS[2]] + FAST + \
        list(extra) + api_args(gw, "egressd")
    proc = gw.spawn_daemon(argv, name="egressd", log_match=r"egressd \S+ ready: ", timeout=10)
    return Egressd(gw, egressd_bin, conf, proc)


def wait_active(gw, want, family=4, timeout=LEAVE_WITHIN, what=None):
    wait_for(lambda: active(gw, family) == sorted(want), timeout=timeout,
             what=what or "gateways in the route to be %s" % sorted(want))


def test_all_healthy_gateways_are_nexthops(lab, egressd_bin):
    gw, health = build(lab)
    d = egressd_route(gw, egressd_bin)
    wait_active(gw, GWS, timeout=5)
    # one route per public prefix, all through our group, in our table
    routes = table_routes(gw)
    assert len(routes) == 116  # 0.0.0.0/0 minus the RFC 6890 set, in the fewest prefixes
    assert {r["dst"] for r in routes} >= {"1.0.0.0/8", "11.0.0.0/8", "8.0.0.0/7"}
    assert "10.0.0.0/8" not in {r["dst"] for r in routes}
    assert len(rules(gw)) == 2
    m = d.wait_log(r"route: spreading flows with (resilient nexthop groups|multipath routes)")
    assert m
    # traffic to the internet goes through the gateways, the LAN stays local
    assert route_get(gw, SERVER).get("table") == str(TABLE)  # main's default is a gateway too
    assert route_get(gw, "10.0.0.11").get("dev") == "br0"
    assert "gateway" not in route_get(gw, "10.0.0.11")
    assert d.stop() == 0
    d.assert_clean()
    # a clean stop removes what egressd added, and only that
    assert rules(gw) == []
    assert table_routes(gw) == []
    assert not [i for i in nexthops(gw) if NH_BASE <= i < NH_BASE + 0x10000]
    assert route_get(gw, "192.0.2.1")["gateway"] == "10.0.0.10"  # main's default untouched


def test_gateway_leaves_and_returns_with_hysteresis(lab, egressd_bin):
    gw, health = build(lab)
    d = egressd_route(gw, egressd_bin)
    wait_active(gw, GWS, timeout=5)

    d.set_mark()
    t0 = time.monotonic()
    health[2].stop()
    wait_active(gw, [GWS[0], GWS[2]], what="g2 to leave within %.1fs" % LEAVE_WITHIN)
    left = time.monotonic() - t0
    d.wait_log(r"uplink 10\.0\.0\.11: up -> down \(3 of 3 rounds failed")
    assert left <= LEAVE_WITHIN

    d.set_mark()
    health[2] = lab["g2"].http_server(9999, name="g2", bind="::")
    wait_active(gw, GWS, timeout=5, what="g2 to return")
    d.wait_log(r"uplink 10\.0\.0\.11: down -> up \(2 of 2 rounds passed")
    assert d.stop() == 0
    d.assert_clean()


BUCKET_SWEEP = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    for port in range(20000, 20000 + 8192):
        try:
            s.sendto(b"x", (sys.argv[1], port))
        except OSError:
            pass
    time.sleep(0.5)
"""


def bucket_owners(gw):
    """How many buckets of egressd's IPv4 resilient group each gateway holds."""
    nhs = nexthops(gw)
    owners = {}
    for b in gw.json(["ip", "-j", "nexthop", "bucket", "show", "id", str(NH_BASE)]):
        addr = nhs[b["bucket"]["nhid"]]["gateway"]
        owners[addr] = owners.get(addr, 0) + 1
    return owners


def test_resilient_timers_and_rejoin(lab, egressd_bin):
    """-idle-timer and -unbalanced-timer reach the resilient group; with a short idle timer
    a gateway that comes back gets its buckets once they have been idle that long (the
    kernel's default is 120 s)."""
    gw, health = build(lab)
    d = egressd_route(gw, egressd_bin, "-idle-timer", "2s", "-unbalanced-timer", "1m")
    wait_active(gw, GWS, timeout=5)
    args = nexthops(gw)[NH_BASE]["resilient_args"]
    assert (args["idle_timer"], args["unbalanced_timer"]) == (2, 60), args
    health[2].stop()
    wait_active(gw, [GWS[0], GWS[2]], what="g2 to leave")
    assert GWS[1] not in bucket_owners(gw)
    # keep every bucket busy while g2 comes back (8192 destination ports, hashed on L4,
    # every 0.5 s): a busy bucket does not move; then stop and let them go idle
    sender = gw.popen([sys.executable, "-c", BUCKET_SWEEP, SERVER], name="sweep")
    health[2] = lab["g2"].http_server(9999, name="g2", bind="::")
    wait_active(gw, GWS, timeout=5, what="g2 to return")
    sender.stop()
    wait_for(lambda: bucket_owners(gw).get(GWS[1], 0) > 0, timeout=20,
             what="g2 to get buckets back after the 2 s idle timer")
    assert d.stop() == 0
    d.assert_clean()


def test_single_lost_probe_does_not_remove(lab, egressd_bin):
    gw, health = build(lab)
    d = egressd_route(gw, egressd_bin)
    wait_active(gw, GWS, timeout=5)
    d.set_mark()
    # g3 drops exactly one new connection to its health port: one failed round
    lab["g3"].run(["nft", "-f", "-"], input=(
        "table inet once {\n chain in {\n type filter hook input priority 0;\n"
        " tcp dport 9999 ct state new numgen inc mod 1000000 == 0 counter drop\n }\n}\n"))
    wait_for(lambda: "packets 1" in lab["g3"].run(["nft", "list", "table", "inet", "once"]).stdout,
             timeout=5, what="one probe to g3 dropped")
    # several more rounds pass; g3 never leaves
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert active(gw) == GWS
        time.sleep(0.1)
    assert "10.0.0.12: up -> down" not in d.since_mark()
    assert d.stop() == 0
    d.assert_clean()


def flow(gw, dst, port=7000):
    p = gw.popen([sys.executable, str(HERE / "flowclient.py"), dst, str(port)], name="flow",
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    line = p.stdout.readline()
    assert line.startswith("connected"), line

    def ask(text):
        p.stdin.write(text + "\n")
        p.stdin.flush()
        return p.stdout.readline().strip()
    return p, ask


def test_long_lived_flow_survives_other_gateways(lab, egressd_bin):
    """A LAN client's connection forwarded by gw stays on its gateway while others come
    and go (resilient nexthop groups: only the leaving gateway's buckets move)."""
    gw, health = build(lab)
    d = egressd_route(gw, egressd_bin)
    wait_active(gw, GWS, timeout=5)
    p, ask = flow(lab["lan"], SERVER)
    who = ask("who")
    assert who.startswith("ok peer 172.16.")
    mine = int(who.split("172.16.")[1].split(".")[0])  # the gateway carrying the flow
    others = [i for i in (1, 2, 3) if i != mine]

    for other in others:
        health[other].stop()
        wait_active(gw, [g for i, g in enumerate(GWS, 1) if i not in (other,)],
                    what="g%d to leave" % other)
        for n in range(5):
            assert ask("ping %d" % n) == "ok ping %d" % n
        assert ask("who") == who  # still the same gateway: not re-hashed
        health[other] = lab["g%d" % other].http_server(9999, name="g%d" % other, bind="::")
        wait_active(gw, GWS, timeout=5, what="g%d to return" % other)
        assert ask("after %d" % other) == "ok after %d" % other
        assert ask("who") == who
    # negative: when the flow's own gateway leaves, the flow moves (and, NATed by another
    # gateway now, is reset) - so the checks above would see a move
    health[mine].stop()
    wait_active(gw, [g for i, g in enumerate(GWS, 1) if i != mine], what="g%d to leave" % mine)
    assert ask("moved?").startswith("error")
    p.stdin.close()
    assert d.stop() == 0
    d.assert_clean()


def test_reserved_and_excluded_use_main(lab, egressd_bin):
    gw, health = build(lab)
    d = egressd_route(gw, egressd_bin, "-exclude-cidr", "11.0.0.0/24", "-exclude-cidr",
                      "9.9.9.9")
    wait_active(gw, GWS, timeout=5)
    for dst in ("10.1.2.3", "192.168.1.1", "100.64.0.1", "203.0.113.5", "11.0.0.80",
                "9.9.9.9"):
        r = route_get(gw, dst)
        assert r.get("table", "main") == "main", (dst, r)
        assert r.get("gateway") == "10.0.0.10", (dst, r)  # main's default
    for dst in ("11.0.1.1", "9.9.9.10", "8.8.8.8"):
        r = route_get(gw, dst)
        assert r.get("table") == str(TABLE), (dst, r)
    assert d.stop() == 0
    d.assert_clean()


def test_fail_open_and_fail_closed(lab, egressd_bin):
    gw, health = build(lab)
    d = egressd_route(gw, egressd_bin, "-fail", "closed")
    wait_active(gw, GWS, timeout=5)
    for h in health.values():
        h.stop()
    wait_active(gw, [], what="every gateway to leave")
    r = route_get(gw, SERVER)
    assert "error" in r or r.get("type") == "prohibit", r
    # a connect is refused at once instead of leaking out through main's default route
    t0 = time.monotonic()
    c = gw.run(["curl", "-sS", "-m", "3", "http://%s:7000/" % SERVER], check=False)
    assert c.returncode != 0 and time.monotonic() - t0 < 1.0, c
    assert d.stop() == 0
    d.assert_clean()

    d = egressd_route(gw, egressd_bin)  # fail open: gateway-route-manager's behaviour
    d.wait_log(r"ready")
    wait_for(lambda: route_get(gw, SERVER).get("table", "main") == "main", timeout=5,
             what="traffic to fall through to main")
    assert table_routes(gw) == []
    assert d.stop() == 0
    d.assert_clean()


def test_restart_and_kill9_adopt_without_duplicates(lab, egressd_bin):
    gw, health = build(lab)
    d = egressd_route(gw, egressd_bin)
    wait_active(gw, GWS, timeout=5)
    before = table_routes(gw)
    d.signal(signal.SIGKILL)
    d.proc.wait(5)
    # the data plane keeps going without its control plane
    assert active(gw) == GWS
    assert route_get(gw, SERVER).get("table") == str(TABLE)

    health[3].stop()
    d = egressd_route(gw, egressd_bin)
    mode = d.wait_log(r"route: spreading flows with (resilient nexthop groups|multipath "
                      r"routes)").group(1)
    wait_active(gw, GWS[:2], timeout=LEAVE_WITHIN + 2)
    assert len(rules(gw)) == 2
    after = table_routes(gw)
    assert len(after) == len(before)
    ours = [i for i in nexthops(gw) if NH_BASE <= i < NH_BASE + 0x10000]
    # the two members and the group; the member of the gateway that left is gone (or, in the
    # fallback mode, none at all)
    assert len(ours) == (2 + 1 if mode.startswith("resilient") else 0), (mode, ours)
    # a plain restart too
    assert d.stop() == 0
    d.assert_clean()
    d = egressd_route(gw, egressd_bin, "-keep-routes")
    wait_active(gw, GWS[:2], timeout=5)
    assert d.stop() == 0
    assert len(rules(gw)) == 2  # kept on request
    d = egressd_route(gw, egressd_bin)
    wait_active(gw, GWS[:2], timeout=5)
    assert len(rules(gw)) == 2
    assert d.stop() == 0
    assert rules(gw) == []


def test_https_checks(lab, egressd_bin):
    gw, health = build(lab)
    for h in health.values():
        h.stop()
    key = lab.dir / "key.pem"
    cert = lab.dir / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=gateway.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    for i in (1, 2):
        lab["g%d" % i].nginx(9999, name="g%d" % i, tls=(cert, key))
    d = egressd_route(gw, egressd_bin, "-scheme", "https", "-tls-verify=false")
    wait_active(gw, GWS[:2], timeout=5)
    assert d.stop() == 0
    d.assert_clean()
    # with verification on, a self-signed certificate is not a healthy gateway
    d = egressd_route(gw, egressd_bin, "-scheme", "https", "-log-level", "debug")
    d.wait_log(r"certificate|SSL", timeout=5)
    assert active(gw) == []
    assert d.stop() == 0
    d.assert_clean()


def test_ipv6_gateways(lab, egressd_bin):
    gw, health = build(lab, v6=True)
    conf = gw.lab.dir / "route6.conf"
    conf.write_text("")
    argv = [str(egressd_bin), "route", "-d", "-gateway", GWS6[0], "-gateway", GWS6[1] + "@2",
            "-route", "::/0"] + FAST + api_args(gw, "egressd6")
    proc = gw.spawn_daemon(argv, name="egressd6", log_match=r"ready: ", timeout=10)
    d = Egressd(gw, egressd_bin, conf, proc)
    wait_active(gw, GWS6[:2], family=6, timeout=5)
    r = gw.json(["ip", "-6", "-j", "route", "get", SERVER6])[0]
    assert r.get("table") == str(TABLE)
    local = gw.json(["ip", "-6", "-j", "route", "get", "fd12::1"])[0]  # ULA: reserved
    assert local.get("table", "main") == "main" and local["gateway"] == GWS6[0]
    health[1].stop()
    wait_active(gw, [GWS6[1]], family=6)
    assert d.stop() == 0
    d.assert_clean()


def test_ipv6_only_gateways_default_route(lab, egressd_bin):
    """-route left at `default` with IPv6 gateways only: the IPv6 default, no IPv4 route
    through an IPv6 next hop, and the log says IPv4 keeps to the main table."""
    gw, health = build(lab, v6=True)
    conf = gw.lab.dir / "route6d.conf"
    conf.write_text("")
    argv = [str(egressd_bin), "route", "-d", "-gateway", GWS6[0], "-gateway", GWS6[1]] + FAST + \
        api_args(gw, "egressd6d")
    proc = gw.spawn_daemon(argv, name="egressd6d", log_match=r"ready: ", timeout=10)
    d = Egressd(gw, egressd_bin, conf, proc)
    wait_active(gw, GWS6[:2], family=6, timeout=5)
    assert d.wait_log(r"route: 2 gateways \(checked: 2 by http\), 0 IPv4 and [1-9]\d* IPv6 "
                      r"destination prefixes")
    assert d.wait_log(r"route: no IPv4 gateway: 'default' is the IPv6 default route only, "
                      r"IPv4 traffic keeps to the main table")
    assert table_routes(gw, 4) == []
    assert table_routes(gw, 6)
    assert gw.json(["ip", "-6", "-j", "route", "get", SERVER6])[0].get("table") == str(TABLE)
    assert route_get(gw, SERVER).get("table", "main") == "main"
    health[1].stop()
    wait_active(gw, [GWS6[1]], family=6)
    assert table_routes(gw, 4) == []
    assert d.stop() == 0
    d.assert_clean()


def test_route_agent_iptables_gateway(lab, egressd_bin):
    gw, health = build(lab)
    conf = gw.lab.dir / "agent.conf"
    conf.write_text("")
    argv = [str(egressd_bin), "route", "-d", "-iptables-gateway", GWS[0],
            "-iptables-gateway", GWS[1], "-check-period", "1s", "-timeout", "300ms",
            "-metrics-port", "0"] + api_args(gw, "agent")
    proc = gw.spawn_daemon(argv, name="agent", log_match=r"ready: ", timeout=10)
    d = Egressd(gw, egressd_bin, conf, proc)
    wait_active(gw, GWS[:2], timeout=5)
    assert "route: 2 gateways (checked: 2 by icmp)" in d.log()
    assert route_get(gw, "8.8.8.8").get("table") == str(TABLE)
    assert route_get(gw, "172.20.0.1").get("table", "main") == "main"
    # ICMP-checked: a gateway that stops answering ping leaves
    lab["g2"].sysctl(**{"net.ipv4.icmp_echo_ignore_all": 1})
    wait_active(gw, [GWS[0]])
    assert d.stop() == 0
    d.assert_clean()


def test_metrics(lab, egressd_bin):
    gw, health = build(lab)
    conf = gw.lab.dir / "m.conf"
    conf.write_text("")
    argv = [str(egressd_bin), "route", "-d", "-start-ip", GWS[0], "-end-ip", GWS[2],
            "-check-period", "1s", "-timeout", "300ms"] + api_args(gw, "egressd")
    # metrics on the default port, 9090
    proc = gw.spawn_daemon(argv, name="egressd", log_match=r"ready: ", port=9090, timeout=10)
    d = Egressd(gw, egressd_bin, conf, proc)
    wait_active(gw, GWS, timeout=5)
    wait_for(lambda: 'gateway_active_count 3' in gw.curl("http://127.0.0.1:9090/metrics").stdout,
             timeout=5, what="metrics to show 3 active gateways")
    text = gw.curl("http://127.0.0.1:9090/metrics").stdout
    for line in ("# TYPE gateway_health_check_total counter",
                 "# TYPE route_updates_total counter",
                 "# TYPE check_cycles_total counter",
                 "# TYPE gateway_active_count gauge",
                 "gateway_total_count 3",
                 "default_route_gateways_count 3",
                 'gateway_health_check_total{gateway_ip="10.0.0.10",status="success"}',
                 'consecutive_failures_count{gateway_ip="10.0.0.11"} 0',
                 "# TYPE route_update_duration_seconds histogram",
                 "# TYPE gateway_health_check_duration_seconds histogram",
                 'egress_uplink_up{uplink="10.0.0.12"} 1',
                 'http_requests_total{gateway_ip="10.0.0.10",status_code="200",method="GET"}',
                 "# TYPE http_request_duration_seconds histogram",
                 "# TYPE check_cycle_duration_seconds histogram",
                 "# TYPE application_start_time_seconds gauge",
                 "# TYPE application_uptime_seconds gauge"):
        assert line in text, line
    assert "check_cycle_duration_seconds_count 0" not in text
    assert "application_start_time_seconds 0" not in text
    assert 'status="failure"' not in text or \
        'gateway_health_check_total{gateway_ip="10.0.0.10",status="failure"} 0' in text
    health[1].stop()
    wait_for(lambda: 'gateway_active_count 2' in gw.curl("http://127.0.0.1:9090/metrics").stdout,
             timeout=LEAVE_WITHIN, what="metrics to show 2 active gateways")
    text = gw.curl("http://127.0.0.1:9090/metrics").stdout
    assert 'gateway_health_check_total{gateway_ip="10.0.0.10",status="failure"}' in text
    assert d.stop() == 0
    d.assert_clean()


def test_route_from_config_file_and_reload(lab, egressd_bin):
    gw, health = build(lab)
    conf = """
[route]
gateway = 10.0.0.10, 10.0.0.11@2
check_period = 1s
timeout = 300ms
"""
    d = Egressd.start(gw, egressd_bin, conf)
    wait_active(gw, GWS[:2], timeout=5)
    group = nexthops(gw)[NH_BASE]["group"]
    assert sorted(m.get("weight", 1) for m in group) == [1, 2]

    # a third gateway joins by reload; no restart, no gap
    d.write_conf(conf.replace("10.0.0.11@2", "10.0.0.11@2, 10.0.0.12"))
    d.reload()
    d.wait_log(r"uplink 10\.0\.0\.12: added")
    wait_active(gw, GWS, timeout=5)

    # without [route] the module stops and takes its routes and rules with it
    d.write_conf("[uplink isp]\ngateway = 10.0.0.10\n")
    d.reload()
    d.wait_log(r"route: routes and rules removed")
    assert rules(gw) == [] and table_routes(gw) == []
    assert d.alive()
    assert d.stop() == 0
    d.assert_clean()


# -- the route agent guarding an allowlist: fail closed, both families, seen from a client

# "who" to the echo server from a node: "peer <address the server saw>" or "error ..."
WHO = """import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 7000), timeout=3)
    s.sendall(b"who\\n")
    print(s.makefile().readline().strip())
except OSError as e:
    print("error", type(e).__name__, e)
"""


def who(node, dst):
    return node.run([sys.executable, "-c", WHO, dst], check=False, timeout=15).stdout.strip()


def client_ipv6(lab):
    """The LAN client gets IPv6 too (a ULA: reserved, so never a managed destination), and
    the gateways a way back to it."""
    lab["gw"].ip("addr", "add", "fd50::1/64", "dev", "lan0")
    lab["lan"].ip("addr", "add", "fd50::2/64", "dev", "eth0")
    lab["lan"].ip("-6", "route", "add", "default", "via", "fd50::1")
    for i in (1, 2, 3):
        lab["g%d" % i].ip("-6", "route", "add", "fd50::/64", "via", "2001:db8:a::1")
    # the control: without egressd both families leave by gw's main table, through g1
    lan = lab["lan"]
    wait_for(lambda: who(lan, SERVER6) == "peer fd00:1::1", timeout=10,
             what="IPv6 from the client through main's default (g1)")
    assert who(lan, SERVER) == "peer 172.16.1.1"


def route_agent(gw, egressd_bin, *args, name="agent"):
    conf = gw.lab.dir / (name + ".conf")
    conf.write_text("")
    argv = [str(egressd_bin), "route", "-d", "-check-period", "1s", "-timeout", "300ms"] + \
        list(args) + api_args(gw, name)
    # metrics on the route command's default port, 9090
    proc = gw.spawn_daemon(argv, name=name, log_match=r"ready: ", port=9090, timeout=10)
    return Egressd(gw, egressd_bin, conf, proc)


def refused_gauge(gw, family):
    text = gw.curl("http://127.0.0.1:9090/metrics").stdout
    for line in text.splitlines():
        if line.startswith('route_traffic_refused{family="%s"} ' % family):
            return int(line.split()[-1])
    raise AssertionError("no route_traffic_refused for %s in:\n%s" % (family, text))


def ping_off(node, off=True, family=4):
    key = "net.ipv4.icmp_echo_ignore_all" if family == 4 else "net.ipv6.icmp.echo_ignore_all"
    node.sysctl(**{key: 1 if off else 0})


def test_route_agent_fails_closed(lab, egressd_bin):
    """`egressd route -iptables-gateway` with IPv4 gateways only: public IPv4 from the client
    goes through them, public IPv6 is refused (not leaked by main's IPv6 default); when no
    gateway is in service IPv4 is refused too, said in the log and the metrics, and flows
    again when one returns."""
    gw, health = build(lab, v6=True)
    client_ipv6(lab)
    lan = lab["lan"]
    d = route_agent(gw, egressd_bin, "-iptables-gateway", GWS[0], "-iptables-gateway", GWS[1])
    wait_active(gw, GWS[:2], timeout=5)
    assert d.wait_log(r"route: 2 gateways \(checked: 2 by icmp\).*fail closed")
    assert d.wait_log(r"route: no IPv6 gateway: public IPv6 traffic is refused")
    assert who(lan, SERVER).startswith("peer 172.16.")
    assert who(lan, SERVER6).startswith("error"), "public IPv6 leaked through main"
    r = route_get(gw, SERVER6)
    assert "error" in r or r.get("type") == "prohibit", r
    assert gw.json(["ip", "-6", "-j", "route", "get", "fd50::2"])[0].get("table", "main") == \
        "main"
    wait_for(lambda: refused_gauge(gw, "ipv6") == 1, timeout=5, what="IPv6 refused gauge")
    assert refused_gauge(gw, "ipv4") == 0

    d.set_mark()
    for g in ("g1", "g2"):
        ping_off(lab[g])
    wait_active(gw, [], what="both gateways to leave")
    assert d.wait_log(r"route: no IPv4 gateway in service: IPv4 traffic to the managed "
                      r"destinations is refused \(fail closed\)")
    # g1 still forwards and main's default still points at it: refused all the same
    assert who(lan, SERVER).startswith("error"), "public IPv4 leaked through main"
    r = route_get(gw, SERVER)
    assert "error" in r or r.get("type") == "prohibit", r
    assert refused_gauge(gw, "ipv4") == 1

    d.set_mark()
    ping_off(lab["g2"], False)
    wait_active(gw, [GWS[1]], timeout=5, what="g2 to return")
    assert d.wait_log(r"route: IPv4 traffic flows again through 1 gateway")
    assert who(lan, SERVER) == "peer 172.16.2.1"
    assert refused_gauge(gw, "ipv4") == 0
    assert who(lan, SERVER6).startswith("error")
    assert d.stop() == 0
    d.assert_clean()
    # stopped: nothing of ours is left, the client leaves by main again
    assert table_routes(gw, 4) == [] and table_routes(gw, 6) == []
    assert who(lan, SERVER6) == "peer fd00:1::1"


def test_route_agent_ipv6_gateway(lab, egressd_bin):
    """An IPv6 gateway carries public IPv6 (not main's default, g1); when it leaves, IPv6 is
    refused while IPv4 keeps flowing through its own gateway."""
    gw, health = build(lab, v6=True)
    client_ipv6(lab)
    lan = lab["lan"]
    d = route_agent(gw, egressd_bin, "-iptables-gateway", GWS[0], "-iptables-gateway",
                    GWS6[1])
    wait_active(gw, [GWS[0]], timeout=5)
    wait_active(gw, [GWS6[1]], family=6, timeout=5)
    assert who(lan, SERVER6) == "peer fd00:2::1"  # through g2, not main's g1
    assert who(lan, SERVER) == "peer 172.16.1.1"
    assert refused_gauge(gw, "ipv6") == 0

    d.set_mark()
    ping_off(lab["g2"], family=6)
    wait_active(gw, [], family=6, what="the IPv6 gateway to leave")
    assert d.wait_log(r"route: no IPv6 gateway in service: IPv6 traffic to the managed "
                      r"destinations is refused")
    assert who(lan, SERVER6).startswith("error"), "public IPv6 leaked through main"
    assert who(lan, SERVER) == "peer 172.16.1.1"
    assert refused_gauge(gw, "ipv6") == 1 and refused_gauge(gw, "ipv4") == 0
    assert d.stop() == 0
    d.assert_clean()


def test_route_agent_fail_open(lab, egressd_bin):
    """-fail open keeps gateway-route-manager's fallback: with no gateway in service, and for
    IPv6 without an IPv6 gateway, traffic leaves by the main table."""
    gw, health = build(lab, v6=True)
    client_ipv6(lab)
    lan = lab["lan"]
    d = route_agent(gw, egressd_bin, "-iptables-gateway", GWS[1], "-fail", "open")
    wait_active(gw, [GWS[1]], timeout=5)
    assert d.wait_log(r"fail open")
    assert who(lan, SERVER) == "peer 172.16.2.1"
    assert who(lan, SERVER6) == "peer fd00:1::1"  # no IPv6 gateway: main, as before
    assert table_routes(gw, 6) == []
    ping_off(lab["g2"])
    wait_active(gw, [], what="g2 to leave")
    wait_for(lambda: who(lan, SERVER) == "peer 172.16.1.1", timeout=5,
             what="IPv4 to fall back to main's default (g1)")
    assert refused_gauge(gw, "ipv4") == 0 and refused_gauge(gw, "ipv6") == 0
    assert d.stop() == 0
    d.assert_clean()
