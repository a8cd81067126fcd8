"""Host states a real gateway has that the other lab tests do not: no default route in main,
strict reverse-path filtering, forwarding off, a default route through one uplink that a DHCP
client replaces while egressd runs - for the policy, route and proxy modules (and gateway
mode's forwarding).

Topologies: policylab.py's for the policy and route modules, proxylab.py's for the proxy:

    client1 -- lan0  gw (egressd)  isp1 (192.0.2.1, 2001:db8:1::1) -- isp1 --+
                                   isp2 (192.0.2.9)                -- isp2 --+-- inet 11.0.0.80
                                                                                  2a00:1::80

The health checks probe 11.0.0.80 (and 2a00:1::80), a host behind both ISPs, as a new user
would. Each test also compares every setting under /proc/sys/net of gw before egressd started
with after it stopped: what egressd changes it puts back.
"""

import sys

import pytest

import policylab
import proxylab
from egressd import Egressd
from lab import sysctls

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

HERE = policylab.HERE

UPLINK = """
[uplink {name}]
interface = {name}
gateway = {gw}
{extra}weight = {weight}
masquerade = yes
check = icmp
check_target = {target}
interval = 300ms
interval_failing = 200ms
timeout = 300ms
"""

POLICY_CONF = """
[balance]
lan = lan0
""" + UPLINK.format(name="isp1", gw="192.0.2.2", extra="gateway6 = 2001:db8:1::2\n", weight=3,
                    target="11.0.0.80, 2a00:1::80") + \
    UPLINK.format(name="isp2", gw="192.0.2.10", extra="", weight=1, target="11.0.0.80") + """
[policy balanced]
member = isp1, isp2
"""


def assert_same_sysctls(before, after):
    diff = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
            if before.get(k) != after.get(k)}
    assert not diff, "settings not put back (before, after): %s" % sorted(diff.items())


def policy_build(lab, main_default):
    gw = policylab.build(lab, v6=True)
    gw.ip("route", "del", "default")
    if main_default:
        gw.ip("route", "add", "default", "via", "192.0.2.2")
        gw.ip("-6", "route", "add", "default", "via", "2001:db8:1::2")
    return gw


def policy_start(gw, egressd_bin, conf=POLICY_CONF):
    d = Egressd.start(gw, egressd_bin, conf)
    d.wait_log(r"uplink isp1: init -> up")
    d.wait_log(r"uplink isp2: init -> up")
    return d


def assert_policy_works(lab, d):
    """Forwarded TCP from the LAN leaves by both uplinks (3:1), IPv6 by isp1; no uplink
    ever went down."""
    c = policylab.tcp_shares(lab["client1"], 80, interval=0.01)
    assert c["fail"] == 0 and c["isp1"] > c["isp2"] > 0, c
    c6 = policylab.tcp_shares(lab["client1"], 10, dst=policylab.SERVER6, interval=0.01)
    assert c6 == {"2001:db8:1::1": 10}, c6
    assert "-> down" not in d.log()


def stop(d):
    assert d.stop() == 0
    d.assert_clean()


# ------------------------------------------------------------------ policy module


def test_policy_implied(lab, egressd_bin):
    """The user's first configuration: [balance] and two [uplink]s, no [policy], no default
    route in main. [balance] implies [policy balanced] over both at their weights."""
    gw = policy_build(lab, main_default=False)
    conf = POLICY_CONF.split("[policy balanced]")[0]
    assert "[policy" not in conf
    d = policy_start(gw, egressd_bin, conf)
    assert_policy_works(lab, d)
    stop(d)


@pytest.mark.parametrize("main_default", [False, True], ids=["no-default", "default-via-isp1"])
def test_policy(lab, egressd_bin, main_default):
    """Both uplinks come up and carry the LAN, with and without a default route in main."""
    gw = policy_build(lab, main_default)
    before = sysctls(gw)
    d = policy_start(gw, egressd_bin)
    assert_policy_works(lab, d)
    # the replies pass the reverse-path check through the uplink's mark
    assert gw.run(["sysctl", "-n", "net.ipv4.conf.isp2.src_valid_mark"]).stdout.strip() == "1"
    stop(d)
    assert_same_sysctls(before, sysctls(gw))


