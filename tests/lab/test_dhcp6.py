"""The DHCPv6 client and the router advertisement watch of the devices module against a real
dnsmasq (DHCPv6 range and --enable-ra), through tests/tools/dhcp6_probe.

    gw (dhcp6_probe)                                 srv
    d1 d2 d3 d4: macvlans on wan0, distinct MACs      dnsmasq: DHCPv6 fd00:6::100-1ff (2 min),
    wan0 ------------------------------------------- eth0 fd00:6::1/64, RAs with the M flag

One probe serves the module: a DHCPv6 client on each of d1..d3 (d4 has none: the negative
check) and the RA watch on wan0.  Each client must hold its own lease in dnsmasq's lease file
under its own DUID (DUID-LL of its MAC) and IAID (the MAC's last four bytes).  The tests run
in file order and build on each other's state: lease, RA, forced renewal, decline, release,
and last the renewal at T1 that nobody asks for (dnsmasq's shortest lease is 2 minutes, so T1
comes a minute after the REPLY).
"""
import ipaddress
import json
import time

import pytest

from lab import Lab, is_root, wait_for
from probe import Probe

MACS = {"d1": "02:66:00:00:00:01", "d2": "02:66:00:00:00:02", "d3": "02:66:00:00:00:03",
        "d4": "02:66:00:00:00:04"}
MAC5 = "02:66:00:00:00:05"
KEPT = ("addr", "preferred", "valid", "t1", "t2", "server_duid", "obtained_at")
CLIENTS = ("d1", "d2", "d3")
RANGE = (ipaddress.ip_address("fd00:6::100"), ipaddress.ip_address("fd00:6::1ff"))
DNS6 = "fd00:6::53"


def duid_of(mac):
    return "00:03:00:01:" + mac


def iaid_of(mac):
    return int("".join(mac.split(":")[2:]), 16)


def leases(path):
    """dnsmasq's DHCPv6 leases: {client duid: (expiry, iaid, address)}."""
    out = {}
    try:
        text = open(path).read()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        f = line.split()
        if len(f) == 5 and ":" in f[2]:
            out[f[4]] = (int(f[0]), int(f[1]), f[2])
    return out


@pytest.fixture(scope="module")
def v6lab(tool_bin):
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    probe_bin = tool_bin("dhcp6_probe")
    with Lab() as lab:
        lab.link("srv", "gw", addrs=("fd00:6::1/64", None), ifnames=("eth0", "wan0"))
        gw, srv = lab["gw"], lab["srv"]
        gw.ip_batch(["link add link wan0 name %s address %s type macvlan mode bridge"
                     % (name, mac) for name, mac in MACS.items()]
                    + ["link set %s up" % name for name in MACS])
        dns = srv.dnsmasq("--interface=eth0", "--bind-interfaces", "--enable-ra",
                          "--ra-param=eth0,4,60", "--log-dhcp",
                          "--dhcp-range=fd00:6::100,fd00:6::1ff,64,2m",
                          "--dhcp-option=option6:dns-server,[%s]" % DNS6, port=0)
        lease_file = next(a.split("=", 1)[1] for a in dns.args
                          if str(a).startswith("--dhcp-leasefile="))
        probe = Probe(gw, [str(probe_bin), "--ra", "wan0", "--solicit", *CLIENTS], "dhcp6_probe")
        probe.wait(event="ready", timeout=10)
        yield lab, probe, lease_file, probe_bin, dns


