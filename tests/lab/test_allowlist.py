"""Lab tests of the gateway agent, egressd's [allowlist] module (allowlab.py's topology).

Without egress-server: a list kept in the state folder is enforced as soon as egressd is
ready (a restart without the server), for every kind of item: addresses of both families, a
prefix, a port-limited and a source-limited entry, names and wildcards through DNS learning;
a destination never added is blocked and its drops counted per client; a private address a
list holds is skipped and logged; counters are labelled with the entry.

With the real egress-server in node srv (egress_server.py): entries of every kind added and
deleted reach both gateways' clients; a destination never added is blocked and counted; the
server killed with kill -9 while the gateways keep enforcing, restarted with nothing lost;
an entry deleted while a gateway was away is removed when it comes back; a wrong token
refused; `egressd allowlist -iptables-wss-server` as the original gateway is run.
"""

import pytest

from allowlab import SERVER_SETTINGS, AllowLab
from egress_server import EgressServer
from egressd import Egressd

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

KEPT = [
    {"key": "1", "entry": 1, "label": "11.0.0.1", "dst": "11.0.0.1/32"},
    {"key": "2", "entry": 2, "label": "11.0.3.0/24", "dst": "11.0.3.0/24"},
    {"key": "3", "entry": 3, "label": "2a00:1::3", "dst": "2a00:1::3/128"},
    {"key": "4", "entry": 4, "label": "11.0.0.4", "dst": "11.0.0.4/32", "proto": "tcp",
     "ports": "8080"},
    {"key": "5", "entry": 5, "label": "10.9.9.9", "dst": "10.9.9.9/32"},
    {"key": "6", "entry": 6, "label": "www.allowed.test", "name": "www.allowed.test"},
    {"key": "7", "entry": 7, "label": "*.cdn.test", "name": "*.cdn.test"},
    {"key": "8", "entry": 8, "label": "11.0.0.8", "dst": "11.0.0.8/32",
     "sources": ["10.1.0.99/32"]},
]


def check_kept_list(al):
    """What KEPT allows from c1 through gw1, and what it does not."""
    assert al.fetch("c1", "11.0.0.1") == "web"
    assert al.fetch("c1", "11.0.3.77") == "web"
    assert al.fetch("c1", "2a00:1::3") == "web"
    assert al.fetch("c1", "11.0.0.4", 8080) == "alt"
    assert al.fetch("c1", "11.0.0.4", 80) is None  # port-limited
    assert al.fetch("c1", "11.0.0.8") is None  # for another source only
    assert al.fetch("c1", "11.0.0.9") is None  # never added
    assert al.fetch("c1", "2a00:1::9") is None


