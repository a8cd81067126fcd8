"""go-dispatch-proxy's gateway-mode JSON API on egressd (`egressd dispatch -gateway`).

    client (10.20.0.2) -- gw (egressd dispatch -gateway 192.0.2.1@3 192.0.2.9@2) --+-- isp1 --+-- inet
                                                                                     +-- isp2 --+

The topology is tests/lab/proxylab.py's.  Each test calls the API over the daemon's UNIX
socket (root: an admin) and checks what the kernel shows: table inet egress_gateway comes and
goes with the toggle, and stays as it was when the request is refused.
"""
import subprocess
import sys
import time

import pytest

import proxylab
from apiclient import ApiClient
from egressd import Egressd
from lab import Lab, wait_for

pytestmark = pytest.mark.requires_root

GATEWAY_KEYS = {  # the fork's GatewayWebInfo
    "enabled": bool, "gateway_ip": str, "subnet_cidr": str, "transparent_port": int,
    "dns_port": int, "nat_interface": str, "auto_configure": bool, "dhcp_range_start": str,
    "dhcp_range_end": str, "iptables_rules": list, "status": str}
TRAFFIC_KEYS = {  # the fork's GlobalTrafficStats
    "total_bytes_in": int, "total_bytes_out": int, "total_data_transferred": int,
    "bytes_per_second": int, "bytes_in_per_second": int, "bytes_out_per_second": int,
    "connections_per_minute": int, "connections_per_second": int, "active_connections": int,
    "total_connections": int, "uptime_seconds": float}
CONNECTION_KEYS = {  # the fork's active_connection
    "id": str, "source_ip": str, "source_port": int, "destination_ip": str,
    "destination_port": int, "load_balancer": str, "lb_index": int, "start_time": str,
    "last_activity": str, "bytes_in": int, "bytes_out": int, "status": str, "protocol": str}
BACKUP_KEYS = {  # the fork's GET /api/gateway/iptables/backup
    "backup_exists": bool, "backup_file": str, "backup_timestamp": str, "backup_size": int,
    "backup_file_exists": bool, "is_configured": bool, "auto_configure": bool}

# A SOCKS5 client that holds one connection to the echo server: it says who it is, sends a
# 1000-byte line, prints its local port, the bytes it sent and received, then waits for EOF
# on stdin before it closes.
HOLD = r"""
import socket, struct, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(sys.argv[3]) + struct.pack("!H", 7000))
rep = s.recv(10)
assert rep[:2] == b"\x05\x00", rep
f = s.makefile("rwb", buffering=0)
sent = recv = 0
for line in (b"who\n", b"x" * 1000 + b"\n"):
    f.write(line)
    sent += len(line)
    got = f.readline()
    recv += len(got)
    if line == b"who\n":
        peer = got.decode().split()[1]
print(s.getsockname()[1], sent, recv, peer, flush=True)
sys.stdin.read()
s.close()
"""


def has(obj, keys):
    """obj has every key with a value of its type (an int is a float too)."""
    for k, t in keys.items():
        assert k in obj, (k, obj)
        ok = isinstance(obj[k], (int, float)) if t is float else isinstance(obj[k], t)
        assert ok and not (t is int and isinstance(obj[k], bool)), (k, obj[k])


def gw_table(gw):
    r = gw.run(["nft", "list", "table", "inet", "egress_gateway"], check=False)
    return r.stdout if r.returncode == 0 else None


@pytest.fixture(scope="module")
def plab():
    with Lab() as lab:
        proxylab.build(lab)
        yield lab


_starts = iter(range(1, 1000))


def start(lab, binary, *extra, gateway=True, backup=None):
    """egressd dispatch (in gateway mode unless gateway=False) and a client of its API.  Each
    gets a name of its own, so its own state directory: an operator's settings that one test
    made (they are kept there across restarts) never reach the next."""
    args = ["dispatch", "-resolver", proxylab.DNS, "-lhost", proxylab.GW_LAN, "-lport", "1080"]
    if gateway:
        args += ["-gateway", "-gateway-ip", proxylab.GW_LAN, "-subnet", "10.20.0.0/24",
                 "-auto-config", "-backup-file", str(backup)]
    args += list(extra) + ["%s@3" % proxylab.ADDR["isp1"], "%s@2" % proxylab.ADDR["isp2"]]
    d = Egressd.command(lab["gw"], binary, args, name="egressd-api%d" % next(_starts))
    d.dispatch_args = args  # for a restart under the same name
    if gateway:
        d.wait_log(r"gateway: intercepting 1 subnet")
    return d, ApiClient.unix(d)


