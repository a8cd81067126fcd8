"""Lab tests of egressd's [devices] module on a dual-stack upstream (devlab.py's topology, one
for the whole file): 20 LAN devices, 17 of them registered on the upstream's firewall.

In order, on one gateway: every device is found; the registered ones hold a DHCPv4 lease
and a DHCPv6 address of their own, which the upstream leased to their own MAC, and reach the
internet server, which sees each device's own WAN address (IPv4 from the device, IPv6 from
the gateway bound to the device's address); the unregistered ones get nothing upstream; a MAC
registered late gets its leases; the API's device routes; leases renew at T1 (a REQUEST, no
DISCOVER, the same address); port forwards from IPv4 (DNAT) and from IPv6 (the relay) reach
a device's web server, added and removed through the API and egressctl; a device that leaves
releases its leases; `egressctl diagnose --fix-all` repairs a deleted macvlan and a deleted
rule; egressd stopped, then killed with kill -9: `egressctl devices --direct` and `egressctl
status --direct` read the store, and the next egressd renews the same addresses without a
DISCOVER; `egressd devices -api-port 5050` serves /health there.

test_devices_modes.py has the IPv4-only and IPv6-only upstreams and renumbering.
"""

import json
import os
import re
import signal
import subprocess

import pytest

from devlab import DEVICES_MARK, INET4, LAN_GW, DevLab, lan_of, mac_of, name_of
from egressd import Egressd
from lab import Lab, is_root, wait_for

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

N = 20
UNREGISTERED = (18, 19, 20)
LATE = 18       # registered by test_late_registration
LEAVER = 17     # leaves in test_device_leaves
WEB = (1, 2)    # devices with a web server on :80


STATE = {"late": set(), "left": set()}  # what the tests so far did to the devices


def active_set():
    """The devices that should be active at this point of the file."""
    return [i for i in range(1, N + 1)
            if (i not in UNREGISTERED or i in STATE["late"]) and i not in STATE["left"]]


@pytest.fixture(scope="module")
def dl(egressd_bin):
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    STATE["late"].clear()
    STATE["left"].clear()
    with Lab() as lab:
        d = DevLab(lab, n=N, registered=[i for i in range(1, N + 1) if i not in UNREGISTERED],
                   web=WEB)
        d.lan_up()
        d.start_egressd(egressd_bin)
        yield d
        if d.egressd is not None and d.egressd.alive():
            d.egressd.stop()
            d.egressd.assert_clean()


def ifname_of(i):
    return "eg" + mac_of(i).replace(":", "")


def ctl(binary, *args, sock=None, timeout=30):
    argv = [str(binary)]
    if sock is not None:
        argv += ["--socket", str(sock)]
    argv += [str(a) for a in args]
    env = dict(os.environ)
    env.pop("EGRESS_TOKEN", None)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)