def test_kept_list_enforced_at_start(lab, egressd_bin):
    al = AllowLab(lab, egressd_bin)
    al.zone({"www.allowed.test": ["11.0.0.2", "2a00:1::2"], "other.test": ["11.0.0.3"]})
    al.write_state("gw1", 7, KEPT)
    d = al.start_gateway("gw1", server=False)
    # at once: no wait beyond the ready line
    check_kept_list(al)
    assert al.fetch("c1", "11.0.0.2") is None  # www.allowed.test's, not learned yet
    d.wait_log(r"item 5 \(10\.9\.9\.9\): 10\.9\.9\.9/32 is private")

    # names: the forwarder's answer admits its addresses before the client has it
    assert al.fetch_name("c1", "www.allowed.test") == ("web", "11.0.0.2")
    assert al.fetch_name("c1", "www.allowed.test", family=6) == ("web", "2a00:1::2")
    assert al.fetch_name("c1", "a.b.cdn.test") == ("web", "11.0.0.15")
    assert al.fetch_name("c1", "other.test") == (None, "11.0.0.3")
    assert al.fetch("c1", "11.0.0.3") is None

    m = al.metrics("gw1")
    assert m[("egress_allowlist_bytes_total",
              frozenset({"entry": "11.0.0.1", "destination": "11.0.0.1"}.items()))] > 0
    assert m[("egress_allowlist_packets_total",
              frozenset({"entry": "*.cdn.test", "destination": "11.0.0.15"}.items()))] > 0
    assert m[("egress_allowlist_dropped_packets_total",
              frozenset({"client": "10.1.0.2"}.items()))] > 0
    assert m[("egress_allowlist_version", frozenset())] == 7
    assert m[("egress_allowlist_items", frozenset())] == 7  # the private one left out
    st = al.status("gw1").json()
    assert st["version"] == 7 and st["skipped"] >= 1 and st["connection"] is None
    assert {d["client"] for d in st["drops"]} == {"10.1.0.2", "fd01::2"}
    assert all(d["packets"] > 0 for d in st["drops"])
    assert {i["label"] for i in st["list"]} >= {"11.0.0.1", "*.cdn.test"} and not st["truncated"]
    # per destination counters in each item, the private one among the skipped
    one = next(i for i in st["list"] if i["label"] == "11.0.0.1")
    assert one["traffic"][0]["dst"] == "11.0.0.1" and one["traffic"][0]["packets"] > 0
    cdn = next(i for i in st["list"] if i["label"] == "*.cdn.test")
    assert {t["dst"] for t in cdn["traffic"]} >= {"11.0.0.15"}
    assert {(k["what"], k["dst"]) for k in st["skipped_items"]} == {("10.9.9.9", "10.9.9.9/32")}
    # ?search= picks items by label, name or destination
    found = al.status("gw1", "?search=11.0.3").json()
    assert [i["label"] for i in found["list"]] == ["11.0.3.0/24"] and found["matched"] == 1
    assert found["items"] == 7 and not found["truncated"]

    # stopped, the table stays (keep_table): the list is still enforced without egressd
    assert d.stop() == 0
    d.assert_clean()
    check_kept_list(al)
    # and a restart without the server takes it over at once
    al.start_gateway("gw1", server=False)
    check_kept_list(al)
    assert al.fetch("c2", "11.0.0.1") is None  # gw2 runs no agent: c2 reaches nothing


def test_keep_table_off(lab, egressd_bin):
    """keep_table = false: the table goes with egressd, and with it the restrictions."""
    al = AllowLab(lab, egressd_bin)
    al.write_state("gw1", 1, KEPT[:1])
    lab["gw1"].sysctl(**{"net.ipv4.ip_forward": 1})  # the host forwards by itself
    d = al.start_gateway("gw1", server=False, extra="keep_table = false\n")
    assert al.fetch("c1", "11.0.0.2") is None
    assert d.stop() == 0
    assert "egress_allowlist" not in lab["gw1"].run(["nft", "list", "tables"]).stdout
    assert al.fetch("c1", "11.0.0.2") == "web"


# ---- with egress-server ----------------------------------------------------------------

def with_server(lab, egressd_bin, server_bin):
    al = AllowLab(lab, egressd_bin)
    srv = al.server = EgressServer.start(lab["srv"], server_bin, settings=SERVER_SETTINGS)
    return al, srv, srv.token("gateways", "read")


def add(srv, body):
    r = srv.api().post("/api/entries", body if isinstance(body, dict) else {"value": body})
    assert r.status == 201, r
    return r.json()["id"]


def delete(srv, entry):
    r = srv.api().delete("/api/entries/%d" % entry)
    assert r.status in (200, 204), r


def dropped(al, gw, client):
    return al.metrics(gw).get(("egress_allowlist_dropped_packets_total",
                               frozenset({"client": client}.items())), 0)