def test_policy_strict_rp_filter(lab, egressd_bin):
    """rp_filter = 1 on all, default and every interface (a hardened box), no default route
    in main: loose on the uplinks would not count (the effective value is the higher of all
    and the interface's), the replies pass strict filtering with their uplink's mark."""
    gw = policy_build(lab, False)
    gw.sysctl(**{"net.ipv4.conf.%s.rp_filter" % i: 1
                 for i in ("all", "default", "lan0", "isp1", "isp2", "isp3")})
    before = sysctls(gw)
    d = policy_start(gw, egressd_bin)
    d.wait_log(r"all\.rp_filter is 1 \(strict\)")
    assert_policy_works(lab, d)
    stop(d)
    assert_same_sysctls(before, sysctls(gw))
    # negative: the host's filtering is still strict and still drops what it should
    assert gw.run(["sysctl", "-n", "net.ipv4.conf.all.rp_filter"]).stdout.strip() == "1"


def test_policy_forwarding_off(lab, egressd_bin):
    """A box with forwarding off (and isp1 taking router advertisements): egressd turns
    forwarding on for the LAN, keeps isp1 taking advertisements (accept_ra 2) and puts
    both back at stop."""
    gw = policy_build(lab, False)
    gw.forward(False)
    gw.sysctl(**{"net.ipv6.conf.isp1.accept_ra": 1})
    before = sysctls(gw)
    # negative first: without egressd nothing is forwarded
    assert not lab["client1"].ping(policylab.SERVER).ok
    d = policy_start(gw, egressd_bin)
    d.wait_log(r"sysctl net\.ipv4\.ip_forward: 0 -> 1")
    assert gw.run(["sysctl", "-n", "net.ipv6.conf.isp1.accept_ra"]).stdout.strip() == "2"
    assert_policy_works(lab, d)
    stop(d)
    after = sysctls(gw)
    assert_same_sysctls(before, after)
    assert after["net/ipv4/ip_forward"] == "0"


def test_policy_dhcp_replaces_main_default(lab, egressd_bin):
    """A DHCP client owns main's default route: it moves from isp1 to isp2 and goes away
    while egressd runs. The uplinks stay up and the LAN keeps both."""
    gw = policy_build(lab, True)
    before = sysctls(gw)
    d = policy_start(gw, egressd_bin)
    assert_policy_works(lab, d)
    gw.ip("route", "replace", "default", "via", "192.0.2.10")
    assert_policy_works(lab, d)
    gw.ip("route", "del", "default")
    gw.ip("-6", "route", "del", "default")
    assert_policy_works(lab, d)
    stop(d)
    assert_same_sysctls(before, sysctls(gw))


def test_policy_sysctl_changed_by_someone_else(lab, egressd_bin):
    """A setting someone else changed while egressd ran is theirs: left, and said so."""
    gw = policy_build(lab, False)
    d = policy_start(gw, egressd_bin)
    gw.sysctl(**{"net.ipv4.conf.isp2.rp_filter": 0})
    stop(d)
    assert "sysctl net.ipv4.conf.isp2.rp_filter: left at 0: changed by someone else" in d.log()
    assert gw.run(["sysctl", "-n", "net.ipv4.conf.isp2.rp_filter"]).stdout.strip() == "0"
    # negative: isp1's, untouched by others, went back
    assert "sysctl net.ipv4.conf.isp1.rp_filter: 2 -> 0 (put back)" in d.log()


# ------------------------------------------------------------------ route module

ROUTE_NAT = """table inet labnat {
    chain post {
        type nat hook postrouting priority 100;
        oifname { "isp1", "isp2" } masquerade
    }
}
"""


