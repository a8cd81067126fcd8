"""The route module's lab topology, shared by tests/lab/test_route.py and bench/failover.py.

                                  +-- g1 (10.0.0.10, health :9999) --+
    lan -- gw (egressd) -- br0 ---+-- g2 (10.0.0.11, health :9999) --+-- inet (11.0.0.80: echo)
    .50.2   .50.1  10.0.0.1/24    +-- g3 (10.0.0.12, health :9999) --+

Each gateway masquerades towards inet, so the internet side sees which gateway carried a
flow.  gw's main table has its own default route via g1 (the "host's default route" that
fail-open falls back to).
"""

import sys
from pathlib import Path

from lab import wait_for

HERE = Path(__file__).resolve().parent
TABLE = 4501
PRIO = 4500
NH_BASE = 0x45000
SERVER = "11.0.0.80"
SERVER6 = "2a00:1::80"
GWS = ["10.0.0.10", "10.0.0.11", "10.0.0.12"]
GWS6 = ["2001:db8:a::10", "2001:db8:a::11", "2001:db8:a::12"]
FAST = ["-check-period", "1s", "-timeout", "300ms", "-metrics-port", "0"]
# detection bound: a round in flight, then `fall` failed rounds at interval_failing/timeout
LEAVE_WITHIN = 1.0 + 3 * (0.5 + 0.3) + 1.5


NAT = """table %s nat {
    chain post {
        type nat hook postrouting priority 100;
        oifname eth1 masquerade
    }
}
"""


def build(lab, v6=False):
    spec = """
        gw:p1 -- g1:eth0 10.0.0.10/24
        gw:p2 -- g2:eth0 10.0.0.11/24
        gw:p3 -- g3:eth0 10.0.0.12/24
        lan:eth0 192.168.50.2/24 -- gw:lan0 192.168.50.1/24
        lan default via 192.168.50.1
        gw forward
        g1:eth1 172.16.1.1/24 -- inet:g1 172.16.1.2/24
        g2:eth1 172.16.2.1/24 -- inet:g2 172.16.2.2/24
        g3:eth1 172.16.3.1/24 -- inet:g3 172.16.3.2/24
        g1 forward
        g2 forward
        g3 forward
    """
    lab.apply(spec)
    gw, inet = lab["gw"], lab["inet"]
    gw.ip_batch(["link add br0 type bridge", "link set br0 up"] +
                ["link set p%d master br0" % i for i in (1, 2, 3)] +
                ["addr add 10.0.0.1/24 dev br0", "route add default via 10.0.0.10"])
    gw.sysctl(**{"net.ipv4.fib_multipath_hash_policy": 1})
    inet.ip("addr", "add", SERVER + "/32", "dev", "lo")
    for i in (1, 2, 3):
        g = lab["g%d" % i]
        g.ip("route", "add", SERVER + "/32", "via", "172.16.%d.2" % i)
        g.ip("route", "add", "192.168.50.0/24", "via", "10.0.0.1")
        g.run(["nft", "-f", "-"], input=NAT % "ip")
        if v6:
            g.ip("addr", "add", GWS6[i - 1] + "/64", "dev", "eth0")
            g.ip("addr", "add", "fd00:%d::1/64" % i, "dev", "eth1")
            inet.ip("addr", "add", "fd00:%d::2/64" % i, "dev", "g%d" % i)
            g.ip("-6", "route", "add", SERVER6 + "/128", "via", "fd00:%d::2" % i)
            g.run(["nft", "-f", "-"], input=NAT % "ip6")
    if v6:
        gw.ip("addr", "add", "2001:db8:a::1/64", "dev", "br0")
        gw.ip("-6", "route", "add", "default", "via", GWS6[0])
        inet.ip("addr", "add", SERVER6 + "/128", "dev", "lo")
        gw.sysctl(**{"net.ipv6.fib_multipath_hash_policy": 1})
    inet.popen([sys.executable, str(HERE / "echosrv.py"), "7000"], name="echo")
    health = {}
    for i in (1, 2, 3):
        health[i] = lab["g%d" % i].http_server(9999, name="g%d" % i, bind="::")
    wait_for(lambda: inet.listening(7000), what="echo server")
    return gw, health