def test_leases_per_macvlan(v6lab):
    lab, probe, lease_file, _, _ = v6lab
    got = {}
    for name in CLIENTS:
        ev = probe.wait(event="bound", timeout=20, **{"if": name})
        addr = ipaddress.ip_address(ev["addr"])
        assert RANGE[0] <= addr <= RANGE[1], ev
        assert ev["duid"] == duid_of(MACS[name]).replace(":", "")
        assert ev["iaid"] == iaid_of(MACS[name])
        assert ev["valid"] == 120 and 0 < ev["t1"] <= ev["t2"] <= 120, ev
        assert ev["dns"] == [DNS6]
        assert ev["server"].startswith("fe80::"), ev
        got[name] = ev["addr"]
    assert len(set(got.values())) == len(CLIENTS)
    # dnsmasq holds one lease per client: its own DUID and IAID, the address it was told
    held = wait_for(lambda: (lambda ls: ls if len(ls) >= 3 else None)(leases(lease_file)),
                    what="three leases in dnsmasq's file")
    for name in CLIENTS:
        expiry, iaid, addr = held[duid_of(MACS[name])]
        assert iaid == iaid_of(MACS[name]) and addr == got[name]
    # d4 runs no client: no lease, and none of the others' events name it
    assert duid_of(MACS["d4"]) not in held
    assert probe.find(**{"if": "d4"}) is None
    for name in CLIENTS:
        assert probe.state(name)["state"] == "bound"


def test_ra_seen(v6lab):
    lab, probe, _, _, _ = v6lab
    srv = lab["srv"]
    ll = [a["local"] for d in srv.json(["ip", "-j", "-6", "addr", "show", "dev", "eth0"])
          for a in d["addr_info"] if a.get("scope") == "link"]
    ra = probe.wait(event="ra", timeout=15)
    assert ra["router"] == ll[0]
    assert ra["router_mac"] == srv.mac("eth0")
    assert ra["managed"] is True
    assert ra["lifetime"] > 0
    pfx = [p for p in ra["prefixes"] if p["prefix"] == "fd00:6::/64"]
    assert pfx and pfx[0]["onlink"], ra


def test_renew_now(v6lab):
    lab, probe, lease_file, _, _ = v6lab
    d1 = duid_of(MACS["d1"])
    before = leases(lease_file)[d1]
    bound = probe.find(event="bound", **{"if": "d1"})
    time.sleep(1.1)  # dnsmasq's expiry has a resolution of one second
    m = probe.mark()
    probe.send("recheck d1")
    ev = probe.wait(m, event="renewed", **{"if": "d1"})
    assert ev["addr"] == bound["addr"] and ev["valid"] == 120
    assert probe.find(m, event="lost") is None
    after = wait_for(lambda: (lambda l: l if l[0] > before[0] else None)(
        leases(lease_file)[d1]), what="d1's lease extended in dnsmasq's file")
    assert after[2] == before[2]


def test_decline(v6lab):
    lab, probe, lease_file, _, _ = v6lab
    old = probe.find(event="bound", **{"if": "d2"})["addr"]
    m = probe.mark()
    probe.send("decline d2")
    lost = probe.wait(m, event="lost", **{"if": "d2"})
    assert lost["addr"] == old
    new = probe.wait(m, event="bound", timeout=20, **{"if": "d2"})
    assert new["addr"] != old
    assert wait_for(lambda: leases(lease_file).get(duid_of(MACS["d2"]), (0, 0, old))[2]
                    == new["addr"], what="d2's new address in dnsmasq's file")


def test_release(v6lab):
    lab, probe, lease_file, _, _ = v6lab
    d3 = duid_of(MACS["d3"])
    assert d3 in leases(lease_file)
    probe.send("release d3")
    wait_for(lambda: d3 not in leases(lease_file), what="d3's lease gone from dnsmasq's file")
    wait_for(lambda: probe.state("d3")["state"] == "stopped", what="d3 stopped")
    held = leases(lease_file)
    assert duid_of(MACS["d1"]) in held and duid_of(MACS["d2"]) in held