def ctl_json(binary, *args, sock=None):
    r = ctl(binary, "--json", *args, sock=sock)
    assert r.returncode == 0, "egressctl %s: exit %d\n%s%s" % (" ".join(map(str, args)),
                                                              r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def forwards(r):
    """{(gateway_port, device_port)} of a GET /port-forwards reply."""
    body = r.json()
    items = body["forwards"] if isinstance(body, dict) else body
    return {(f["gateway_port"], f["device_port"]) for f in items}


def wan(recs):
    """{device: (WAN IPv4, WAN IPv6)} of GET /devices records by device number."""
    return {i: (r.get("ipv4_wan_address"), r.get("ipv6_address")) for i, r in recs.items()}


def test_registered_devices_get_their_own_identity(dl):
    want = active_set()
    # each look at the list checks the table: no device is listed active before its SNAT
    recs = dl.wait_active(want, timeout=40, nat_first=True, interval=0.05)
    v4, v6 = dl.upstream_leases()
    addrs = wan(recs)
    assert len({a for a, _ in addrs.values()}) == len(want), addrs
    assert len({a for _, a in addrs.values()}) == len(want), addrs
    for i in want:
        rec = recs[i]
        assert rec["ipv4_address"] == lan_of(i), rec
        # the upstream leased these addresses to the device's own MAC (DUID-LL for IPv6)
        assert v4.get(mac_of(i)) == rec["ipv4_wan_address"], (name_of(i), v4)
        assert v6.get(mac_of(i)) == rec["ipv6_address"], (name_of(i), v6)
        assert dl.fetch(i) == rec["ipv4_wan_address"], name_of(i)
    for i in (1, 2, 3):
        a6 = recs[i]["ipv6_address"]
        assert dl.fetch_bound(a6, mark=DEVICES_MARK) == a6
    # bound to a device's address without the mark, the host's socket is not the device
    assert dl.fetch_bound(recs[1]["ipv6_address"]) is None

    devs = dl.devices()
    assert set(devs) == {mac_of(i) for i in range(1, N + 1)}, "every LAN device is found"
    for i in UNREGISTERED:
        rec = devs[mac_of(i)]
        assert rec["status"] != "active" and not rec.get("ipv4_wan_address") \
            and not rec.get("ipv6_address"), rec
        assert mac_of(i) not in v4 and mac_of(i) not in v6
        assert dl.fetch(i, timeout=1) is None
    assert dl.dropped() > 0, "the firewall saw the unregistered MACs"


def test_api_routes(dl):
    api = dl.api()
    r = api.get("/health")
    assert r.status == 200, r
    active = dl.devices("active")
    assert set(active) == {mac_of(i) for i in active_set()}
    r = api.get("/status")
    assert r.status == 200, r
    st = r.json()
    assert st["active_devices"] == len(active) and st["total_devices"] == N, st
    assert st["ipv4"]["offered"] and st["ipv6"]["offered"], st
    r = api.get("/devices")
    assert r.status == 200 and r.json()["count"] == N, r
    one = dl.device(1)
    assert one["mac_address"] == mac_of(1) and one["status"] == "active"
    assert one["ipv4_wan_address"] == active[mac_of(1)]["ipv4_wan_address"]
    assert one["ipv6_address"] == active[mac_of(1)]["ipv6_address"]
    assert one["lease4"]["expires"] > 0, one
    r = api.get("/api/devices")
    assert r.status == 200 and r.json()["count"] == N, r
    r = api.get("/api/devices/%s" % mac_of(1))
    assert r.status == 200 and r.json()["mac_address"] == mac_of(1), r
    r = api.get("/devices/02:de:00:00:0f:ff")
    assert r.status == 404, r
    r = api.get("/devices/not-a-mac")
    assert r.status in (400, 404) and "error" in r.json(), r
    r = api.get("/devices?status=bogus")
    assert r.status == 400 and r.json().get("field") == "status", r


def test_late_registration(dl):
    assert dl.fetch(LATE, timeout=1) is None
    dl.register(LATE)
    STATE["late"].add(LATE)
    rec = dl.wait_active([LATE], timeout=30)[LATE]
    assert dl.fetch(LATE) == rec["ipv4_wan_address"]
    assert dl.upstream_leases()[0][mac_of(LATE)] == rec["ipv4_wan_address"]


def test_leases_renew(dl):
    want = active_set()
    before = dl.devices()
    mark = len(dl.upstream_log())
    wait_for(lambda: all(dl.dhcp_seen("DHCPREQUEST", mac_of(i), mark) for i in want),
             timeout=30, interval=0.5, what="every device to renew its DHCPv4 lease (T1 10 s)")
    assert not [i for i in want if dl.dhcp_seen("DHCPDISCOVER", mac_of(i), mark)]
    after = dl.devices()
    for i in want:
        b, a = before[mac_of(i)], after[mac_of(i)]
        assert a["ipv4_wan_address"] == b["ipv4_wan_address"], name_of(i)
    wait_for(lambda: dl.device(1)["lease4"]["expires"] > before[mac_of(1)]["lease4"]["expires"],
             timeout=10, what="device 1's lease to be extended")


def test_port_forwards(dl, egressctl_bin):
    recs = dl.devices()
    w4 = {i: recs[mac_of(i)]["ipv4_wan_address"] for i in (1, 2, 3)}
    w6 = {i: recs[mac_of(i)]["ipv6_address"] for i in (1, 2, 3)}
    # the automatic ones (8080 -> 80): DNAT keeps the client's address, the relay connects
    # from the gateway
    assert dl.fetch_from_inet(w4[1], 8080) == [name_of(1), INET4]
    assert dl.fetch_from_inet(w6[1], 8080) == [name_of(1), LAN_GW]
    assert dl.fetch_from_inet(w4[2], 8080) == [name_of(2), INET4]
    assert dl.fetch_from_inet(w4[3], 8080, timeout=1) is None  # no server on device 3
    api = dl.api()
    r = api.get("/port-forwards?device=%s" % mac_of(1))
    assert r.status == 200, r
    assert {(8080, 80), (2323, 23)} <= forwards(r), r
    # an unregistered device is served (acquiring) but has no WAN address: its automatic
    # forwards reach nothing and are not listed, on its own or among all
    unreg = [i for i in UNREGISTERED if i not in STATE["late"]]
    assert dl.devices()[mac_of(unreg[0])]["status"] == "acquiring"
    r = api.get("/port-forwards?device=%s" % mac_of(unreg[0]))
    assert r.status == 200 and forwards(r) == set(), r
    assert not dl.device(unreg[0]).get("forwards"), dl.device(unreg[0])
    listed = {f["device"] for f in api.get("/port-forwards").json()["forwards"]}
    assert mac_of(1) in listed and not listed & {mac_of(i) for i in unreg}, listed

    # by hand, through the API
    body = {"gateway_port": 9090, "device_port": 80, "device": mac_of(2)}
    r = api.post("/port-forwards", body)
    assert r.status in (200, 201), r
    wait_for(lambda: dl.fetch_from_inet(w4[2], 9090, timeout=1) == [name_of(2), INET4],
             timeout=5, what="9090 -> device 2 over IPv4")
    wait_for(lambda: dl.fetch_from_inet(w6[2], 9090, timeout=1) == [name_of(2), LAN_GW],
             timeout=5, what="9090 -> device 2 over IPv6")
    r = api.post("/port-forwards", dict(body, gateway_port=0))
    assert r.status == 400 and r.json().get("field") == "gateway_port", r
    r = api.post("/port-forwards", dict(body, device="02:de:00:00:0f:ff"))
    assert r.status in (400, 404) and "error" in r.json(), r
    r = api.delete("/port-forwards", body=body)
    assert r.status in (200, 204), r
    wait_for(lambda: dl.fetch_from_inet(w4[2], 9090, timeout=1) is None, timeout=5,
             what="9090 gone over IPv4")
    wait_for(lambda: dl.fetch_from_inet(w6[2], 9090, timeout=1) is None, timeout=5,
             what="9090 gone over IPv6")
    r = api.post("/port-forwards/quick-device", {"device_ip": lan_of(2)})
    assert r.status in (200, 201), r
    r = api.get("/port-forwards?device=%s" % mac_of(2))
    assert {(8080, 80), (2323, 23), (8443, 443), (2222, 22)} <= forwards(r), r

    # by hand, with egressctl (the reference's gateway-port-forward add PORT IP PORT)
    sock = dl.egressd.api_socket
    r = ctl(egressctl_bin, "port-forward", "add", "9191", lan_of(1), "80", sock=sock)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: dl.fetch_from_inet(w4[1], 9191, timeout=1) == [name_of(1), INET4],
             timeout=5, what="9191 -> device 1")
    assert dl.fetch_from_inet(w6[1], 9191) == [name_of(1), LAN_GW]
    r = ctl(egressctl_bin, "port-forward", "list", sock=sock)
    assert r.returncode == 0 and "9191" in r.stdout, r
    r = ctl(egressctl_bin, "port-forward", "remove", "9191", lan_of(1), "80", sock=sock)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: dl.fetch_from_inet(w4[1], 9191, timeout=1) is None, timeout=5,
             what="9191 gone")