def stop(d):
    assert d.stop() == 0
    d.assert_clean()


@pytest.mark.daemon
def test_fork_shapes(plab, egressd_bin):
    """Every endpoint answers in the fork's shape (and its names), with ours beside."""
    gw = plab["gw"]
    backup = gw.lab.dir / "shapes.nft"
    d, api = start(plab, egressd_bin, backup=backup)
    try:
        r = api.get("/api/gateway")
        assert r.status == 200, r
        g = r.json()
        has(g, GATEWAY_KEYS)
        assert g["enabled"] is True and g["status"] == "active" and g["table_installed"]
        assert g["gateway_ip"] == proxylab.GW_LAN and g["subnet_cidr"] == "10.20.0.0/24"
        assert (g["transparent_port"], g["dns_port"], g["auto_configure"]) == (8888, 5353, True)
        assert any("redirect to :8888" in line for line in g["iptables_rules"]), g
        assert g["dhcp_range_start"] == "" and g["intercept"] == "redirect"

        r = api.get("/api/gateway/config")
        assert r.status == 200, r
        assert r.json() == {"enabled": True, "gateway_ip": proxylab.GW_LAN,
                            "subnet_cidr": "10.20.0.0/24", "transparent_port": 8888,
                            "dns_port": 5353, "nat_interface": "auto",
                            "auto_configure": True}

        r = api.get("/api/traffic")
        assert r.status == 200, r
        t = r.json()
        has(t, TRAFFIC_KEYS)
        assert set(t["uplinks"]) == {"192.0.2.1", "192.0.2.9"}, t

        r = api.get("/api/connections")
        assert r.status == 200, r
        assert r.json() == {"active_connections": [], "total_count": 0, "limit": 100,
                            "matched": 0}

        r = api.get("/api/gateway/iptables/backup")
        assert r.status == 200, r
        b = r.json()
        has(b, BACKUP_KEYS)
        assert b["backup_exists"] and b["backup_file"] == str(backup)
        assert b["backup_size"] == backup.stat().st_size and b["is_configured"]
        assert time.strptime(b["backup_timestamp"], "%Y-%m-%d %H:%M:%S")

        # the modules' status
        r = api.get("/api/modules")
        assert r.status == 200, r
        mods = {m["name"]: m for m in r.json()["modules"]}
        proxy, dns, gwm = mods["proxy"]["status"], mods["dns"]["status"], mods["gateway"]["status"]
        assert {"kind": "proxy", "address": proxylab.GW_LAN, "port": 1080} in proxy["listeners"]
        assert {"kind": "transparent", "address": "0.0.0.0", "port": 8888} in proxy["listeners"]
        assert [u["name"] for u in proxy["uplinks"]] == ["192.0.2.1", "192.0.2.9"], proxy
        assert proxy["relay"]["workers"] >= 1 and proxy["connections"] == 0, proxy
        assert dns["listen"]["port"] == 5353 and dns["resolvers"], dns
        assert gwm["table_installed"] is True and gwm["status"] == "active", gwm
    finally:
        stop(d)


