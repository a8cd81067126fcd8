"""Every module in one egressd: route, policy, proxy, DNS forwarder and gateway mode.

    client1 10.10.1.2 -- lan0  gw  isp1 192.0.2.1  -- isp1 --+
      (policy LAN: balanced;       isp2 192.0.2.9  -- isp2 --+-- inet 11.0.0.80: echo :7000,
       SOCKS to 10.10.1.1:1080,    isp3 192.0.2.17 -- isp3 --+      DNS :53 (web.test)
       DNS to 10.10.1.1:5353)
    client2 10.10.2.2 -- lan1      br0 10.0.0.1 --+-- g1 10.0.0.10 (health :9999) --+-- corp
      (gateway mode: TCP to the                   +-- g2 10.0.0.11 (health :9999) --+  11.30.0.80:
       proxy, DNS to the forwarder,                                                    echo :7000
       the rest masqueraded)

The ISPs and inet are policylab.py's (three uplinks, weights 3:2:1, inet sees which of gw's
addresses a flow came from).  Each ISP uplink has an interface and gateway (the policy
module's tables), a source address (the proxy's source routing) and a resolver (the DNS
forwarder's upstreams).  The route module sends 11.30.0.0/16 over g1 and g2, which
masquerade, so corp sees which gateway carried a flow.

One configuration, written as a user would from README and egress.conf(5).  The test checks
that each module does its job with real traffic, that a reload of each module's section
leaves the other modules' kernel state byte-identical, and that a stop leaves gw as it was
before the start.
"""

import collections
import json
import re
import sys

import pytest

import policylab
import promtext
from apiclient import ApiClient
from egressd import Egressd
from lab import host_state, kernel_state, state_diff, wait_for
from policylab import ADDR, HERE, SERVER, UPLINK_OF, tcp_shares

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

CORP = "11.30.0.80"
CORP_VIA = {"172.16.1.1": "g1", "172.16.2.1": "g2"}  # g1's and g2's masqueraded addresses
CORP_NAT = """table ip nat {
    chain post {
        type nat hook postrouting priority 100;
        oifname eth1 masquerade
    }
}
"""

CONF = """
[global]
log_level = info

[route]
; the corporate network through two gateways, each checked
gateway = 10.0.0.10, 10.0.0.11
route = 11.30.0.0/16
port = 9999
check_period = 1s
timeout = 300ms

[balance]
lan = lan0

[policy balanced]
member = isp1, isp2, isp3

[uplink isp1]
interface = isp1
gateway = 192.0.2.2
source = 192.0.2.1
dns = 11.0.0.80
weight = 3
masquerade = yes
check = icmp
check_target = 198.51.100.2
interval = 300ms
interval_failing = 200ms
timeout = 200ms

[uplink isp2]
interface = isp2
gateway = 192.0.2.10
source = 192.0.2.9
dns = 11.0.0.80
weight = 2
masquerade = yes
check = icmp
check_target = 198.51.100.18
interval = 300ms
interval_failing = 200ms
timeout = 200ms

[uplink isp3]
interface = isp3
gateway = 192.0.2.18
source = 192.0.2.17
dns = 11.0.0.80
weight = 1
masquerade = yes
check = icmp
check_target = 198.51.100.34
interval = 300ms
interval_failing = 200ms
timeout = 200ms

[proxy]
address = 10.10.1.1
port = 1080

[dns]
address = ::
port = 5353

[gateway]
address = 10.10.2.1
subnet = 10.10.2.0/24
auto_config = yes
backup_file = %(backup)s
"""

# Each module's footprint in the kernel (egress.conf(5): the defaults keep them apart).
ROUTE = dict(prios=[(4500, 4501)], tables=[4501], nexthops=True)
POLICY = dict(prios=[(4600, 4855)], nft=[("inet", "egress")])
PROXY = dict(prios=[(5000, 5511)])  # two rules per uplink, up to 256 uplinks
GATEWAY = dict(nft=[("inet", "egress_gateway")])
MODULES = {"route": ROUTE, "policy": POLICY, "proxy": PROXY, "gateway": GATEWAY, "dns": {}}