def test_server_entries(lab, egressd_bin, server_bin):
    """Entries added on the server reach both gateways' clients, deleted ones are blocked,
    a destination never added stays blocked and counted; every kind of entry."""
    al, srv, token = with_server(lab, egressd_bin, server_bin)
    al.zone({"www.allowed.test": ["11.0.0.2", "2a00:1::2"], "other.test": ["11.0.0.3"]})
    al.start_gateways(token)
    for gw in ("gw1", "gw2"):
        al.wait_synced(gw)
    assert al.fetch("c1", "11.0.0.1") is None
    ip = add(srv, "11.0.0.1")
    for c in ("c1", "c2"):
        al.wait_reachable(c, "11.0.0.1")
    add(srv, "11.0.3.0/24")
    add(srv, "2a00:1::3")
    add(srv, {"value": "11.0.0.4", "proto": "tcp", "ports": "8080"})
    add(srv, "www.allowed.test")
    add(srv, "*.cdn.test")
    r = srv.api().post("/api/entries", {"value": "10.9.9.9"})
    assert r.status == 400 and "private" in r.text
    al.wait_reachable("c2", "11.0.3.9")
    al.wait_reachable("c2", "2a00:1::3")
    al.wait_reachable("c2", "11.0.0.4", 8080)
    assert al.fetch("c2", "11.0.0.4", 80) is None
    assert al.fetch_name("c2", "www.allowed.test", family=6) == ("web", "2a00:1::2")
    assert al.fetch_name("c1", "x.cdn.test") == ("web", "11.0.0.15")
    assert al.fetch_name("c1", "other.test") == (None, "11.0.0.3")
    # never added: blocked and counted
    before = dropped(al, "gw1", "10.1.0.2")
    assert al.fetch("c1", "11.0.0.9") is None
    assert dropped(al, "gw1", "10.1.0.2") > before
    # deleted: blocked again on both gateways
    delete(srv, ip)
    for c in ("c1", "c2"):
        al.wait_blocked(c, "11.0.0.1")
    assert al.fetch("c1", "11.0.3.9") == "web"


def test_server_killed(lab, egressd_bin, server_bin):
    """kill -9 of the server: the gateways go on enforcing the list; restarted, nothing is
    lost and changes flow again.  Entries deleted while a gateway was away are removed when
    it comes back."""
    al, srv, token = with_server(lab, egressd_bin, server_bin)
    al.start_gateways(token)
    a = add(srv, "11.0.0.1")
    b = add(srv, "11.0.0.5")
    for c in ("c1", "c2"):
        al.wait_reachable(c, "11.0.0.5")
    srv.kill9()
    for gw in ("gw1", "gw2"):
        al.gw[gw].wait_log(r"synced -> waiting")
    assert al.fetch("c1", "11.0.0.1") == "web" and al.fetch("c1", "11.0.0.9") is None
    srv = al.server = srv.restart()
    version = srv.api().get("/api/status").json()["version"]
    for gw in ("gw1", "gw2"):
        al.wait_synced(gw, version)
    assert {e["id"] for e in srv.api().get("/api/entries").json()["entries"]} >= {a, b}
    # gw2 away (egressd stopped: its table stays), an entry deleted meanwhile
    assert al.gw["gw2"].stop() == 0
    delete(srv, b)
    al.wait_blocked("c1", "11.0.0.5")
    assert al.fetch("c2", "11.0.0.5") == "web"  # still the list it had
    al.start_gateway("gw2", token)
    al.wait_blocked("c2", "11.0.0.5")
    assert al.fetch("c2", "11.0.0.1") == "web"


def test_wrong_token(lab, egressd_bin, server_bin):
    """A gateway with a token the server does not know is refused; it keeps enforcing the
    list it has (fail closed) and says why."""
    al, srv, token = with_server(lab, egressd_bin, server_bin)
    add(srv, "11.0.0.1")
    al.write_state("gw1", 1, KEPT[:1])
    d = al.start_gateway("gw1", "not-a-token")
    d.wait_log(r"connecting -> waiting \(.*401")
    assert al.status("gw1").json()["connection"]["state"] in ("waiting", "connecting")
    assert al.fetch("c1", "11.0.0.1") == "web"
    assert al.fetch("c1", "11.0.0.9") is None


def test_shortcut(lab, egressd_bin, server_bin):
    """egressd allowlist -iptables-wss-server URL, as the original gateway is run."""
    al, srv, token = with_server(lab, egressd_bin, server_bin)
    add(srv, "11.0.0.1")
    d = Egressd.command(lab["gw1"], egressd_bin, [
        "allowlist", "-iptables-wss-server", al.server_url(), "-clients", "10.1.0.0/24",
        "-token", token, "-state-dir", al.state_dir("gw1"), "--set",
        "allowlist.reconnect_min=200ms"])
    d.wait_log(r"syncing -> synced")
    al.wait_reachable("c1", "11.0.0.1")
    assert al.fetch("c1", "11.0.0.9") is None