def test_device_leaves(dl):
    rec = dl.devices()[mac_of(LEAVER)]
    assert rec["status"] == "active"
    mark = len(dl.upstream_log())
    dl.lan_leave(LEAVER)
    STATE["left"].add(LEAVER)
    wait_for(lambda: dl.dhcp_seen("DHCPRELEASE", mac_of(LEAVER), mark), timeout=40,
             interval=0.3, what="device %d's DHCPRELEASE upstream" % LEAVER)
    # device 1's leases in the same read: a file being rewritten is empty, not free of it
    wait_for(lambda: (lambda ls: mac_of(1) in ls[0] and mac_of(LEAVER) not in ls[0])(
        dl.upstream_leases()), timeout=5, what="its IPv4 lease gone from the upstream's file")
    wait_for(lambda: (lambda ls: mac_of(1) in ls[1] and mac_of(LEAVER) not in ls[1])(
        dl.upstream_leases()), timeout=10, what="its IPv6 lease gone from the upstream's file")
    wait_for(lambda: dl.device(LEAVER)["status"] == "inactive", timeout=5,
             what="status inactive")
    assert dl.gw.ip("link", "show", ifname_of(LEAVER), check=False).returncode != 0, \
        "its macvlan is removed"
    assert dl.fetch(1) == dl.devices()[mac_of(1)]["ipv4_wan_address"]


