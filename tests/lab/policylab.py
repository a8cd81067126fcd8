"""The policy module's lab topology, shared by tests/lab/test_policy.py, the demo and bench.

    client1 --+                        +-- isp1 --+
              +-- lan0/lan1  gw -------+-- isp2 --+-- inet (11.0.0.80 / 2a00:1::80: echo,
    client2 --+                        +-- isp3 --+         web, iperf3)

gw masquerades what leaves through each ISP, so the internet side sees which uplink a
flow took (192.0.2.1 / .9 / .17).  isp1 also carries IPv6 (2001:db8:1::/64 towards gw).
gw's main table has a default route via isp1: the "normal routing" that rules with
policy = main and last resorts use.
"""

import collections
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = "11.0.0.80"
SERVER6 = "2a00:1::80"
ADDR = {"isp1": "192.0.2.1", "isp2": "192.0.2.9", "isp3": "192.0.2.17"}
UPLINK_OF = {v: k for k, v in ADDR.items()}

SPEC = """
    client1:eth0 10.10.1.2/24 fd10:1::2/64 -- gw:lan0 10.10.1.1/24 fd10:1::1/64
    client2:eth0 10.10.2.2/24 -- gw:lan1 10.10.2.1/24
    gw:isp1 192.0.2.1/29 2001:db8:1::1/64 -- isp1:eth0 192.0.2.2/29 2001:db8:1::2/64
    gw:isp2 192.0.2.9/29 -- isp2:eth0 192.0.2.10/29
    gw:isp3 192.0.2.17/29 -- isp3:eth0 192.0.2.18/29
    isp1:eth1 198.51.100.1/28 fd00:1::1/64 -- inet:isp1 198.51.100.2/28 fd00:1::2/64
    isp2:eth1 198.51.100.17/28 -- inet:isp2 198.51.100.18/28
    isp3:eth1 198.51.100.33/28 -- inet:isp3 198.51.100.34/28
    gw forward
    isp1 forward
    isp2 forward
    isp3 forward
    client1 default via 10.10.1.1
    client2 default via 10.10.2.1
    gw default via 192.0.2.2
    isp1 route 11.0.0.80/32 via 198.51.100.2
    isp2 route 11.0.0.80/32 via 198.51.100.18
    isp3 route 11.0.0.80/32 via 198.51.100.34
    inet route 192.0.2.0/29 via 198.51.100.1
    inet route 192.0.2.8/29 via 198.51.100.17
    inet route 192.0.2.16/29 via 198.51.100.33
"""

CONF = """
[balance]
lan = lan0, lan1

[uplink isp1]
interface = isp1
gateway = 192.0.2.2
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
weight = 1
masquerade = yes
check = icmp
check_target = 198.51.100.34
interval = 300ms
interval_failing = 200ms
timeout = 200ms

[policy balanced]
member = isp1, isp2, isp3
"""


def build(lab, v6=False):
    """Build the topology; start the echo server (TCP and UDP on 7000) in inet."""
    lab.apply(SPEC)
    inet, gw = lab["inet"], lab["gw"]
    inet.ip("addr", "add", SERVER + "/32", "dev", "lo")
    if v6:
        inet.ip("addr", "add", SERVER6 + "/128", "dev", "lo")
        lab["isp1"].ip("-6", "route", "add", SERVER6 + "/128", "via", "fd00:1::2")
        inet.ip("-6", "route", "add", "2001:db8:1::/64", "via", "fd00:1::1")
        lab["client1"].ip("-6", "route", "add", "default", "via", "fd10:1::1")
    udp = SERVER + ("," + SERVER6 if v6 else "")
    inet.popen([sys.executable, str(HERE / "echosrv.py"), "7000", "::", udp], name="echo")
    from lab import wait_for
    wait_for(lambda: inet.listening(7000), what="echo server")
    return gw


def tcp_shares(node, n, dst=SERVER, interval=0.004, names=None):
    """Open n new connections from node to the echo server at dst (newflows.py), one every
    interval seconds; count them by the address the server saw, named by `names` (default:
    the uplink whose masqueraded address it is), failed ones as "fail"."""
    names = UPLINK_OF if names is None else names
    r = node.run([sys.executable, str(HERE / "newflows.py"), dst, "7000", str(interval),
                  "60", "2", str(n)], timeout=90)
    c = collections.Counter()
    for line in r.stdout.splitlines():
        f = line.split()
        c[names.get(f[3], f[3]) if f[1] == "ok" else "fail"] += 1
    return c


def wait_table(gw, up=("isp1", "isp2", "isp3")):
    """Wait until table inet egress takes in the uplinks `up` (a turn of egressd's loop after
    their first verdicts)."""
    from lab import wait_for
    wait_for(lambda: all('"uplink %s (%s): new connections"' % (u, u) in gw.run(
        ["nft", "list", "table", "inet", "egress"], check=False).stdout for u in up),
        what="the table to take in %s" % ", ".join(up))
