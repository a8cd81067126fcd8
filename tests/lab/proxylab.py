"""The proxy module's lab topology, shared by tests/lab/test_proxy.py, the demo and bench.

    client (10.20.0.2, fd20::2) -- lan0  gw  isp1 (192.0.2.1, 2001:db8:1::1) -- isp1 --+
                                             isp2 (192.0.2.9)                -- isp2 --+-- inet

inet: 11.0.0.80 / 2a00:1::80 (nginx on 80 answering "inet <client address>", echo on 7000,
iperf3 on 5201) and a DNS server on 11.0.0.53 (dnsmasq) that knows web.test (A and AAAA),
big.test (TXT records over 512 bytes) and only-v4.test.  gw is a multi-homed host as DHCP
leaves one: a default route via each ISP (metric 100 via isp1, 200 via isp2) and no policy
routing of its own - egressd's source routing has to make the isp2 address leave by isp2.
The ISPs do not masquerade: the server sees which of gw's addresses a connection came
from, i.e. which uplink carried it.  The client has only a default route via gw (gateway
mode and transparent tests).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = "11.0.0.80"
SERVER6 = "2a00:1::80"
DNS = "11.0.0.53"
ADDR = {"isp1": "192.0.2.1", "isp2": "192.0.2.9"}
ADDR6 = {"isp1": "2001:db8:1::1"}
UPLINK_OF = {v: k for k, v in list(ADDR.items()) + list(ADDR6.items())}
CLIENT = "10.20.0.2"
GW_LAN = "10.20.0.1"

SPEC = """
    client:eth0 10.20.0.2/24 fd20::2/64 -- gw:lan0 10.20.0.1/24 fd20::1/64
    gw:isp1 192.0.2.1/29 2001:db8:1::1/64 -- isp1:eth0 192.0.2.2/29 2001:db8:1::2/64
    gw:isp2 192.0.2.9/29 -- isp2:eth0 192.0.2.10/29
    isp1:eth1 198.51.100.1/28 fd00:1::1/64 -- inet:isp1 198.51.100.2/28 fd00:1::2/64
    isp2:eth1 198.51.100.17/28 -- inet:isp2 198.51.100.18/28
    isp1 forward
    isp2 forward
    client default via 10.20.0.1
    isp1 route 11.0.0.0/24 via 198.51.100.2
    isp2 route 11.0.0.0/24 via 198.51.100.18
    inet route 192.0.2.0/29 via 198.51.100.1
    inet route 192.0.2.8/29 via 198.51.100.17
"""

BIG_TXT = ["x%02d-%s" % (i, "a" * 60) for i in range(12)]  # about 800 bytes of answer


def build(lab, web=True, dns=True, echo=True):
    """Build the topology and start the servers in inet; returns gw."""
    lab.apply(SPEC)
    inet, gw, client = lab["inet"], lab["gw"], lab["client"]
    for a in (SERVER, DNS):
        inet.ip("addr", "add", a + "/32", "dev", "lo")
    inet.ip("addr", "add", SERVER6 + "/128", "dev", "lo")
    lab["isp1"].ip("-6", "route", "add", SERVER6 + "/128", "via", "fd00:1::2")
    inet.ip("-6", "route", "add", "2001:db8:1::/64", "via", "fd00:1::1")
    gw.ip("route", "add", "default", "via", "192.0.2.2", "metric", "100")
    gw.ip("route", "add", "default", "via", "192.0.2.10", "metric", "200")
    gw.ip("-6", "route", "add", "default", "via", "2001:db8:1::2", "metric", "100")
    client.ip("-6", "route", "add", "default", "via", "fd20::1")
    from lab import wait_for
    if web:
        inet.nginx(80, name="inet")
    if echo:
        # UDP answers leave from the address asked, as NAT on the way expects
        inet.popen([sys.executable, str(HERE / "echosrv.py"), "7000", "::", SERVER],
                   name="echo")
        wait_for(lambda: inet.listening(7000), what="echo server")
    if dns:
        args = ["--listen-address=" + DNS, "--bind-interfaces",
                "--address=/web.test/" + SERVER, "--address=/web.test/" + SERVER6,
                "--address=/only-v4.test/" + SERVER, "--local=/test/",
                "--edns-packet-max=4096"]
        args += ["--txt-record=big.test,%s" % t for t in BIG_TXT]
        inet.dnsmasq(*args)
    return gw


def dispatch_args(*extra, ratio=("3", "2"), v6=False):
    """`egressd dispatch` arguments for both uplinks with the given contention ratio (and
    isp1's IPv6 address as a third uplink with v6)."""
    return ["dispatch", "-resolver", DNS, *extra,
            "%s@%s" % (ADDR["isp1"], ratio[0]), "%s@%s" % (ADDR["isp2"], ratio[1])] + \
        (["%s@1" % ADDR6["isp1"]] if v6 else [])
