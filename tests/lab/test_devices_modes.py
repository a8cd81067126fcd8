"""Lab tests of egressd's [devices] module on each kind of upstream (devlab.py's topology,
one for the file, with 4 devices of which 3 are registered): IPv4-only, IPv6-only, and a
dual-stack upstream renumbered while egressd runs.

Each mode starts a fresh egressd (an empty store) after the upstream's dnsmasq restarted in
that mode.  IPv4-only: the devices get a DHCPv4 lease and no IPv6, reach the internet from
their own WAN address, and their IPv4 port forward works.  IPv6-only: a DHCPv6 address and
no IPv4; the internet server sees the device's own WAN IPv6 (from the gateway bound to it),
and the IPv6 port forward reaches the IPv4-only device through the relay.  Renumbering: the
upstream restarts on another IPv4 subnet and IPv6 prefix, and every device acquires
addresses of the new plan, each on its own, while the unregistered one still gets nothing.
"""

import re
import shutil
import sys

import pytest

from devlab import DEVICES_MARK, INET4, LAN_GW, DevLab, lan_of, mac_of, name_of
from lab import Lab, is_root, wait_for

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

DEVICES = (1, 2, 3)  # registered; device 4 is not
STREAM_PORT = 9999

# A UDP stream that never pauses: argv[1]:argv[2], one datagram every 0.2 s, one socket.
UDP_STREAM = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    try:
        s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    except OSError:
        pass
    time.sleep(0.2)
"""


def stream_snat(dl, i):
    """The addresses device i's UDP stream leaves with, as the gateway's conntrack has it
    (the reply direction's destination of each entry)."""
    out = dl.gw.run(["conntrack", "-L", "-p", "udp", "--orig-src", lan_of(i),
                     "--orig-port-dst", str(STREAM_PORT)], check=False).stdout
    return {m[1] for m in (re.findall(r"dst=(\S+)", line) for line in out.splitlines())
            if len(m) >= 2}


@pytest.fixture(scope="module")
def dl():
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    with Lab() as lab:
        d = DevLab(lab, n=4, registered=DEVICES, web=(1,), mode="v4")
        d.lan_up()
        yield d
        stop(d)


def stop(dl):
    if dl.egressd is not None and dl.egressd.alive():
        assert dl.egressd.stop() == 0
        dl.egressd.assert_clean()
    dl.egressd = None


def fresh(dl, egressd_bin, mode, plan="a"):
    """Stop egressd, forget its store, restart the upstream in mode, start egressd again."""
    stop(dl)
    shutil.rmtree(dl.state_dir(), ignore_errors=True)
    dl.upstream(mode, plan)
    dl.start_egressd(egressd_bin)


def check_unregistered(dl):
    rec = dl.devices().get(mac_of(4))
    assert rec is None or (rec["status"] != "active" and not rec.get("ipv4_wan_address")
                           and not rec.get("ipv6_address")), rec
    v4, v6 = dl.upstream_leases()
    assert mac_of(1) in v4 or mac_of(1) in v6, "a complete read of the upstream's leases"
    assert mac_of(4) not in v4 and mac_of(4) not in v6


def test_ipv4_only(dl, egressd_bin):
    fresh(dl, egressd_bin, "v4")
    recs = dl.wait_active(DEVICES, timeout=30)
    v4, v6 = dl.upstream_leases()
    assert not v6
    for i in DEVICES:
        assert not recs[i].get("ipv6_address"), recs[i]
        assert v4[mac_of(i)] == recs[i]["ipv4_wan_address"]
        assert dl.fetch(i) == recs[i]["ipv4_wan_address"]
    assert dl.fetch_from_inet(recs[1]["ipv4_wan_address"], 8080) == [name_of(1), INET4]
    check_unregistered(dl)
    st = dl.api().get("/status").json()
    assert st["ipv4"]["offered"] and not st["ipv6"]["offered"], st


def test_ipv6_only(dl, egressd_bin):
    fresh(dl, egressd_bin, "v6")
    recs = dl.wait_active(DEVICES, timeout=30)
    v4, v6 = dl.upstream_leases()
    assert not v4
    for i in DEVICES:
        a6 = recs[i]["ipv6_address"]
        assert not recs[i].get("ipv4_wan_address"), recs[i]
        assert v6[mac_of(i)] == a6
        assert dl.fetch_bound(a6, mark=DEVICES_MARK) == a6
        assert dl.fetch(i, timeout=1) is None  # no IPv4 upstream
    assert dl.fetch_from_inet(recs[1]["ipv6_address"], 8080) == [name_of(1), LAN_GW]
    check_unregistered(dl)
    st = dl.api().get("/status").json()
    assert st["ipv6"]["offered"] and not st["ipv4"]["offered"], st


def test_renumbering(dl, egressd_bin):
    fresh(dl, egressd_bin, "dual", "a")
    old = dl.wait_active(DEVICES, timeout=30)
    stream = dl.node(1).popen([sys.executable, "-c", UDP_STREAM, INET4, str(STREAM_PORT)],
                              name="udpstream")
    wait_for(lambda: stream_snat(dl, 1) == {old[1]["ipv4_wan_address"]}, timeout=10,
             interval=0.2, what="device 1's stream from its WAN address")
    dl.upstream("dual", "b")
    new = dl.wait_active(DEVICES, timeout=60)
    # its conntrack entry, SNAT'd to the old address, is deleted: the stream moves over
    wait_for(lambda: stream_snat(dl, 1) == {new[1]["ipv4_wan_address"]}, timeout=10,
             interval=0.2, what="device 1's stream from its new WAN address, not %s"
             % old[1]["ipv4_wan_address"])
    stream.stop()
    v4, v6 = dl.upstream_leases()
    for i in DEVICES:
        assert new[i]["ipv4_wan_address"] != old[i]["ipv4_wan_address"]
        assert v4[mac_of(i)] == new[i]["ipv4_wan_address"]
        assert v6[mac_of(i)] == new[i]["ipv6_address"]
        assert dl.fetch(i) == new[i]["ipv4_wan_address"]
        assert dl.fetch_bound(new[i]["ipv6_address"], mark=DEVICES_MARK) == new[i]["ipv6_address"]
    assert dl.fetch_from_inet(new[1]["ipv6_address"], 8080) == [name_of(1), LAN_GW]
    assert dl.fetch_from_inet(new[1]["ipv4_wan_address"], 8080) == [name_of(1), INET4]
    check_unregistered(dl)
