"""Lab tests of the [devices] module on gateways as users have them, not as the lab is
convenient (devlab.py's topology, one per host condition, 3 registered devices of 4):

  strict-dhcp       strict reverse-path filtering (all and default rp_filter = 1, set before
                    egressd starts, so the macvlans inherit it); the gateway's own WAN
                    address from its DHCPv4 client on the devices' upstream network, with the
                    default route via the upstream router in main, and no IPv6 address of
                    its own but the default route from router advertisements (the kernel's
                    defaults); dual-stack upstream
  strict-nodefault  strict reverse-path filtering; the gateway has no address on the WAN and
                    no default route at all
  v6only            an IPv6-only upstream, strict reverse-path filtering, the gateway's own
                    IPv6 address on the WAN and its default route from router advertisements

egressd runs as README says: `egressd devices -wan WAN -lan LAN -leases-file F -state-dir D
-api-port 5050` (no fast retries), the LAN served by dnsmasq with its leases file.  What is
asserted is what crosses the wire: each device's traffic reaches the internet server from
its own WAN address; port forwards from IPv4 and IPv6 reach the device's web server; the
gateway's own traffic still leaves by the WAN with the WAN's address; the WAN's addresses,
MAC and default routes are what they were before egressd started.
"""

import ipaddress
import os

import pytest

from devlab import DEVICES_MARK, INET4, INET6, LAN_GW, DevLab, mac_of, name_of
from egressd import Egressd, api_paths
from lab import Lab, is_root

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

DEVICES = (1, 2, 3)  # registered; device 4 is not
CONDITIONS = {
    "strict-dhcp": dict(mode="dual", rp_filter=1, gw_wan="dhcp4"),
    "strict-nodefault": dict(mode="dual", rp_filter=1, gw_wan=None),
    "v6only": dict(mode="v6", rp_filter=1, gw_wan="dhcp"),
}


def wan_state(dl):
    """What of the gateway's own WAN egressd must leave alone."""
    return {"addrs": sorted(dl.gw.addrs("wan0")), "mac": dl.gw.mac("wan0"),
            "default4": dl.gw_routes(4), "default6": [r[:2] for r in dl.gw_routes(6)]}


@pytest.fixture(scope="module", params=list(CONDITIONS))
def host(request, egressd_bin):
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    with Lab() as lab:
        dl = DevLab(lab, n=4, registered=DEVICES, web=DEVICES, **CONDITIONS[request.param])
        if dl.gw_wan is None:  # no default route at all: none from RAs either
            dl.gw.sysctl(**{"net.ipv6.conf.wan0.accept_ra": 0})
            dl.gw.ip("-6", "route", "flush", "default", check=False)
        dl.lan_up()
        before = wan_state(dl)
        dl.egressd = Egressd.command(
            dl.gw, egressd_bin,
            ["devices", "-wan", "wan0", "-lan", "lan0", "-leases-file", dl.lan_leases_path,
             "-state-dir", dl.state_dir(), "-api-port", "5050"], timeout=15.0)
        recs = dl.wait_active(DEVICES, timeout=60)
        yield dl, before, recs
        if dl.egressd.alive():
            assert dl.egressd.stop() == 0
            dl.egressd.assert_clean()


def test_each_device_leaves_with_its_own_address(host):
    dl, _, recs = host
    v4, v6 = dl.upstream_leases()
    for i in DEVICES:
        a4, a6 = recs[i].get("ipv4_wan_address"), recs[i].get("ipv6_address")
        if dl.mode in ("dual", "v4"):
            assert v4[mac_of(i)] == a4
            assert dl.fetch(i) == a4, "device %d from its own WAN address %s" % (i, a4)
        if dl.mode in ("dual", "v6"):
            assert v6[mac_of(i)] == a6
            assert dl.fetch_bound(a6, mark=DEVICES_MARK) == a6, "device %d's identity %s" % (i, a6)
    assert mac_of(4) not in v4 and mac_of(4) not in v6


def test_port_forwards_reach_each_device(host):
    dl, _, recs = host
    for i in DEVICES:
        if dl.mode in ("dual", "v4"):
            assert dl.fetch_from_inet(recs[i]["ipv4_wan_address"], 8080) == [name_of(i), INET4]
        if dl.mode in ("dual", "v6"):
            assert dl.fetch_from_inet(recs[i]["ipv6_address"], 8080) == [name_of(i), LAN_GW]


def own_traffic(dl, recs, fam):
    """The gateway host's own fetch of family fam leaves with the WAN's address of that
    family (none: it fails), never with a device's, and main routes it by the WAN."""
    mine = {r.get(k) for r in recs.values() for k in ("ipv4_wan_address", "ipv6_address")}
    want = dl.gw_wan["v%d" % fam] if dl.gw_wan else None
    got = dl.gw_fetch(fam)
    assert got not in mine - {None}, "the host's own traffic left by a device's identity\n%s\n%s\n%s" % (
        dl.gw.run(["nft", "list", "chain", "inet", "egress_devices", "output"]).stdout,
        dl.gw.run(["ip", "-%d" % fam, "route", "show", "table", "all"]).stdout,
        dl.gw.run(["ip", "-%d" % fam, "rule"]).stdout)
    assert got == want, "IPv%d: the internet saw %s, not the WAN's %s" % (fam, got, want)
    route = dl.gw.json(["ip", "-j", "route", "get", INET4 if fam == 4 else INET6], check=False)
    if route:
        assert route[0].get("dev") == "wan0", route


def test_gateway_own_ipv4_leaves_by_the_wan(host):
    dl, _, recs = host
    own_traffic(dl, recs, 4)


def test_gateway_own_ipv6_leaves_by_the_wan(host):
    """Even with no IPv6 route in main to the destination (none at all, or no RA default
    route yet), when the kernel picks a device's address as the source and looks the route
    up again from it: the device's rule asks for the mark egressd's relay carries."""
    dl, _, recs = host
    own_traffic(dl, recs, 6)


def test_wan_untouched(host):
    dl, before, _ = host
    assert wan_state(dl) == before


def test_readme_commands(host, egressctl_bin):
    """The commands README gives, as a user types them on the gateway."""
    dl, _, recs = host
    env = dict(os.environ)
    env.pop("EGRESS_TOKEN", None)

    sock, _ = api_paths(dl.gw)

    def run(*args):  # egressd's socket is the lab's, not /run/egress's
        return dl.gw.run([str(egressctl_bin), "--socket", str(sock)] + list(args),
                         check=False, env=env, timeout=150)
    out = run("devices", "active")
    assert out.returncode == 0, out.stderr
    for i in DEVICES:
        assert mac_of(i) in out.stdout
    assert mac_of(4) not in out.stdout
    out = run("status")
    assert out.returncode == 0 and "devices" in out.stdout, out.stderr
    out = run("port-forward", "list")
    assert out.returncode == 0 and "8080" in out.stdout, out.stderr
    out = run("diagnose")
    assert out.returncode == 0, out.stdout + out.stderr
    r = dl.gw.run(["curl", "-s", "-m", "3", "http://127.0.0.1:5050/health"], check=False)
    assert '"healthy"' in r.stdout, r
    for addr in {ipaddress.ip_address(a) for r in recs.values()
                 for a in (r.get("ipv4_wan_address"),) if a}:
        assert str(addr) in run("devices").stdout