# A reload per section: (section, module, old line, new line, what shows it is applied).
RELOADS = [
    ("route", "route", "route = 11.30.0.0/16", "route = 11.30.0.0/16, 11.40.0.0/16",
     lambda gw: "11.40.0.0/16" in gw.run(["ip", "route", "show", "table", "4501"]).stdout),
    ("balance", "policy", "lan = lan0", "lan = lan0\noutput = yes",
     lambda gw: "type route hook output" in gw.run(["nft", "list", "table", "inet",
                                                    "egress"]).stdout),
    ("policy balanced", "policy", "member = isp1, isp2, isp3", "member = isp1, isp2@5, isp3",
     None),
    ("proxy", "proxy", "port = 1080", "port = 1080\nrule_priority = 5010",
     lambda gw: "5010:" in gw.run(["ip", "rule"]).stdout),
    ("dns", "dns", "port = 5353", "port = 5353\ncache_size = 16", None),
    ("gateway", "gateway", "subnet = 10.10.2.0/24", "subnet = 10.10.2.0/24\n"
     "transparent_port = 8889",
     lambda gw: "redirect to :8889" in gw.run(["nft", "list", "table", "inet",
                                               "egress_gateway"]).stdout),
]


def build(lab):
    """policylab's ISPs and LANs, dnsmasq in inet, the route module's gateways and corp."""
    gw = policylab.build(lab)
    inet = lab["inet"]
    inet.dnsmasq("--listen-address=" + SERVER, "--bind-interfaces",
                 "--address=/web.test/" + SERVER, "--local=/test/")
    lab.apply("""
        gw:p1 -- g1:eth0 10.0.0.10/24
        gw:p2 -- g2:eth0 10.0.0.11/24
        g1:eth1 172.16.1.1/24 -- corp:g1 172.16.1.2/24
        g2:eth1 172.16.2.1/24 -- corp:g2 172.16.2.2/24
        g1 forward
        g2 forward
        g1 route 11.30.0.0/16 via 172.16.1.2
        g2 route 11.30.0.0/16 via 172.16.2.2
        g1 route 10.10.0.0/16 via 10.0.0.1
        g2 route 10.10.0.0/16 via 10.0.0.1
    """)
    gw.ip_batch(["link add br0 type bridge", "link set br0 up", "link set p1 master br0",
                 "link set p2 master br0", "addr add 10.0.0.1/24 dev br0"])
    gw.sysctl(**{"net.ipv4.fib_multipath_hash_policy": 1})
    corp = lab["corp"]
    corp.ip("addr", "add", CORP + "/32", "dev", "lo")
    corp.popen([sys.executable, str(HERE / "echosrv.py"), "7000"], name="corp-echo")
    for g in ("g1", "g2"):
        lab[g].run(["nft", "-f", "-"], input=CORP_NAT)
        lab[g].http_server(9999, name=g)
    wait_for(lambda: corp.listening(7000), what="corp's echo server")
    return gw


def socks_flows(node, n):
    """n connections one after the other through the SOCKS listener, by uplink."""
    r = node.run([sys.executable, str(HERE / "socksflows.py"), "10.10.1.1", "1080", SERVER,
                  "7000", str(n), "1"], timeout=120)
    out = json.loads(r.stdout)
    c = collections.Counter({UPLINK_OF.get(a, a): k for a, k in out["peers"].items()})
    c["fail"] = out["fail"]
    return c


def dns_a(node, server, port, name):
    """The A records of name asked of server:port over UDP ("" when none)."""
    code = ("import dns.resolver as R; r = R.Resolver(configure=False); "
            "r.nameservers = [%r]; r.port = %d; r.lifetime = 4; "
            "print(' '.join(a.to_text() for a in r.resolve(%r, 'A')))" % (server, port, name))
    return node.run([sys.executable, "-c", code], timeout=15).stdout.strip()


def udp_who(node, dst=SERVER):
    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.settimeout(3); s.sendto(b'who\\n', (%r, 7000)); "
            "print(s.recv(100).decode().strip())" % dst)
    return node.run([sys.executable, "-c", code], timeout=10).stdout.strip()


def others(gw, module):
    """The kernel state of every module but `module`, as {"MODULE WHAT": text}."""
    return {"%s %s" % (m, what): text for m, fp in MODULES.items() if m != module
            for what, text in kernel_state(gw, **fp).items()}


def start(gw, egressd_bin, conf):
    d = Egressd.start(gw, egressd_bin, conf)
    for u in ("isp1", "isp2", "isp3", "10.0.0.10", "10.0.0.11"):
        d.wait_log(r"uplink %s: init -> up" % u)
    d.wait_log(r"route: 2 of 2 gateways in service")
    d.wait_log(r"gateway: intercepting 1 subnet")
    policylab.wait_table(gw)
    return d