@pytest.mark.parametrize("main_default", [False, True], ids=["no-default", "default-via-isp1"])
@pytest.mark.parametrize("strict", [False, True], ids=["rp0", "rp-strict"])
def test_route(lab, egressd_bin, main_default, strict):
    """`egressd route` over the two ISPs' routers (ICMP-checked), as the host's NAT leaves
    them: the LAN is spread over both, IPv6 through isp1, with or without main's default
    and under strict reverse-path filtering."""
    gw = policy_build(lab, main_default)
    gw.run(["nft", "-f", "-"], input=ROUTE_NAT)
    gw.sysctl(**{"net.ipv4.fib_multipath_hash_policy": 1})  # flows, not host pairs
    if strict:
        gw.sysctl(**{"net.ipv4.conf.%s.rp_filter" % i: 1
                     for i in ("all", "default", "lan0", "isp1", "isp2")})
    before = sysctls(gw)
    d = Egressd.command(gw, egressd_bin, [
        "route", "-gateway", "192.0.2.2", "-gateway", "192.0.2.10",
        "-gateway", "2001:db8:1::2", "-route", "0.0.0.0/0", "-route", "::/0",
        "-scheme", "icmp", "-check-period", "1s", "-timeout", "300ms", "-metrics-port", "0"])
    for g in ("192.0.2.2", "192.0.2.10", "2001:db8:1::2"):
        d.wait_log(r"uplink %s: init -> up" % g.replace(".", r"\."))
    c = policylab.tcp_shares(lab["client1"], 80, interval=0.01)
    assert c["fail"] == 0 and c["isp1"] > 0 and c["isp2"] > 0, c
    c6 = policylab.tcp_shares(lab["client1"], 10, dst=policylab.SERVER6, interval=0.01)
    assert c6 == {"2001:db8:1::1": 10}, c6
    assert "-> down" not in d.log()
    stop(d)
    assert_same_sysctls(before, sysctls(gw))


# ------------------------------------------------------------------ proxy module

PROXY_CONF = """
[proxy]
address = 10.20.0.1
port = 1080
resolver = 11.0.0.53

[uplink isp1]
source = 192.0.2.1
gateway = 192.0.2.2
weight = 3
check = icmp
check_target = 11.0.0.80
interval = 300ms
timeout = 300ms

[uplink isp2]
source = 192.0.2.9
gateway = 192.0.2.10
weight = 2
check = icmp
check_target = 11.0.0.80
interval = 300ms
timeout = 300ms

[uplink isp1v6]
source = 2001:db8:1::1
gateway = 2001:db8:1::2
check = icmp
check_target = 2a00:1::80
interval = 300ms
timeout = 300ms
"""


def socks_flows(node, count, host):
    import json
    r = node.run([sys.executable, str(HERE / "socksflows.py"), proxylab.GW_LAN, "1080", host,
                  "7000", str(count), "2"], timeout=120)
    return json.loads(r.stdout)


@pytest.mark.parametrize("main_default", [False, True], ids=["no-default", "dhcp-defaults"])
@pytest.mark.parametrize("strict", [False, True], ids=["rp0", "rp-strict"])
def test_proxy(lab, egressd_bin, main_default, strict):
    """The proxy's uplinks by source address, each with its gateway: up and used in their
    ratio, IPv6 by its own uplink, with or without main's default routes (proxylab has one
    per ISP, as DHCP leaves them) and under strict reverse-path filtering."""
    gw = proxylab.build(lab, web=False)
    if not main_default:
        gw.ip("route", "flush", "default")
        gw.ip("-6", "route", "flush", "default")
    if strict:
        gw.sysctl(**{"net.ipv4.conf.%s.rp_filter" % i: 1
                     for i in ("all", "default", "lan0", "isp1", "isp2")})
    before = sysctls(gw)
    d = Egressd.start(gw, egressd_bin, PROXY_CONF)
    for u in ("isp1", "isp2", "isp1v6"):
        d.wait_log(r"uplink %s: init -> up" % u)
    r = socks_flows(lab["client"], 50, proxylab.SERVER)
    p = r["peers"]
    assert r["fail"] == 0 and set(p) == {"192.0.2.1", "192.0.2.9"} and p["192.0.2.1"] > 25, r
    r = socks_flows(lab["client"], 10, proxylab.SERVER6)
    assert r["fail"] == 0 and r["peers"] == {"2001:db8:1::1": 10}, r
    assert "-> down" not in d.log()
    stop(d)
    assert_same_sysctls(before, sysctls(gw))


