"""The DHCPv4 client of the devices module against a real dnsmasq, through
tests/tools/dhcp4_probe (one client per macvlan, all on one event loop).

    gw (dhcp4_probe --configure)                      srv
    d1..d7: macvlans on wan0, distinct MACs           dnsmasq: 10.4.0.100-199 (2 min leases,
    wan0 -------------------------------------------- eth0 10.4.0.1/24   T1 6 s, T2 20 s),
    sq (namespace): a macvlan on wan0 squatting       d5 always offered 10.4.0.50, d7
    on 10.4.0.50                                      ignored until its hosts file changes

One probe serves the module: clients on d1..d5 and d7 (d6 has none: the negative check).  Each
client must hold its own lease in dnsmasq's lease file under its own MAC and client id
(01:MAC) with its hostname; d5's offer is taken by the squatter, so its ARP probe finds the
conflict and it declines instead of binding.  d7 is not served at first (as a MAC not yet
registered upstream): it keeps asking, and gets a lease once dnsmasq serves it.  The probe adds each bound address to its
macvlan (as dev_net does) so that dnsmasq's unicast answers to renewals arrive.  The tests
run in file order and build on each other's state: leases, renewal at T1 (dnsmasq's own
shortest lease is 2 minutes; T1 and T2 come from --dhcp-option), INIT-REBOOT confirmed and
refused, the decline, the late registration, and last RELEASE.
"""
import ipaddress
import signal
import time

import pytest

from lab import Lab, is_root, wait_for
from probe import Probe

# the probe is our code (egress-core) running as a daemon: check-lab runs it from the ASan build
# too (tool_bin finds it beside the egressd under test)
pytestmark = pytest.mark.daemon

MACS = {"d1": "02:44:00:00:00:01", "d2": "02:44:00:00:00:02", "d3": "02:44:00:00:00:03",
        "d4": "02:44:00:00:00:04", "d5": "02:44:00:00:00:05", "d6": "02:44:00:00:00:06",
        "d7": "02:44:00:00:00:07"}
CLIENTS = ("d1", "d2", "d3", "d4", "d5", "d7")
SQUAT_MAC = "02:44:00:00:00:99"
SQUAT_ADDR = "10.4.0.50"
RANGE = (ipaddress.ip_address("10.4.0.100"), ipaddress.ip_address("10.4.0.199"))
DNS4 = "10.4.0.53"
T1, T2 = 6, 20


def leases(path):
    """dnsmasq's DHCPv4 leases: {mac: (expiry, address, hostname, client id)}.

    dnsmasq rewrites the file in place (truncates it, then writes every lease): a read can
    catch it empty or half written, the more so under load.  What counts is a text read
    twice, 50 ms apart (a few seconds at most, then the last read)."""
    out = {}
    text = None
    for _ in range(40):
        try:
            now = open(path).read()
        except FileNotFoundError:
            now = ""
        if now == text:
            break
        text = now
        time.sleep(0.05)
    for line in text.splitlines():
        f = line.split()
        if len(f) == 5 and "." in f[2]:
            out[f[1]] = (int(f[0]), f[2], f[3], f[4])
    return out


def lease_of(path, mac):
    """MAC's lease in dnsmasq's file, waiting out a rewrite (dnsmasq truncates, then writes)."""
    return wait_for(lambda: leases(path).get(mac), what="%s in dnsmasq's lease file" % mac)