def test_one_info_line_per_device_change(dl):
    """The settings of each device's macvlan are logged at debug: at info a device's change
    is one line (here: its identity made once, and for the leaver its departure)."""
    info = [ln for ln in dl.egressd.lines() if re.match(r"\S+ info\s", ln)]
    macvlans = [ln for ln in info if re.search(r"sysctl net\.\S+\.eg[0-9a-f]{12}\.", ln)]
    assert not macvlans, "macvlan settings logged at info:\n%s" % "\n".join(macvlans[:12])
    for i in range(1, N + 1):
        made = [ln for ln in info if "devices: %s: identity " % mac_of(i) in ln]
        assert len(made) == 1, (name_of(i), made)
    left = [ln for ln in info if "devices: %s: " % mac_of(LEAVER) in ln and " left " in ln]
    assert len(left) == 1, left


def rule_of(gw, lan4):
    """The rule `from lan4 ... lookup T` (a dict of `ip -j rule`), or None."""
    rules = gw.json(["ip", "-4", "-j", "rule", "show"]) or []
    return next((r for r in rules if r.get("src") == lan4), None)


def test_diagnose_fix_all(dl, egressctl_bin):
    sock = dl.egressd.api_socket
    r = ctl(egressctl_bin, "diagnose", sock=sock, timeout=60)
    assert r.returncode == 0, "all well before the damage:\n%s%s" % (r.stdout, r.stderr)
    gw = dl.gw
    rule = rule_of(gw, lan_of(3))
    assert rule is not None
    gw.ip("link", "del", ifname_of(2))
    gw.ip("rule", "del", "priority", rule["priority"], "from", lan_of(3), "table", rule["table"])
    res = ctl_json(egressctl_bin, "diagnose", "--fix-all", sock=sock)
    fixed = [c for c in res["checks"] if c.get("fixed")]
    assert any(c.get("device") == mac_of(2) for c in fixed), res
    assert any(c.get("device") == mac_of(3) for c in fixed), res
    assert gw.ip("link", "show", ifname_of(2), check=False).returncode == 0
    assert rule_of(gw, lan_of(3)) is not None
    recs = dl.devices()
    wait_for(lambda: dl.fetch(2, timeout=1) == recs[mac_of(2)]["ipv4_wan_address"], timeout=15,
             what="device 2 out again")
    assert dl.fetch(3) == recs[mac_of(3)]["ipv4_wan_address"]
    r = ctl(egressctl_bin, "diagnose", sock=sock, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def check_direct(dl, egressctl_bin, before):
    """egressctl devices --direct and status --direct, with no egressd running."""
    state = ["--state-dir", dl.state_dir()]
    devs = ctl_json(egressctl_bin, "devices", "--direct", *state)["devices"]
    got = {d["mac_address"]: d for d in devs}
    for i, (a4, a6) in before.items():
        assert got[mac_of(i)]["ipv4_wan_address"] == a4, got.get(mac_of(i))
        assert got[mac_of(i)]["ipv6_address"] == a6
    act = ctl_json(egressctl_bin, "devices", "active", "--direct", *state)["devices"]
    assert {d["mac_address"] for d in act} == {mac_of(i) for i in before}
    r = ctl(egressctl_bin, "status", "--direct", *state)
    assert r.returncode == 0 and r.stdout.strip(), r
    r = ctl(egressctl_bin, "devices", "--direct", *state)  # the table a person reads
    assert r.returncode == 0 and before[1][0] in r.stdout, r


def check_restart(dl, egressd_bin, before):
    mark = len(dl.upstream_log())
    dl.start_egressd(egressd_bin)
    after = wan(dl.wait_active(list(before), timeout=40))
    assert after == before, "the same WAN addresses after the restart"
    assert not [i for i in before if dl.dhcp_seen("DHCPDISCOVER", mac_of(i), mark)], \
        "leases renewed, not acquired again"
    wait_for(lambda: all(dl.dhcp_seen("DHCPREQUEST", mac_of(i), mark) for i in before),
             timeout=30, interval=0.5, what="every device to renew after the restart")
    for i in (1, 2):
        assert dl.fetch(i) == before[i][0]


def test_restart_keeps_addresses(dl, egressd_bin, egressctl_bin):
    before = wan(dl.wait_active(active_set()))
    d = dl.egressd
    assert d.stop() == 0
    d.assert_clean()
    check_direct(dl, egressctl_bin, before)
    check_restart(dl, egressd_bin, before)


def test_kill_9_keeps_addresses(dl, egressd_bin, egressctl_bin):
    before = wan(dl.wait_active(active_set()))
    d = dl.egressd
    d.signal(signal.SIGKILL)
    d.proc.wait(10)
    check_direct(dl, egressctl_bin, before)
    check_restart(dl, egressd_bin, before)


def test_devices_command_api_port(dl, egressd_bin):
    before = wan(dl.wait_active(active_set()))
    assert dl.egressd.stop() == 0
    dl.egressd.assert_clean()
    mark = len(dl.upstream_log())
    d = Egressd.command(dl.gw, egressd_bin, [
        "devices", "-wan", "wan0", "-lan", "lan0", "-api-port", "5050",
        "-state-dir", dl.state_dir(), "-leases-file", dl.lan_leases_path, "-grace", "4s",
        "--set", "devices.dhcp4_retry_min=500ms", "--set", "devices.dhcp4_retry_max=3s"],
        name="egressd-devices", timeout=15)
    dl.egressd = d
    r = dl.gw.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                   "http://127.0.0.1:5050/health"])
    assert r.stdout == "200", r
    r = dl.gw.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                   "http://127.0.0.1:5050/devices"])
    assert r.stdout == "401", "authenticated like the rest of the API: %r" % r
    assert wan(dl.wait_active(list(before), timeout=40)) == before
    assert not [i for i in before if dl.dhcp_seen("DHCPDISCOVER", mac_of(i), mark)]
