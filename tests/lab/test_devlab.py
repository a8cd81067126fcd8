"""The device gateway's lab topology alone (devlab.py), without egressd: what the devices
module's tests rely on.

The LAN devices get their reserved addresses from the gateway's dnsmasq, which writes them to
the leases file egressd is given.  A macvlan made by hand in the gateway with a device's MAC
gets a DHCPv4 lease from the upstream only while that MAC is registered on the firewall; with
plain policy routing and masquerading over that macvlan the device reaches the internet
server, which sees the lease's address, over IPv4 and IPv6, and stops reaching it once the MAC
is unregistered.  Restarting the upstream on another plan (renumbering) hands out addresses
of the new subnet, and in IPv6-only mode no IPv4 at all.
"""

import json
import sys

import pytest

from devlab import DHCPC, DevLab, lan_of, mac_of
from lab import wait_for

pytestmark = [pytest.mark.requires_root]


def dhcp(node, ifname, timeout=5):
    """dhcpc.py acquire in node on ifname: the lease (dict), or None."""
    r = node.run([sys.executable, str(DHCPC), "acquire", ifname, "--timeout", timeout],
                 check=False, timeout=timeout + 10)
    return json.loads(r.stdout) if r.returncode == 0 else None


def test_topology(lab):
    dl = DevLab(lab, n=3, registered=[1])
    dl.lan_up()
    for i in (1, 2, 3):
        assert dl.node(i).addr("eth0") == lan_of(i)
    assert dl.lan_leases() == {mac_of(i): lan_of(i) for i in (1, 2, 3)}
    assert dl.registered() == [mac_of(1)]

    gw = dl.gw
    gw.forward()
    for i in (1, 2):
        gw.ip("link", "add", "mv%d" % i, "link", "wan0", "address", mac_of(i), "type", "macvlan",
              "mode", "bridge")
        gw.ip("link", "set", "mv%d" % i, "up")
    # the unregistered MAC gets nothing; the firewall counted its frames
    assert dhcp(gw, "mv2", timeout=3) is None
    assert dl.dropped() > 0
    assert mac_of(2) not in dl.upstream_leases()[0]
    lease = dhcp(gw, "mv1")
    assert lease and lease["address"].startswith("10.64.") and lease["router"] == "10.64.0.1"
    assert dl.upstream_leases()[0][mac_of(1)] == lease["address"]

    # plain per-device routing and NAT over the macvlan: device 1 leaves by its own address
    gw.ip_batch(["addr add %s/16 dev mv1 noprefixroute" % lease["address"],
                 "addr add 2001:db8:64::99/64 dev mv1 nodad noprefixroute",
                 "route add 10.64.0.0/24 dev mv1 table 100",
                 "route add default via 10.64.0.1 dev mv1 table 100",
                 "route add 2001:db8:64::/64 dev mv1 table 100",
                 "route add default via 2001:db8:64::1 dev mv1 table 100",
                 "rule add from %s iif lan0 lookup 100" % lan_of(1)])
    gw.ip("-6", "rule", "add", "from", "2001:db8:64::99", "lookup", "100")
    gw.run(["nft", "-f", "-"], input='table ip t {\n chain post {\n  type nat hook postrouting '
           'priority 100;\n  oifname "mv1" masquerade\n }\n}\n')
    assert dl.fetch(1) == lease["address"]
    assert dl.fetch(2) is None  # no rule for it: the gateway has no default route
    assert dl.fetch_bound("2001:db8:64::99") == "2001:db8:64::99"
    dl.unregister(1)
    assert dl.fetch(1) is None
    assert dl.fetch_bound("2001:db8:64::99") is None
    dl.register(1)
    wait_for(lambda: dl.fetch(1, timeout=1) == lease["address"], timeout=10,
             what="device 1 through the firewall again")

    # renumbering and the IPv6-only mode
    dl.upstream("dual", "b")
    lease_b = dhcp(gw, "mv1")
    assert lease_b and lease_b["address"].startswith("10.65.")
    dl.upstream("v6", "b")
    assert dhcp(gw, "mv1", timeout=3) is None
    # router advertisements of the new prefix reach a registered MAC
    gw.sysctl(**{"net.ipv6.conf.mv1.accept_ra": 2, "net.ipv6.conf.mv1.accept_ra_defrtr": 1})
    gw.ip_batch(["link set mv1 down", "link set mv1 up"])  # a router solicitation
    wait_for(lambda: "fe80::" in gw.ip("-6", "route", "show", "default", "dev", "mv1").stdout,
             timeout=15, what="an RA's default route on mv1")
