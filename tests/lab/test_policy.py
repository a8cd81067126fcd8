"""The policy module: kernel multi-WAN load balancing with nftables marks and policy routing.

Topology in policylab.py: two LAN clients, gw running egressd, three ISPs and an internet
namespace whose echo server tells which uplink (masqueraded address) a flow came through.
"""

import collections
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from egressd import Egressd
from lab import wait_for
from policylab import (ADDR, CONF, HERE, SERVER, SERVER6, UPLINK_OF, build, tcp_shares,
                       wait_table)

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]


def start(gw, egressd_bin, conf=CONF, up=("isp1", "isp2", "isp3")):
    d = Egressd.start(gw, egressd_bin, conf)
    for u in up:
        d.wait_log(r"uplink %s: init -> up" % u)
    d.wait_log(r"policy: balancing")
    wait_table(gw, up)
    return d


def used(c):
    """The uplinks that carried connections of tally c; fails the test if any failed."""
    assert c["fail"] == 0, c
    return {u for u in c if c[u]}


def only(c, uplink, n):
    """All of about n connections went through uplink, none failed."""
    return set(c) == {uplink} and c[uplink] == n


def udp_shares(node, n, dst=SERVER):
    r = node.run([sys.executable, str(HERE / "udpflows.py"), dst, "7000", str(n), "0.5"],
                 timeout=120)
    c = collections.Counter()
    for line in r.stdout.splitlines():
        f = line.split()
        c[UPLINK_OF.get(f[2], f[2]) if f[0] == "ok" else "fail"] += 1
    return c