def test_restart_keeps_address(v6lab):
    """A client started with a kept lease (egressd after a restart) renews it: same address,
    no SOLICIT; one whose lease ran out meanwhile drops it (LOST) and acquires again."""
    lab, _, lease_file, probe_bin, _ = v6lab
    gw = lab["gw"]
    first = Probe(gw, [str(probe_bin), "d4"], "dhcp6_probe")
    bound = first.wait(event="bound", timeout=20, **{"if": "d4"})
    first.close()
    wait_for(lambda: leases(lease_file).get(duid_of(MACS["d4"]), (0, 0, ""))[2]
             == bound["addr"], what="d4's lease in dnsmasq's file")
    kept = {k: bound[k] for k in KEPT}
    again = Probe(gw, [str(probe_bin), "--kept", "d4=" + json.dumps(kept), "d4"], "dhcp6_probe")
    ev = again.wait(event="renewed", **{"if": "d4"})
    assert ev["addr"] == bound["addr"] and ev["obtained_at"] >= bound["obtained_at"]
    assert again.find(event="bound") is None and again.find(event="lost") is None
    assert again.state("d4")["state"] == "bound"
    again.close()
    # the same lease, as if egressd had been stopped for longer than its valid lifetime
    kept["obtained_at"] -= 1000
    late = Probe(gw, [str(probe_bin), "--kept", "d4=" + json.dumps(kept), "d4"], "dhcp6_probe")
    lost = late.wait(event="lost", **{"if": "d4"})
    assert lost["addr"] == bound["addr"]
    late.wait(event="bound", timeout=20, **{"if": "d4"})
    assert late.find(event="renewed") is None
    late.close()


def test_link_comes_up_later(v6lab):
    """The client starts before its macvlan is up, so before the kernel has made the
    link-local address it binds to, and that address then goes through duplicate address
    detection (as on a host with the kernel's defaults); it gets its lease once it can."""
    lab, _, lease_file, probe_bin, _ = v6lab
    gw = lab["gw"]
    gw.ip("link", "add", "link", "wan0", "name", "d5", "address", MAC5, "type", "macvlan",
          "mode", "bridge")
    gw.sysctl(**{"net.ipv6.conf.d5.accept_dad": 1, "net.ipv6.conf.d5.dad_transmits": 1})
    p = Probe(gw, [str(probe_bin), "d5"], "dhcp6_probe")
    p.wait(event="ready")
    assert duid_of(MAC5) not in leases(lease_file)
    gw.ip("link", "set", "d5", "up")
    ev = p.wait(event="bound", timeout=20, **{"if": "d5"})
    wait_for(lambda: leases(lease_file).get(duid_of(MAC5), (0, 0, ""))[2] == ev["addr"],
             what="d5's lease in dnsmasq's file")
    p.close()


def test_renew_at_t1(v6lab):
    """No one asks: d1 renews on its own at T1 (60 s after its last REPLY)."""
    lab, probe, _, _, _ = v6lab
    last = [e for e in probe.events if e.get("if") == "d1" and e["event"] in ("bound",
                                                                              "renewed")][-1]
    m = probe.mark()
    ev = probe.wait(m, event="renewed", timeout=last["t1"] + 30, **{"if": "d1"})
    assert ev["addr"] == last["addr"]
    assert probe.state("d1")["state"] == "bound"


def test_renumbering(v6lab):
    """The upstream moves to another prefix.  A RENEW (what the devices module sends when the
    RA's prefixes change) learns that the old address is gone, and the client acquires one
    in the new prefix."""
    lab, probe, _, _, dns = v6lab
    srv = lab["srv"]
    old = [e for e in probe.events if e.get("if") == "d1" and e["event"] in ("bound",
                                                                             "renewed")][-1]
    dns.stop()
    srv.ip_batch(["addr add fd00:7::1/64 dev eth0", "addr del fd00:6::1/64 dev eth0"])
    srv.dnsmasq("--interface=eth0", "--bind-interfaces", "--enable-ra", "--log-dhcp",
                "--dhcp-range=fd00:7::100,fd00:7::1ff,64,2m", port=0)
    m = probe.mark()
    probe.send("recheck d1")
    lost = probe.wait(m, event="lost", **{"if": "d1"})
    assert lost["addr"] == old["addr"]
    new = probe.wait(m, event="bound", timeout=20, **{"if": "d1"})
    assert ipaddress.ip_address(new["addr"]) in ipaddress.ip_network("fd00:7::/64")
    # d2, not asked, still holds its old lease
    assert probe.find(m, **{"if": "d2"}) is None