@pytest.fixture(scope="module")
def v4lab(tool_bin):
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    probe_bin = tool_bin("dhcp4_probe")
    with Lab() as lab:
        lab.link("srv", "gw", addrs=("10.4.0.1/24", None), ifnames=("eth0", "wan0"))
        gw, srv, sq = lab["gw"], lab["srv"], lab.node("sq")
        # several addresses of one subnet on one host: each macvlan answers ARP for its own
        # only (as the devices module's macvlans do), so unicast reaches the right client
        gw.sysctl(**{"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2})
        gw.ip_batch(["link add link wan0 name %s address %s type macvlan mode bridge"
                     % (name, mac) for name, mac in MACS.items()]
                    + ["link set %s up" % name for name in MACS]
                    + ["link add link wan0 name sq0 address %s type macvlan mode bridge"
                       % SQUAT_MAC, "link set sq0 netns %s" % sq.ns])
        sq.ip_batch(["addr add %s/24 dev sq0" % SQUAT_ADDR, "link set sq0 up"])
        hosts = lab.dir / "dhcp4-hosts"
        hosts.write_text("%s,ignore\n" % MACS["d7"])
        dns = srv.dnsmasq("--dhcp-hostsfile=%s" % hosts,"--interface=eth0", "--bind-interfaces", "--log-dhcp",
                          "--dhcp-authoritative", "--no-ping",
                          "--dhcp-range=10.4.0.100,10.4.0.199,255.255.255.0,2m",
                          "--dhcp-host=%s,%s" % (MACS["d5"], SQUAT_ADDR),
                          "--dhcp-option=option:dns-server,%s" % DNS4,
                          "--dhcp-option=option:T1,%d" % T1,
                          "--dhcp-option=option:T2,%d" % T2, port=0)
        lease_file = next(a.split("=", 1)[1] for a in dns.args
                          if str(a).startswith("--dhcp-leasefile="))
        probe = Probe(gw, [str(probe_bin), "--configure", "--hostname", "--retry-min", "1000",
                           "--retry-max", "4000", *CLIENTS], "dhcp4_probe")
        probe.wait(event="ready", timeout=10)
        yield lab, probe, lease_file, dns, hosts


def test_leases_per_macvlan(v4lab):
    lab, probe, lease_file, _, _ = v4lab
    gw, srv = lab["gw"], lab["srv"]
    got = {}
    for name in ("d1", "d2", "d3", "d4"):
        ev = probe.wait(event="bound", timeout=20, **{"if": name})
        addr = ipaddress.ip_address(ev["addr"])
        assert RANGE[0] <= addr <= RANGE[1], ev
        assert ev["plen"] == 24 and ev["router"] == "10.4.0.1", ev
        assert ev["server"] == "10.4.0.1" and ev["server_mac"] == srv.mac("eth0"), ev
        assert ev["dns"] == [DNS4], ev
        assert ev["lease"] == 120 and ev["t1"] == T1 and ev["t2"] == T2, ev
        assert "%s/24" % ev["addr"] in gw.addrs(name, 4)
        got[name] = ev["addr"]
    assert len(set(got.values())) == 4
    # dnsmasq holds one lease per client: its MAC, client id 01:MAC, hostname, the address
    held = wait_for(lambda: (lambda ls: ls if len(ls) >= 4 else None)(leases(lease_file)),
                    what="four leases in dnsmasq's file")
    for name, addr in got.items():
        expiry, a, host, cid = held[MACS[name]]
        assert (a, host, cid) == (addr, name, "01:" + MACS[name])
    # d6 runs no client: no lease, and no event names it
    assert MACS["d6"] not in held
    assert probe.find(**{"if": "d6"}) is None
    for name in got:
        st = probe.state(name)
        assert st["state"] == "bound" and st["declines"] == 0 and st["bad"] == 0, st


def test_renew_at_t1(v4lab):
    """No one asks: d1 renews on its own at T1, by unicast to the server."""
    lab, probe, lease_file, _, _ = v4lab
    mac = MACS["d1"]
    last = [e for e in probe.events if e.get("if") == "d1" and e["event"] in ("bound",
                                                                              "renewed")][-1]
    before = lease_of(lease_file, mac)
    m = probe.mark()
    ev = probe.wait(m, event="renewed", timeout=T1 + 15, **{"if": "d1"})
    assert ev["addr"] == last["addr"] and ev["lease"] == 120
    assert probe.find(m, event="lost") is None
    after = wait_for(lambda: (lambda l: l if l and l[0] > before[0] else None)(
        leases(lease_file).get(mac)), what="d1's lease extended in dnsmasq's file")
    assert after[1] == before[1]
    # a renewal, not a new exchange: still bound, no NAK
    st = probe.state("d1")
    assert st["state"] == "bound" and st["naks"] == 0, st


def test_init_reboot_confirmed(v4lab):
    """A restart with a kept lease: confirmed (RENEWED, the same address), never LOST."""
    lab, probe, lease_file, _, _ = v4lab
    held = probe.find(event="bound", **{"if": "d2"})["addr"]
    m = probe.mark()
    probe.send("stop d2")
    probe.send("start d2")
    ev = probe.wait(m, event="renewed", **{"if": "d2"})
    assert ev["addr"] == held
    assert probe.find(m, event="lost", **{"if": "d2"}) is None
    assert probe.find(m, event="bound", **{"if": "d2"}) is None


def test_init_reboot_refused(v4lab):
    """A kept address the server does not give out: NAK, LOST, then a lease from INIT."""
    lab, probe, lease_file, _, _ = v4lab
    m = probe.mark()
    probe.send("reboot d3 10.4.0.250")
    lost = probe.wait(m, event="lost", **{"if": "d3"})
    assert lost["addr"] == "10.4.0.250"
    ev = probe.wait(m, event="bound", timeout=20, **{"if": "d3"})
    assert RANGE[0] <= ipaddress.ip_address(ev["addr"]) <= RANGE[1]
    assert probe.state("d3")["naks"] >= 1
    assert wait_for(lambda: leases(lease_file).get(MACS["d3"], (0, None))[1] == ev["addr"],
                    what="d3's lease in dnsmasq's file")


def test_decline_on_conflict(v4lab):
    """d5 is offered the squatter's address: the ARP probe sees it, DECLINE, no BOUND."""
    lab, probe, _, dns, _ = v4lab
    wait_for(lambda: probe.state("d5")["declines"] >= 1, timeout=20, what="d5 declined")
    assert probe.find(event="bound", **{"if": "d5"}) is None
    wait_for(lambda: "DHCPDECLINE" in dns.log() and SQUAT_ADDR in dns.log(),
             what="dnsmasq saw the DECLINE")
    assert SQUAT_ADDR + "/24" not in lab["gw"].addrs("d5", 4)
    # the others were never declined
    for name in ("d1", "d2", "d4"):
        assert probe.state(name)["declines"] == 0


def test_late_registration(v4lab):
    """d7 is ignored: it keeps asking (backing off, never giving up), and binds once served."""
    lab, probe, lease_file, dns, hosts = v4lab
    wait_for(lambda: probe.state("d7")["sent"] >= 3, timeout=15, what="d7 retransmitting")
    st = probe.state("d7")
    assert st["state"] == "selecting" and st["attempt"] >= 2, st
    assert probe.find(event="bound", **{"if": "d7"}) is None
    assert MACS["d7"] not in leases(lease_file)
    m = probe.mark()
    hosts.write_text("")
    dns.send_signal(signal.SIGHUP)  # dnsmasq reads its hosts file again
    ev = probe.wait(m, event="bound", timeout=20, **{"if": "d7"})
    assert RANGE[0] <= ipaddress.ip_address(ev["addr"]) <= RANGE[1]
    assert lease_of(lease_file, MACS["d7"])[1] == ev["addr"]


def test_release(v4lab):
    lab, probe, lease_file, _, _ = v4lab
    mac = MACS["d4"]
    lease_of(lease_file, mac)
    probe.send("release d4")
    # d1's lease in the same read: a file being rewritten is empty, not free of d4
    wait_for(lambda: (lambda ls: MACS["d1"] in ls and mac not in ls)(leases(lease_file)),
             what="d4's lease gone from dnsmasq's file, d1's still there")
    st = probe.state("d4")
    assert st["state"] == "stopped", st
    assert lab["gw"].addrs("d4", 4) == []
    lease_of(lease_file, MACS["d1"])
    lease_of(lease_file, MACS["d2"])