@pytest.mark.daemon
def test_live_connection(plab, egressd_bin):
    """A connection through the proxy is in the table while it is open - its client,
    destination, uplink and the bytes each way exactly - and goes when it closes."""
    c = plab["client"]
    d, api = start(plab, egressd_bin, gateway=False)
    hold = c.popen([sys.executable, "-c", HOLD, proxylab.GW_LAN, "1080", proxylab.SERVER],
                   name="hold", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port, sent, recv, peer = hold.stdout.readline().split()
        port, sent, recv = int(port), int(sent), int(recv)

        def mine():
            r = api.get("/api/connections?source=%s" % proxylab.CLIENT)
            assert r.status == 200, r
            return [x for x in r.json()["active_connections"] if x["source_port"] == port]

        conns = wait_for(mine, what="the connection in the table")
        (x,) = conns
        has(x, CONNECTION_KEYS)
        assert (x["source_ip"], x["destination_ip"], x["destination_port"]) == \
            (proxylab.CLIENT, proxylab.SERVER, 7000), x
        # the uplink that carried it, as the server saw it
        assert x["uplink"] == peer and x["load_balancer"] == peer, (x, peer)
        assert (x["bytes_out"], x["bytes_in"]) == (sent, recv), (x, sent, recv)
        assert x["protocol"] == "TCP" and x["kind"] == "socks5" and x["status"] == "active"
        assert x["age"] >= 0 and x["start_time"] <= x["last_activity"]

        # filters: another client, another uplink, another destination list nothing
        other = "192.0.2.9" if peer == "192.0.2.1" else "192.0.2.1"
        for q in ("source=10.99.", "uplink=" + other, "destination=198.51.100.77"):
            r = api.get("/api/connections?" + q)
            assert r.status == 200 and r.json()["matched"] == 0, (q, r)
        r = api.get("/api/connections?uplink=" + peer + "&limit=1")
        assert r.json()["matched"] >= 1 and r.json()["total_count"] == 1, r
        r = api.get("/api/traffic")
        assert r.json()["uplinks"][peer]["active_connections"] >= 1, r
        assert r.json()["total_bytes_out"] >= sent, r

        hold.stdin.close()
        hold.wait(timeout=10)
        wait_for(lambda: not mine(), what="the closed connection out of the table")
    finally:
        hold.stop()
        stop(d)


@pytest.mark.daemon
def test_toggle_and_confirm(plab, egressd_bin):
    """The toggle takes table inet egress_gateway away and puts it back; with ?confirm= it
    comes back by itself unless the change is confirmed; confirmed, it is kept, also across
    a restart."""
    gw = plab["gw"]
    d, api = start(plab, egressd_bin, backup=gw.lab.dir / "toggle.nft")
    try:
        table = gw_table(gw)
        assert table
        r = api.post("/api/gateway/toggle", {"enabled": False})
        assert r.status == 200, r
        assert r.json()["success"] and r.json()["enabled"] is False and r.json()["changed"]
        assert gw_table(gw) is None
        assert api.get("/api/gateway").json()["status"] == "disabled"
        assert not gw.listening(8888)  # the transparent listener went too
        r = api.post("/api/gateway/toggle", {"enabled": False})  # already off: no change
        assert r.status == 200 and not r.json()["changed"], r
        r = api.post("/api/gateway/toggle", {"enabled": True})
        assert r.status == 200 and r.json()["enabled"] is True, r
        assert gw_table(gw) == table
        wait_for(lambda: gw.listening(8888), what="the transparent listener back")

        # not confirmed: rolled back
        r = api.post("/api/gateway/toggle?confirm=2s", {"enabled": False})
        assert r.status == 200 and r.json()["seconds_left"] == 2, r
        assert gw_table(gw) is None
        r = api.post("/api/gateway/toggle", {"enabled": True})
        assert r.status == 409, r  # one change awaits its confirmation at a time
        wait_for(lambda: gw_table(gw) == table, timeout=15, what="the table back (rollback)")
        assert api.get("/api/gateway").json()["enabled"] is True
        wait_for(lambda: gw.listening(8888), what="the transparent listener back")

        # confirmed: kept, past the deadline it had
        r = api.post("/api/gateway/toggle?confirm=2s", {"enabled": False})
        assert r.status == 200, r
        assert api.post("/api/config/confirm").status == 200
        assert api.get("/api/config/pending").status in (200, 204)
        time.sleep(3)  # a negative check: nothing may roll back now
        assert gw_table(gw) is None
        assert api.get("/api/gateway").json()["enabled"] is False
    finally:
        stop(d)

    # kept across a restart (the operator's settings are in the state directory)
    d = Egressd.command(gw, egressd_bin, d.dispatch_args, name=d.proc.name)
    try:
        assert ApiClient.unix(d).get("/api/gateway").json()["enabled"] is False
        assert gw_table(gw) is None
    finally:
        stop(d)


@pytest.mark.daemon
def test_bad_requests_change_nothing(plab, egressd_bin):
    """Bad JSON, unknown fields and bad values get 400 naming the field; the table, the
    configuration and the module stay as they were."""
    gw = plab["gw"]
    d, api = start(plab, egressd_bin, backup=gw.lab.dir / "bad.nft")
    try:
        table, before = gw_table(gw), api.get("/api/gateway").json()
        cases = [
            ("/api/gateway/toggle", "{not json", None),
            ("/api/gateway/toggle", [1, 2], None),
            ("/api/gateway/toggle", {}, "enabled"),
            ("/api/gateway/toggle", {"enabled": "no"}, "enabled"),
            ("/api/gateway/toggle", {"enabled": False, "force": True}, "force"),
            ("/api/gateway/toggle?confirm=soon", {"enabled": False}, "confirm"),
            ("/api/gateway/config", {}, None),
            ("/api/gateway/config", {"gateway_ip": 5}, "gateway_ip"),
            ("/api/gateway/config", {"gateway_ip": "10.20.0.300"}, "gateway_ip"),
            ("/api/gateway/config", {"subnet_cidr": "10.20.0.0/33"}, "subnet_cidr"),
            ("/api/gateway/config", {"transparent_port": 70000}, "transparent_port"),
            ("/api/gateway/config", {"transparent_port": "8888"}, "transparent_port"),
            ("/api/gateway/config", {"dns_port": 0}, "dns_port"),
            ("/api/gateway/config", {"auto_configure": 1}, "auto_configure"),
            ("/api/gateway/config", {"dhcp_range_start": "10.20.0.100"}, "dhcp_range_start"),
            ("/api/gateway/config", {"dns_port": 5300, "mtu": 1400}, "mtu"),
        ]
        for path, body, field in cases:
            if isinstance(body, str):
                r = api.post(path, raw=body, headers={"Content-Type": "application/json"})
            else:
                r = api.post(path, body)
            assert r.status == 400, (path, body, r)
            e = r.json()
            assert e["error"], (path, body, e)
            if field:
                assert e.get("field") == field, (path, body, e)
            assert gw_table(gw) == table, (path, body)
            assert api.get("/api/gateway").json() == before, (path, body)
        r = api.get("/api/connections?limit=0")
        assert r.status == 400 and r.json()["field"] == "limit", r

        # a good one changes what it says, and only that
        r = api.post("/api/gateway/config", {"transparent_port": 8890})
        assert r.status == 200, r
        wait_for(lambda: gw.listening(8890), what="the transparent listener on 8890")
        assert "redirect to :8890" in gw_table(gw)
        g = api.get("/api/gateway").json()
        assert g["transparent_port"] == 8890 and g["dns_port"] == before["dns_port"]
    finally:
        stop(d)


@pytest.mark.daemon
def test_restore_and_not_configured(plab, egressd_bin):
    """The restore puts the saved ruleset back exactly and leaves gateway mode off; without
    [gateway] the endpoints say gateway mode is not configured."""
    gw = plab["gw"]
    gw.run(["nft", "-f", "-"], input="table ip foreign {\n chain input {\n"
           "  type filter hook input priority 0; policy accept;\n"
           "  tcp dport 9 counter drop\n }\n}\n")
    before = gw.run(["nft", "-s", "list", "ruleset"]).stdout
    backup = gw.lab.dir / "restore.nft"
    d, api = start(plab, egressd_bin, backup=backup)
    try:
        assert gw_table(gw)
        r = api.post("/api/gateway/iptables/restore")
        assert r.status == 200, r
        assert r.json()["success"] and r.json()["enabled"] is False, r
        assert gw.run(["nft", "-s", "list", "ruleset"]).stdout == before
        assert api.get("/api/gateway").json()["status"] == "disabled"
        assert api.get("/api/gateway/iptables/backup").json()["is_configured"] is False
    finally:
        stop(d)
        gw.run(["nft", "delete", "table", "ip", "foreign"])

    d, api = start(plab, egressd_bin, gateway=False)
    try:
        r = api.get("/api/gateway")
        assert r.status == 200 and r.json() == {"enabled": False, "status": "disabled",
                                                "configured": False}, r
        r = api.post("/api/gateway/toggle", {"enabled": True})
        assert r.status == 409 and "not configured" in r.json()["error"], r
        assert gw_table(gw) is None
        assert api.get("/api/gateway/config").status == 503
        assert api.get("/api/connections").status == 200
    finally:
        stop(d)