def flow(node, dst=SERVER):
    p = node.popen([sys.executable, str(HERE / "flowclient.py"), dst, "7000"], name="flow",
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert p.stdout.readline().startswith("connected")

    def ask(text):
        p.stdin.write(text + "\n")
        p.stdin.flush()
        return p.stdout.readline().strip()
    return p, ask


def ct_marks(gw):
    """conntrack entries of the echo port: {(src, sport): mark}."""
    out = gw.run(["conntrack", "-L", "-p", "tcp", "--dport", "7000"], check=False).stdout
    marks = {}
    for line in out.splitlines():
        m = re.search(r"src=(\S+) dst=\S+ sport=(\d+) .* mark=(\d+)", line)
        if m:
            marks[(m.group(1), m.group(2))] = int(m.group(3))
    return marks


def test_tcp_split_by_weight_3_2_1(lab, egressd_bin):
    gw = build(lab)
    d = start(gw, egressd_bin)
    c = tcp_shares(lab["client1"], 1000)
    assert c["fail"] == 0, c
    total = sum(c.values())
    for uplink, weight in (("isp1", 3), ("isp2", 2), ("isp3", 1)):
        share = 100.0 * c[uplink] / total
        assert abs(share - 100.0 * weight / 6) <= 5, (uplink, share, c)
    assert d.stop() == 0
    d.assert_clean()
    # a clean stop removes the table, the rules and the uplinks' routes
    assert "egress" not in gw.run(["nft", "list", "tables"]).stdout
    assert "lookup 46" not in gw.run(["ip", "rule"]).stdout


def test_udp_flows_are_balanced(lab, egressd_bin):
    gw = build(lab)
    d = start(gw, egressd_bin)
    c = udp_shares(lab["client2"], 600)
    assert c["fail"] == 0, c
    for uplink, weight in (("isp1", 3), ("isp2", 2), ("isp3", 1)):
        assert abs(100.0 * c[uplink] / 600 - 100.0 * weight / 6) <= 8, c
    assert d.stop() == 0
    d.assert_clean()


def test_failover_resets_only_the_failed_uplinks_flows(lab, egressd_bin):
    gw = build(lab)
    d = start(gw, egressd_bin)
    # open flows until there is one on each uplink
    flows = {}
    for _ in range(60):
        p, ask = flow(lab["client1"])
        u = UPLINK_OF[ask("who").split()[-1]]
        if u not in flows:
            flows[u] = (p, ask)
        else:
            p.stdin.close()
        if len(flows) == 3:
            break
    assert len(flows) == 3
    before = ct_marks(gw)

    d.set_mark()
    lab.cut(lab["isp2"], "eth1", mode="blackhole")  # isp2 dies behind a live link
    d.wait_log(r"uplink isp2: up -> down")
    t_down = time.monotonic()
    d.wait_log(r"policy: uplink isp2: \d+ connections? deleted")
    # the flow on isp2 fails at once rather than hanging ...
    answer = flows["isp2"][1]("still there?")
    assert answer.startswith("error"), answer
    assert time.monotonic() - t_down < 1.0
    # ... while the others keep flowing, their conntrack marks untouched
    for u in ("isp1", "isp3"):
        assert flows[u][1]("ping") == "ok ping"
    after = ct_marks(gw)
    kept = {k: v for k, v in before.items() if k in after}
    assert kept and all(after[k] == v for k, v in kept.items())
    # new connections avoid isp2
    c = tcp_shares(lab["client1"], 200)
    assert c["isp2"] == 0 and c["fail"] == 0, c

    # isp2 returns: new connections use it again; the long-lived flows never noticed
    lab.restore(lab["isp2"], "eth1")
    d.wait_log(r"uplink isp2: down -> up")
    wait_for(lambda: tcp_shares(lab["client1"], 100)["isp2"] > 0, timeout=5,
             what="isp2 to take new connections again")
    for u in ("isp1", "isp3"):
        assert flows[u][1]("after") == "ok after"
    assert d.stop() == 0
    d.assert_clean()


def test_tiers_fail_over_and_back(lab, egressd_bin):
    gw = build(lab)
    conf = CONF.replace("member = isp1, isp2, isp3", "member = isp1, isp2/1, isp3/2")
    d = start(gw, egressd_bin, conf)
    c = tcp_shares(lab["client1"], 150)
    assert used(c) == {"isp1", "isp2"}, c  # tier 2 idle while tier 1 is up
    lab.cut(lab["isp1"], "eth1", mode="blackhole")
    lab.cut(lab["isp2"], "eth1", mode="blackhole")
    d.wait_log(r"uplink isp1: up -> down")
    d.wait_log(r"uplink isp2: up -> down")
    wait_for(lambda: only(tcp_shares(lab["client1"], 30), "isp3", 30), timeout=5,
             what="all new connections on tier 2")
    lab.restore(lab["isp1"], "eth1")
    d.wait_log(r"uplink isp1: down -> up")
    wait_for(lambda: only(tcp_shares(lab["client1"], 30), "isp1", 30), timeout=5,
             what="back on tier 1")
    assert d.stop() == 0
    d.assert_clean()


def test_affinity_keeps_a_client_on_one_uplink(lab, egressd_bin):
    gw = build(lab)
    conf = CONF + "sticky = source\n"
    d = start(gw, egressd_bin, conf)
    c = tcp_shares(lab["client1"], 100)
    assert len(used(c)) == 1, c  # 100 connections, one uplink
    # negative: without affinity the same client is spread
    assert d.stop() == 0
    d = start(gw, egressd_bin)
    c = tcp_shares(lab["client1"], 100)
    assert used(c) == {"isp1", "isp2", "isp3"}, c
    assert d.stop() == 0
    d.assert_clean()


def test_rules_sets_ports_and_main(lab, egressd_bin):
    gw = build(lab)
    lab["inet"].ip("addr", "add", "11.0.0.81/32", "dev", "lo")
    lab["inet"].ip("addr", "add", "11.0.0.82/32", "dev", "lo")
    for isp in ("isp1", "isp2", "isp3"):
        lab[isp].ip("route", "replace", "11.0.0.80/30", "via",
                    lab[isp].json(["ip", "-j", "route", "get", SERVER])[0]["gateway"])
    conf = CONF + """
[policy only3]
member = isp3

[policy only2]
member = isp2

[set special]
prefix = 11.0.0.81

[rule to-special]
dst_set = special
policy = only3

[rule to-82]
dst = 11.0.0.82
policy = main

[rule echo-port-from-client2]
src = 10.10.2.0/24
proto = tcp
dport = 7000
policy = only2
"""
    d = start(gw, egressd_bin, conf)
    assert only(tcp_shares(lab["client1"], 40, dst="11.0.0.81"), "isp3", 40)
    assert only(tcp_shares(lab["client1"], 40, dst="11.0.0.82"), "isp1", 40)  # main: isp1
    assert only(tcp_shares(lab["client2"], 40), "isp2", 40)
    c = tcp_shares(lab["client1"], 60)  # no rule: the first policy, all three
    assert used(c) == {"isp1", "isp2", "isp3"}, c
    assert d.stop() == 0
    d.assert_clean()


def test_main_routes_are_not_balanced(lab, egressd_bin):
    """A new connection to a destination main routes by more than its default route is not
    balanced (the ruleset looks it up once, with the probe mark): to the other LAN, and to
    an uplink's own subnet (isp2's router, as a modem's web page). Every one arrives the
    way main routes it, without a mark of ours; the rest is balanced. The routing rules
    give a marked packet its uplink's table as the first lookup after local, and route
    marked replies by main."""
    gw = build(lab)
    d = start(gw, egressd_bin)
    lab["client2"].http_server(8080)
    lab["isp2"].http_server(8080)
    for _ in range(12):  # with weights 3:2:1, a balanced one would leave by isp2 one in 3
        assert lab["client1"].curl("http://10.10.2.2:8080/").stdout == "client2 10.10.1.2\n"
        assert lab["client1"].curl("http://192.0.2.10:8080/").stdout == "isp2 192.0.2.9\n"
    out = gw.run(["conntrack", "-L", "-p", "tcp", "--dport", "8080"], check=False).stdout
    marks = [int(m) for m in re.findall(r"mark=(\d+)", out)]
    assert len(marks) >= 24 and all(m & 0xff00 == 0 for m in marks), out
    # negative: what main routes by its default route alone is balanced
    assert used(tcp_shares(lab["client1"], 60)) == {"isp1", "isp2", "isp3"}
    rules = [r for r in gw.json(["ip", "-j", "rule", "list"]) if 4600 <= r["priority"] < 4856]
    first = [r for r in rules if r["priority"] == 4600]
    assert {r.get("iif") for r in first} == {"lo", "isp1", "isp2", "isp3"}, rules
    assert all(r["table"] == "main" and ("suppress_prefixlen" in r) == (r["iif"] == "lo")
               for r in first), rules
    assert [r.get("action") for r in rules if r["priority"] == 4855] == ["unreachable"], rules
    route = gw.json(["ip", "-j", "route", "get", SERVER, "from", "10.10.1.2", "iif", "lan0",
                     "mark", "0x200"])
    assert route[0]["dev"] == "isp2", route
    route = gw.json(["ip", "-j", "route", "get", "10.10.1.2", "from", SERVER, "iif", "isp2",
                     "mark", "0x200"])
    assert route[0]["dev"] == "lan0", route
    assert d.stop() == 0
    d.assert_clean()
    assert not [r for r in gw.json(["ip", "-j", "rule", "list"])
                if 4600 <= r["priority"] < 4856]


def test_ipv6_through_an_ipv6_uplink(lab, egressd_bin):
    gw = build(lab, v6=True)
    # isp1 is dual-stack; isp2 and isp3 carry IPv4 only
    conf = CONF.replace("gateway = 192.0.2.2\n", "gateway = 192.0.2.2\ngateway6 = 2001:db8:1::2\n")
    d = start(gw, egressd_bin, conf)
    c = tcp_shares(lab["client1"], 30, dst=SERVER6)
    assert only(c, "2001:db8:1::1", 30), c
    c4 = tcp_shares(lab["client1"], 60)
    assert c4["fail"] == 0 and "2001:db8:1::1" not in c4
    assert d.stop() == 0
    d.assert_clean()


def test_golden_table(lab, egressd_bin):
    """`nft list table inet egress` for CONF with every uplink up, as the kernel holds it."""
    gw = build(lab)
    d = start(gw, egressd_bin, CONF + "sticky = source\n" + """
[set office]
prefix = 11.0.0.64/28, 2a00:2::/32

[rule office]
dst_set = office
proto = tcp
dport = 22, 8000-8080
policy = main
""")
    d.wait_log(r"policy: table inet egress replaced \(isp1 in, isp2 in, isp3 in\)")
    text = gw.run(["nft", "-s", "list", "table", "inet", "egress"]).stdout
    golden = HERE / "golden" / "policy.nft"
    if os.environ.get("EG_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert d.stop() == 0
    d.assert_clean()


def test_bad_config_leaves_the_running_table(lab, egressd_bin):
    gw = build(lab)
    d = start(gw, egressd_bin)
    before = gw.run(["nft", "-s", "list", "table", "inet", "egress"]).stdout
    d.write_conf(CONF.replace("member = isp1, isp2, isp3", "member = isp1, nosuch"))
    d.reload()
    d.wait_log(r"reload failed")
    assert gw.run(["nft", "-s", "list", "table", "inet", "egress"]).stdout == before
    assert d.stop() == 0
    d.assert_clean()


def test_gateway_own_traffic_and_keep_dataplane(lab, egressd_bin):
    gw = build(lab)
    conf = CONF.replace("lan = lan0, lan1", "lan = lan0, lan1\noutput = yes\nkeep_dataplane = yes")
    d = start(gw, egressd_bin, conf)
    c = tcp_shares(gw, 120)  # connections of the gateway itself
    assert c["fail"] == 0 and len([u for u in c if c[u]]) == 3, c
    # health probes still leave through their own uplinks: all stay up
    assert "-> down" not in d.log()
    assert d.stop() == 0
    d.assert_clean()
    # kept on request: the LAN keeps being balanced without egressd
    assert "table inet egress" in gw.run(["nft", "list", "tables"]).stdout
    c = tcp_shares(lab["client1"], 60)
    assert c["fail"] == 0 and len([u for u in c if c[u]]) == 3, c
    # a later run adopts it, and a run without keep removes it
    d = start(gw, egressd_bin)
    assert d.stop() == 0
    assert "egress" not in gw.run(["nft", "list", "tables"]).stdout
    assert "lookup 46" not in gw.run(["ip", "rule"]).stdout


OWN_CONNECT = r"""
import collections, socket, sys
dst, port, how, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
seen = collections.Counter()
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        if how.startswith("mark:"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, int(how[5:], 0))
        elif how.startswith("dev:"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, how[4:].encode())
        elif how != "any":
            s.bind((how, 0))
        s.connect((dst, port))
        local = s.getsockname()[0]
        s.sendall(b"who\n")
        seen[local + " " + s.makefile("rb").readline().decode().split()[-1]] += 1
    except OSError:
        seen["fail"] += 1
    finally:
        s.close()
for k, v in seen.items():
    print(k, v)
"""


def own_connections(gw, how, n=30):
    """The gateway's own new connections to the echo server: {(local address, uplink the
    server saw): count}, ("fail", None) for those that failed."""
    r = gw.run([sys.executable, "-c", OWN_CONNECT, SERVER, "7000", how, str(n)], timeout=120)
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        key = ("fail", None) if f[0] == "fail" else (f[0], UPLINK_OF.get(f[1], f[1]))
        out[key] = int(f[-1])
    return out


def test_gateway_own_connections(lab, egressd_bin):
    """output = yes, as README's policy section says: a new connection of the gateway takes
    its source address from main's route when it connects, then the policy picks its
    uplink at its first packet and masquerade gives it that uplink's address; a socket's
    mark of ours pins its uplink (and its source address); a bound address or interface
    is pinned by a [rule] on its source address to a policy of that uplink alone."""
    gw = build(lab)
    conf = CONF.replace("lan = lan0, lan1", "lan = lan0, lan1\noutput = yes\n"
                        "default_policy = balanced") + \
        "\n[policy only2]\nmember = isp2\n\n[rule pin2]\nsrc = 192.0.2.9/32\npolicy = only2\n"
    d = start(gw, egressd_bin, conf)
    mark3 = 0x300  # the third uplink's, inside mark_mask 0xff00
    assert "fwmark 0x300/0xff00" in gw.run(["ip", "rule"]).stdout
    # balanced: the local address is main's (isp1's), the path the policy's
    c = own_connections(gw, "any")
    assert {local for local, _ in c} == {ADDR["isp1"]}, c
    assert len({u for _, u in c}) >= 2, c
    # a mark of ours: that uplink, and its address from the start
    assert own_connections(gw, "mark:%#x" % mark3) == {(ADDR["isp3"], "isp3"): 30}
    # a bound address is balanced like the rest (its address rewritten) unless a rule pins it
    c = own_connections(gw, ADDR["isp3"])
    assert ("fail", None) not in c and len({u for _, u in c}) >= 2, c
    assert own_connections(gw, ADDR["isp2"]) == {(ADDR["isp2"], "isp2"): 30}
    # an interface-bound socket: pinned by the same rule (its source is isp2's address)
    assert own_connections(gw, "dev:isp2") == {(ADDR["isp2"], "isp2"): 30}
    assert d.stop() == 0
    d.assert_clean()


WHO_FROM = r"""
import socket, sys
for src in sys.argv[3:]:
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2,
                                      source_address=(src, 0)) as s:
            s.sendall(b"who\n")
            print(src, s.makefile("rb").readline().decode().split()[-1], flush=True)
    except OSError as e:
        print(src, "fail", flush=True)
"""


def uplink_of_sources(node, sources, rounds=2):
    """{source: uplink} from `rounds` new connections per source address; a source whose
    connections failed or left by different uplinks maps to "fail" / "mixed"."""
    seen = collections.defaultdict(set)
    for _ in range(rounds):
        r = node.run([sys.executable, "-c", WHO_FROM, SERVER, "7000"] + sources, timeout=120)
        for line in r.stdout.splitlines():
            src, who = line.split()
            seen[src].add(UPLINK_OF.get(who, who))
    return {s: (next(iter(seen[s])) if len(seen[s]) == 1 else "mixed") for s in sources}


def sticky_sources(client, n=24):
    """n more addresses on client1, each a sticky client of its own."""
    sources = ["10.10.1.%d" % i for i in range(100, 100 + n)]
    for s in sources:
        client.ip("addr", "add", s + "/24", "dev", "eth0")
    return sources


def test_affinity_survives_changes_of_other_uplinks(lab, egressd_bin):
    """A sticky client keeps its uplink while another uplink goes down and comes back; a
    client whose own uplink goes down moves, and stays on its new uplink after the old one
    returns (a second change of public address would break its sessions again)."""
    gw = build(lab)
    client = lab["client1"]
    sources = sticky_sources(client)
    d = start(gw, egressd_bin, CONF + "sticky = source\n")
    before = uplink_of_sources(client, sources)
    per = collections.Counter(before.values())
    assert set(per) <= {"isp1", "isp2", "isp3"}, before  # none failed, none mixed
    assert len(per) >= 2, per
    victim = min(per, key=lambda u: per[u])  # an uplink some sources use, not all
    movers = [s for s in sources if before[s] == victim]
    stayers = [s for s in sources if before[s] != victim]

    d.set_mark()
    lab.cut(lab[victim], "eth1", mode="blackhole")
    d.wait_log(r"uplink %s: up -> down" % victim)
    d.wait_log(r"policy: table inet egress replaced \(%s out\)" % victim)
    during = uplink_of_sources(client, sources)
    # the clients of the other uplinks did not move
    assert {s: during[s] for s in stayers} == {s: before[s] for s in stayers}, (victim, during)
    # negative: the victim's own clients did, each to one live uplink
    for s in movers:
        assert during[s] in ("isp1", "isp2", "isp3") and during[s] != victim, (s, during)

    d.set_mark()
    lab.restore(lab[victim], "eth1")
    d.wait_log(r"uplink %s: down -> up" % victim)
    d.wait_log(r"policy: table inet egress replaced \(%s in\), affinity kept in" % victim)
    after = uplink_of_sources(client, sources)
    assert after == during, (victim, during, after)
    # the victim is back in the choice: its set is there, to take new clients
    sets = gw.run(["nft", "-t", "list", "sets", "table", "inet", "egress"]).stdout
    assert "sticky.balanced.%s.v4" % victim in sets, sets
    assert d.stop() == 0
    d.assert_clean()


def test_affinity_survives_a_restart_over_a_kept_dataplane(lab, egressd_bin):
    """egressd stops leaving the dataplane in place; the next run takes the sticky entries of
    the table it finds into its own, so no client changes uplink."""
    gw = build(lab)
    client = lab["client1"]
    sources = sticky_sources(client)
    conf = CONF.replace("lan = lan0, lan1", "lan = lan0, lan1\nkeep_dataplane = yes")
    d = start(gw, egressd_bin, conf + "sticky = source\n")
    before = uplink_of_sources(client, sources)
    assert set(before.values()) <= {"isp1", "isp2", "isp3"}, before
    assert len(set(before.values())) >= 2, before
    assert d.stop() == 0
    d = start(gw, egressd_bin, conf + "sticky = source\n")
    d.wait_log(r"policy: table inet egress replaced \(.*\), affinity kept in \d+ sets")
    assert uplink_of_sources(client, sources) == before
    # negative: a run that starts without the old table starts without affinity, and the
    # clients spread again
    assert d.stop() == 0
    gw.run(["nft", "delete", "table", "inet", "egress"])
    d = start(gw, egressd_bin, conf + "sticky = source\n")
    assert uplink_of_sources(client, sources) != before
    assert d.stop() == 0
    d.assert_clean()


def test_restart_removes_only_its_own_rules(lab, egressd_bin):
    """Rules and routes are the policy module's by protocol, priority and table: a restart
    with an uplink fewer removes that uplink's rule and route at once, while other rules in
    its priority range (another tool's protocol, or ours into a table not the module's)
    survive start and stop."""
    gw = build(lab)
    foreign = ["4610:\tfrom all fwmark 0x500/0xff00 lookup 999 proto 235",
               "4611:\tfrom all fwmark 0x600/0xff00 lookup 4610 proto static"]
    gw.ip("rule", "add", "priority", "4610", "fwmark", "0x500/0xff00", "lookup", "999",
          "proto", "235")
    gw.ip("rule", "add", "priority", "4611", "fwmark", "0x600/0xff00", "lookup", "4610",
          "proto", "static")

    def rules():
        return gw.run(["ip", "rule", "list"]).stdout

    def table(t):
        return gw.run(["ip", "route", "show", "table", t]).stdout.strip()

    d = start(gw, egressd_bin)
    assert all(f in rules() for f in foreign), rules()
    assert "4603:\tfrom all fwmark 0x300/0xff00 lookup 4602 proto 235" in rules(), rules()
    assert table("4602").startswith("default via 192.0.2.18 dev isp3"), table("4602")
    d.signal(signal.SIGKILL)  # it leaves everything behind
    d.proc.wait(10)
    assert "lookup 4602" in rules() and table("4602")

    conf = CONF.split("[uplink isp3]")[0] + "[policy balanced]\nmember = isp1, isp2\n"
    d = start(gw, egressd_bin, conf, up=("isp1", "isp2"))
    r = rules()
    assert all(f in r for f in foreign), r
    assert "lookup 4602" not in r, r
    assert table("4602") == ""
    assert "lookup 4601 proto 235" in r and table("4601"), r
    assert d.stop() == 0
    d.assert_clean()
    r = rules()
    assert "lookup 4600" not in r and "lookup 4601" not in r and table("4601") == "", r
    assert all(f in r for f in foreign), r


def drain(d, conf, uplink, enabled):
    """Reload conf with [uplink NAME] enabled = yes/no; wait for the uplink model to take it."""
    d.set_mark()
    d.write_conf(conf.replace("[uplink %s]\n" % uplink, "[uplink %s]\nenabled = %s\n"
                              % (uplink, "yes" if enabled else "no")))
    d.reload()
    d.wait_log(r"uplink %s: changed: %s" % (uplink, "enabled again" if enabled else "drained"))
    d.wait_log(r"policy: table inet egress replaced \(%s %s" % (uplink, "in" if enabled
                                                                 else "out, drained"))


def test_drained_uplink_keeps_its_flows(lab, egressd_bin):
    """enabled = no takes an uplink out of the choice of new connections but, unlike a
    failure, deletes none of its connections: a flow through it carries on with its conntrack
    mark.  Its checks keep running (a failure while drained still deletes its flows), and
    enabled again it takes new connections again."""
    gw = build(lab)
    d = start(gw, egressd_bin)
    flows = {}
    for _ in range(60):
        p, ask = flow(lab["client1"])
        u = UPLINK_OF[ask("who").split()[-1]]
        if u not in flows:
            flows[u] = (p, ask)
        else:
            p.stdin.close()
        if len(flows) == 3:
            break
    assert len(flows) == 3
    before = ct_marks(gw)

    drain(d, CONF, "isp2", False)
    table = gw.run(["nft", "list", "table", "inet", "egress"]).stdout
    assert '"uplink isp2 (isp2), drained: new connections"' in table, table
    c = tcp_shares(lab["client1"], 200)
    assert c["isp2"] == 0 and c["fail"] == 0, c
    for u in ("isp1", "isp2", "isp3"):
        assert flows[u][1]("ping") == "ok ping", u
    after = ct_marks(gw)
    assert all(after.get(k) == v for k, v in before.items()), (before, after)
    assert "connection deleted" not in d.since_mark()
    assert "connections deleted" not in d.since_mark()

    # drained is not down: its checks still run, and a failure still moves its flows
    lab.cut(lab["isp2"], "eth1", mode="blackhole")
    d.wait_log(r"uplink isp2: up -> down")
    d.wait_log(r"policy: uplink isp2: \d+ connections? deleted")
    assert flows["isp2"][1]("still there?").startswith("error")
    lab.restore(lab["isp2"], "eth1")
    d.wait_log(r"uplink isp2: down -> up")
    c = tcp_shares(lab["client1"], 100)
    assert c["isp2"] == 0 and c["fail"] == 0, c  # still drained

    drain(d, CONF, "isp2", True)
    wait_for(lambda: tcp_shares(lab["client1"], 100)["isp2"] > 0, timeout=5,
             what="isp2 to take new connections again")
    for u in ("isp1", "isp3"):
        assert flows[u][1]("after") == "ok after"
    assert d.stop() == 0
    d.assert_clean()


def test_drained_uplink_and_affinity(lab, egressd_bin):
    """Draining an uplink moves the new connections of its sticky clients (and only theirs)
    to the others; enabled again, they stay where they went, as after a failure."""
    gw = build(lab)
    client = lab["client1"]
    sources = sticky_sources(client)
    conf = CONF + "sticky = source\n"
    d = start(gw, egressd_bin, conf)
    before = uplink_of_sources(client, sources)
    per = collections.Counter(before.values())
    assert set(per) <= {"isp1", "isp2", "isp3"}, before
    assert len(per) >= 2, per
    victim = min(per, key=lambda u: per[u])
    movers = [s for s in sources if before[s] == victim]
    stayers = [s for s in sources if before[s] != victim]

    drain(d, conf, victim, False)
    during = uplink_of_sources(client, sources)
    assert {s: during[s] for s in stayers} == {s: before[s] for s in stayers}, (victim, during)
    for s in movers:
        assert during[s] in ("isp1", "isp2", "isp3") and during[s] != victim, (s, during)
    sets = gw.run(["nft", "-t", "list", "sets", "table", "inet", "egress"]).stdout
    assert "sticky.balanced.%s.v4" % victim not in sets, sets

    drain(d, conf, victim, True)
    assert uplink_of_sources(client, sources) == during
    sets = gw.run(["nft", "-t", "list", "sets", "table", "inet", "egress"]).stdout
    assert "sticky.balanced.%s.v4" % victim in sets, sets
    assert d.stop() == 0
    d.assert_clean()