def test_every_module_in_one_daemon(lab, egressd_bin):
    gw = build(lab)
    c1, c2 = lab["client1"], lab["client2"]
    conf = CONF % {"backup": lab.dir / "ruleset-backup.nft"}
    # negative first: without egressd, corp is unreachable, client2 cannot reach inet (no NAT)
    # and nothing answers DNS on gw
    assert tcp_shares(c1, 1, dst=CORP) == {"fail": 1}
    assert tcp_shares(c2, 1) == {"fail": 1}
    before = host_state(gw)

    d = start(gw, egressd_bin, conf)
    try:
        # route: its group carries corp's prefix, over both gateways
        table = gw.run(["ip", "route", "show", "table", "4501"]).stdout
        assert "11.30.0.0/16 nhid" in table, table
        assert "group" in gw.run(["ip", "nexthop", "show"]).stdout
        c = tcp_shares(c1, 40, dst=CORP, names=CORP_VIA)
        assert set(c) == {"g1", "g2"}, c

        # policy: client1's connections to the internet leave by all three ISPs
        c = tcp_shares(c1, 60)
        assert set(c) == {"isp1", "isp2", "isp3"}, c

        # proxy: SOCKS from client1, spread exactly 3:2:1 over the uplinks' addresses
        c = socks_flows(c1, 60)
        assert c == {"isp1": 30, "isp2": 20, "isp3": 10, "fail": 0}, c

        # DNS forwarder: asked directly
        assert dns_a(c1, "10.10.1.1", 5353, "web.test") == SERVER

        # gateway mode: client2's TCP is taken by the proxy (main's default route alone
        # would use isp1 only), its DNS to any server reaches the forwarder, its UDP is NATed
        c = tcp_shares(c2, 30)
        assert set(c) == {"isp1", "isp2", "isp3"}, c
        assert dns_a(c2, "198.51.100.2", 53, "web.test") == SERVER
        assert udp_who(c2) == "peer " + ADDR["isp1"]

        # a reload of each section leaves the other modules' kernel state as it was (and the
        # snapshots do see each module's rules, tables and nftables tables)
        for m, fp in MODULES.items():
            seen = kernel_state(gw, **fp)
            assert all(v and v != "absent" for k, v in seen.items() if not k.endswith("-6")), \
                (m, seen)
        text = conf
        for n, (section, module, old, new, applied) in enumerate(RELOADS, 1):
            assert text.count(old) == 1, old
            was = others(gw, module)
            text = text.replace(old, new)
            d.write_conf(text)
            d.reload()
            d.wait_log(r"reload %d: " % n)
            d.wait_log(r"egressd \S+ reloaded: ")
            if applied:
                wait_for(lambda: applied(gw), what="[%s] reload applied" % section)
            assert not state_diff(was, others(gw, module)), \
                "a reload of [%s] changed another module's kernel state" % section
            assert "reload failed" not in d.since_mark()

        # and every module still does its job
        assert set(tcp_shares(c1, 40, dst=CORP, names=CORP_VIA)) == {"g1", "g2"}
        assert set(tcp_shares(c1, 60)) == {"isp1", "isp2", "isp3"}
        assert set(tcp_shares(c2, 30)) == {"isp1", "isp2", "isp3"}
        assert dns_a(c2, "198.51.100.2", 53, "web.test") == SERVER
    finally:
        assert d.stop() == 0
    d.assert_clean()
    after = host_state(gw)
    assert not state_diff(before, after), "gw after stop differs from before start"


def test_dns_fallback_and_proxy_leave_route_gateways_alone(lab, egressd_bin):
    """Without resolvers of their own, the DNS forwarder asks [proxy] resolver through every
    uplink of the proxy - never through a gateway of [route], which has no address to send
    from (its queries took main's default route, counted as the gateway's)."""
    gw = build(lab)
    conf = (CONF % {"backup": lab.dir / "ruleset-backup.nft"}).replace(
        "dns = 11.0.0.80\n", "").replace(
        "[proxy]\n", "[proxy]\nresolver = 11.0.0.80\n").replace(
        "log_level = info\n", "log_level = info\nmetrics_port = 9100\n")
    d = start(gw, egressd_bin, conf)
    try:
        d.wait_log(r"dns: no resolvers configured: using \[proxy\] resolver's")
        for i in range(20):
            dns_a(lab["client2"], "198.51.100.2", 53, "n%d.web.test" % i)
        page = gw.run(["curl", "-sS", "http://127.0.0.1:9100/metrics"]).stdout
        used = {m.group(1) for m in re.finditer(
            r'^egress_dns_upstream_queries_total\{uplink="([^"]*)",[^}]*\} ([1-9]\d*)', page,
            re.M)}
        assert used and used <= {"isp1", "isp2", "isp3"}, page
    finally:
        assert d.stop() == 0
    d.assert_clean()