def test_proxy_without_gateway_says_why(lab, egressd_bin):
    """`egressd dispatch ADDR@N` on a host whose main table has no default route: egressd
    cannot know the uplinks' next hops, and says so instead of only timing out."""
    gw = proxylab.build(lab, web=False, dns=False)
    gw.ip("route", "flush", "default")
    d = Egressd.command(gw, egressd_bin, proxylab.dispatch_args(
        "-lhost", proxylab.GW_LAN, "-lport", "1080", "-check-kind", "icmp",
        "-check-target", proxylab.SERVER, "-check-interval", "300ms"))
    d.wait_log(r"uplink 192\.0\.2\.9: from 192\.0\.2\.9 to the link itself \(table \d+\): no "
               r"gateway: neither .gateway. nor a default route of main through isp2")
    d.wait_log(r"uplink 192\.0\.2\.9: init -> down", timeout=10)
    # a default route appears (DHCP): the uplinks come up without a restart
    gw.ip("route", "add", "default", "via", "192.0.2.10")
    d.wait_log(r"uplink 192\.0\.2\.9: down -> up", timeout=10)
    stop(d)


def test_rp_filter_drop_is_said(lab, egressd_bin):
    """Replies that strict reverse-path filtering drops are named as the cause: an uplink
    probed with a mark of the user's own (check_mark and a rule of theirs), not egressd's,
    whose replies come back without it; and one bound to an interface nothing routes through."""
    gw = policy_build(lab, True)
    gw.ip("rule", "add", "fwmark", "0x1", "lookup", "100", "priority", "100")
    gw.ip("route", "add", "default", "via", "192.0.2.10", "table", "100")
    gw.sysctl(**{"net.ipv4.conf.%s.rp_filter" % i: 1 for i in ("all", "isp2")})
    conf = """
[uplink isp2]
interface = isp2
check = icmp
check_target = 11.0.0.80
check_mark = 0x1
interval = 300ms
timeout = 300ms

[uplink isp1]
interface = isp1
check = icmp
check_target = 11.0.0.80
interval = 300ms
timeout = 300ms
[uplink isp3]
interface = isp3
check = icmp
check_target = 11.0.0.80
interval = 300ms
timeout = 300ms
"""
    d = Egressd.start(gw, egressd_bin, conf)
    d.wait_log(r"uplink isp2: check icmp 11\.0\.0\.80: no route back from 11\.0\.0\.80 to "
               r"192\.0\.2\.9: rp_filter on isp2 would drop its replies")
    # a probe bound to isp3, where nothing routes to the target
    d.wait_log(r"uplink isp3: check icmp 11\.0\.0\.80: no route to 11\.0\.0\.80 through isp3 "
               r"\(sent to the link as if it were on it\)")
    # negative: isp1, whose replies pass, is up and blamed on nothing
    d.wait_log(r"uplink isp1: init -> up")
    assert "uplink isp1: check" not in d.log()
    stop(d)


GATEWAY_CONF = """
[proxy]
port = 0
resolver = 11.0.0.53

[uplink isp1]
source = 192.0.2.1
gateway = 192.0.2.2

[gateway]
address = 10.20.0.1
subnet = 10.20.0.0/24
auto_config = %s
backup_file = %s
"""


def test_gateway_mode_forwarding(lab, egressd_bin):
    """Gateway mode on a host with forwarding off: on while it intercepts, back off when a
    reload turns auto_config off, and again at stop."""
    gw = proxylab.build(lab, web=False, dns=False)
    gw.forward(False)
    before = sysctls(gw)
    backup = lab.dir / "backup.nft"
    d = Egressd.start(gw, egressd_bin, GATEWAY_CONF % ("yes", backup))
    d.wait_log(r"gateway: intercepting 1 subnet")
    assert gw.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    d.write_conf(GATEWAY_CONF % ("no", backup))
    d.reload()
    d.wait_log(r"sysctl net\.ipv4\.ip_forward: 1 -> 0 \(put back\)")
    assert_same_sysctls(before, sysctls(gw))
    d.write_conf(GATEWAY_CONF % ("yes", backup))
    d.reload()
    d.wait_log(r"sysctl net\.ipv4\.ip_forward: 0 -> 1")
    stop(d)
    assert_same_sysctls(before, sysctls(gw))