# Families each module must show once it has worked (promtext checks the rest of the text).
METRIC_FAMILIES = {
    "route": ["gateway_health_check_total", "gateway_health_check_duration_seconds",
              "gateway_active_count", "route_updates_total", "check_cycles_total"],
    "uplinks": ["egress_uplink_up", "egress_uplink_state", "egress_uplink_rtt_seconds",
                "egress_uplink_loss_ratio", "egress_uplink_transitions_total"],
    "proxy": ["egress_proxy_connections_active", "egress_proxy_connections_total",
              "egress_proxy_bytes_total", "egress_proxy_refused_total",
              "egress_proxy_client_connections_total"],
    "dns": ["egress_dns_queries_total", "egress_dns_upstream_queries_total",
            "egress_dns_pending", "egress_dns_cache_entries"],
    "api": ["egress_api_requests_total", "egress_api_request_duration_seconds",
            "egress_api_event_streams", "egress_api_logins_total",
            "egress_api_tokens_refused_total"],
}


def scrape(gw, port=9100):
    """(Content-Type, body) of GET /metrics on gw."""
    r = gw.curl("http://127.0.0.1:%d/metrics" % port, "-i")
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    ctype = re.search(r"^content-type: *(.*)$", head, re.M | re.I)
    return (ctype.group(1).strip() if ctype else None), body


DASHBOARD = HERE.parent.parent / "packaging" / "grafana-egress.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "and", "or", "unless", "inf", "nan",
                # aggregations, which "by (...)" may part from their parenthesis
                "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile"}


def promql_selectors(expr):
    """[(metric name, {label: value} of its = matchers)] of a PromQL expression: strings,
    ranges and the label lists of by/on/... are set aside, functions are the words that
    a parenthesis follows."""
    out = []
    s = re.sub(r"\[[^\]]*\]", "", expr)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", s)
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{((?:[^}\"]|\"(?:[^\"\\]|\\.)*\")*)\})?"
                         r"(\s*\()?", s):
        name, matchers, call = m.group(1), m.group(3) or "", m.group(4)
        if call or name in PROMQL_WORDS or (m.start() and s[m.start() - 1] in "\"$"):
            continue
        eq = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', matchers))
        out.append((name, eq))
    return out


def dashboard_queries(dash):
    """Every PromQL expression of the dashboard: panels' targets and query variables."""
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield "panel %r" % p["title"], t["expr"]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = re.fullmatch(r"label_values\((\w+), *(\w+)\)", v["query"]["query"])
            assert q, v
            yield "variable %s" % v["name"], q.group(1)


def test_metrics_exposition_and_dashboard(lab, egressd_bin):
    """/metrics of an egressd running every module, after each has carried traffic, read
    strictly (promtext.py): one HELP and one TYPE per family before its samples, valid names,
    labels and escapes, histograms with cumulative buckets up to +Inf, _sum and _count.
    Then every metric the Grafana dashboard (packaging/grafana-egress.json) queries is in
    that text, with the label values its selectors ask for."""
    gw = build(lab)
    conf = (CONF % {"backup": lab.dir / "ruleset-backup.nft"}).replace(
        "log_level = info\n", "log_level = info\nmetrics_port = 9100\n")
    d = start(gw, egressd_bin, conf)
    stream = None
    try:
        c1, c2 = lab["client1"], lab["client2"]
        assert socks_flows(c1, 12) == {"isp1": 6, "isp2": 4, "isp3": 2, "fail": 0}
        assert dns_a(c1, "10.10.1.1", 5353, "web.test") == SERVER
        assert set(tcp_shares(c2, 6)) <= {"isp1", "isp2", "isp3"}
        # a connection the proxy cannot make (nothing listens on 7001)
        r = c1.run([sys.executable, str(HERE / "socksflows.py"), "10.10.1.1", "1080", SERVER,
                    "7001", "1", "1"], timeout=60)
        assert json.loads(r.stdout)["fail"] == 1
        # the API: a route and a path that is none (its label is "unmatched", not the path)
        api = ApiClient.unix(d)
        assert api.get("/healthz").status == 200
        assert api.get("/api/no/such/thing").status == 404
        assert api.get("/api/events?after=0").status == 200
        stream = api.stream("/api/events/stream")  # open until egressd stops
        wait_for(lambda: promtext.sample(scrape(gw)[1], "egress_api_event_streams") == 1,
                 what="the open stream to be counted")
        ctype, text = scrape(gw)
        assert ctype == "text/plain; version=0.0.4; charset=utf-8"
        fams = promtext.parse(text)
        for module, names in METRIC_FAMILIES.items():
            missing = [n for n in names if n not in fams]
            assert not missing, "%s's families missing: %s" % (module, missing)
        # the traffic is counted where it went
        conns = fams["egress_proxy_connections_total"].series()
        assert sum(conns.values()) >= 18, conns
        assert sum(fams["egress_proxy_connect_failures_total"].series().values()) == 1
        assert promtext.sample(text, "egress_dns_queries_total", transport="udp") >= 1
        assert promtext.sample(text, "gateway_active_count") == 2
        assert promtext.sample(text, "egress_api_requests_total", route="/healthz",
                               method="GET", code="200") == 1
        assert promtext.sample(text, "egress_api_requests_total", route="unmatched",
                               method="GET", code="404") == 1
        assert promtext.sample(text, "egress_api_request_duration_seconds_count",
                               route="/healthz") == 1
        assert promtext.sample(text, "egress_api_requests_total", route="/api/events",
                               method="GET", code="200") == 1
        assert promtext.sample(text, "egress_api_requests_total", route="/api/events/stream",
                               method="GET", code="200") == 1
        assert promtext.sample(text, "egress_api_logins_total", result="failure") == 0
        assert "no/such" not in text
        # every uplink of the model, whichever module uses it (the ISPs are the policy's,
        # the proxy's and the DNS forwarder's, the gateways the route module's)
        weights = {"isp1": 3, "isp2": 2, "isp3": 1, "10.0.0.10": 1, "10.0.0.11": 1}
        for u, w in weights.items():
            assert promtext.sample(text, "egress_uplink_up", uplink=u) == 1, u
            assert promtext.sample(text, "egress_uplink_state", uplink=u, state="up") == 1, u
            assert promtext.sample(text, "egress_uplink_weight", uplink=u) == w, u
            assert promtext.sample(text, "egress_uplink_transitions_total", uplink=u) == 1, u
        for u in ("isp1", "isp2", "isp3"):
            assert 0 < promtext.sample(text, "egress_uplink_rtt_seconds", uplink=u) < 1, u
            assert promtext.sample(text, "egress_uplink_loss_ratio", uplink=u) < 1, u
            assert promtext.sample(text, "egress_uplink_enabled", uplink=u) == 1, u
            assert promtext.sample(text, "egress_uplink_tier", uplink=u) == 1, u
        # isp3 drained and moved to tier 2 by a reload: the metrics follow
        d.write_conf(conf.replace("[uplink isp3]\n", "[uplink isp3]\nenabled = false\ntier = 2\n"))
        d.reload()
        d.wait_log(r"egressd \S+ reloaded: ")
        text = scrape(gw)[1]
        assert promtext.sample(text, "egress_uplink_enabled", uplink="isp3") == 0
        assert promtext.sample(text, "egress_uplink_enabled", uplink="isp2") == 1
        assert promtext.sample(text, "egress_uplink_up", uplink="isp3") == 1
        assert promtext.sample(text, "egress_uplink_tier", uplink="isp3") == 2
        fams = promtext.parse(text)
    finally:
        assert d.stop() == 0
        if stream:
            stream.close()
    d.assert_clean()

    # the dashboard: importable JSON on the names above
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert {v["name"] for v in dash["templating"]["list"]} >= {"datasource", "instance"}
    samples = {n: [lb for n2, lb, _ in f.samples if n2 == n]
               for f in fams.values() for n in {x for x, _, _ in f.samples}}
    queried = set()
    for where, expr in dashboard_queries(dash):
        sels = promql_selectors(expr)
        assert sels, "%s: no metric in %r" % (where, expr)
        for name, eq in sels:
            queried.add(name)
            assert name in samples, "%s queries %s, which egressd does not export" % (
                where, name)
            want = {k: v for k, v in eq.items() if k not in ("instance", "job")}
            assert any(all(lb.get(k) == v for k, v in want.items()) for lb in samples[name]), \
                "%s: no %s with %s" % (where, name, want)
    # the negative beside it: a name egressd does not export is caught
    assert promql_selectors('sum by (uplink) (rate(egress_nosuch_total{a="b"}[5m]))') == \
        [("egress_nosuch_total", {"a": "b"})]
    assert "egress_nosuch_total" not in samples
    assert {"egress_uplink_state", "egress_proxy_bytes_total", "egress_dns_queries_total",
            "gateway_active_count"} <= queried
