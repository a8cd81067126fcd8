"""The uplink routes of the API: GET /api/uplinks, GET and PATCH /api/uplinks/{name}.

Topology in policylab.py: two LAN clients, gw running egressd's policy module over three
ISPs, an internet whose echo server tells which uplink a flow came through.  The API is
reached over egressd's UNIX socket (root: admin) with apiclient.ApiClient.
"""

import pytest

from apiclient import ApiClient
from egressd import Egressd
from lab import wait_for
from policylab import CONF, build, tcp_shares, wait_table

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]


def start(gw, egressd_bin, conf=CONF):
    d = Egressd.start(gw, egressd_bin, conf)
    for u in ("isp1", "isp2", "isp3"):
        d.wait_log(r"uplink %s: init -> up" % u)
    d.wait_log(r"policy: balancing")
    wait_table(gw)
    return d, ApiClient.unix(d)


def uplink(api, name):
    r = api.get("/api/uplinks/" + name)
    assert r.status == 200, r
    return r.json()


def test_get_uplinks(lab, egressd_bin):
    """Every uplink with its model, check window and counters; one by name; 404 for none."""
    gw = build(lab)
    d, api = start(gw, egressd_bin)
    r = api.get("/api/uplinks")
    assert r.status == 200, r
    ups = r.json()["uplinks"]
    assert [u["name"] for u in ups] == ["isp1", "isp2", "isp3"]
    for u, w in zip(ups, (3, 2, 1)):
        assert u["state"] == "up" and u["enabled"] is True and u["in_service"] is True, u
        assert u["weight"] == w and u["tier"] == 1 and u["interface"] == u["name"], u
        assert u["check"] == "icmp" and u["rtt_ms"] > 0 and 0 <= u["loss_pct"] <= 100, u
        assert u["transitions"][-1]["from"] == "init" and u["transitions"][-1]["to"] == "up"
        assert u["since"].endswith("Z") and u["reason"], u
        assert u["traffic_source"] == "interface", u
    # the interface's counters follow what the policy sends through it
    before = uplink(api, "isp1")["tx_bytes"]
    c = tcp_shares(lab["client1"], 60)
    assert c["isp1"] > 0, c
    wait_for(lambda: uplink(api, "isp1")["tx_bytes"] > before, what="isp1's counters to move")
    # a share is a part of the whole, when there is traffic
    wait_for(lambda: all(u["share"] is not None for u in api.get("/api/uplinks").json()["uplinks"]
                         if u["throughput_bps"]), what="shares")
    one = uplink(api, "isp2")
    assert one["name"] == "isp2" and one["weight"] == 2
    r = api.get("/api/uplinks/nosuch")
    assert r.status == 404 and "nosuch" in r.json()["error"], r
    assert d.stop() == 0
    d.assert_clean()


def test_patch_refuses_bad_input(lab, egressd_bin):
    """Bad JSON, unknown fields, values of the wrong type or range: 400 naming the field,
    and nothing changes."""
    gw = build(lab)
    d, api = start(gw, egressd_bin)
    d.set_mark()
    cases = [
        ({"weight": 0}, "weight"),
        ({"weight": 257}, "weight"),
        ({"weight": "3"}, "weight"),
        ({"weight": 2.5}, "weight"),
        ({"enabled": "no"}, "enabled"),
        ({"enabled": 0}, "enabled"),
        ({"enabled": False, "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        r = api.patch("/api/uplinks/isp2", body)
        assert r.status == 400, (body, r)
        assert r.json().get("field") == field, (body, r.json())
    r = api.patch("/api/uplinks/isp2", {})
    assert r.status == 400, r
    r = api.patch("/api/uplinks/isp2", raw=b"{\"enabled\": fals")
    assert r.status == 400, r
    r = api.patch("/api/uplinks/isp2?confirm=soon", {"enabled": False})
    assert r.status == 400 and r.json()["field"] == "confirm", r
    r = api.patch("/api/uplinks/nosuch", {"enabled": False})
    assert r.status == 404, r
    u = uplink(api, "isp2")
    assert u["enabled"] is True and u["weight"] == 2, u
    assert "changed" not in d.since_mark()
    # negative: a good one is taken
    r = api.patch("/api/uplinks/isp2", {"weight": 5})
    assert r.status == 200 and r.json()["weight"] == 5, r
    d.wait_log(r"uplink isp2: changed: weight 2 -> 5")
    assert d.stop() == 0
    d.assert_clean()


def test_drain_with_confirm_rolls_back_by_itself(lab, egressd_bin):
    """PATCH {"enabled": false}?confirm=20s drains at once; unconfirmed, the drain is rolled
    back by itself and the uplink takes new connections again.  (20 s: the checks while it
    waits must end before it rolls back, also on a loaded machine.)"""
    gw = build(lab)
    d, api = start(gw, egressd_bin)
    d.set_mark()
    r = api.patch("/api/uplinks/isp2?confirm=20s", {"enabled": False})
    assert r.status == 200, r
    assert r.json()["enabled"] is False and r.json()["in_service"] is False, r.json()
    d.wait_log(r"uplink isp2: changed: drained")
    assert r.json()["confirm_within_s"] == 20
    c = tcp_shares(lab["client1"], 60)
    assert "rolled back" not in d.since_mark()  # what follows was measured while drained
    assert c["isp2"] == 0 and c["fail"] == 0, c
    assert uplink(api, "isp2")["state"] == "up"  # drained, not down
    d.wait_log(r"rolled back", timeout=30)
    d.wait_log(r"uplink isp2: changed: enabled again")
    assert uplink(api, "isp2")["enabled"] is True
    wait_for(lambda: tcp_shares(lab["client1"], 100)["isp2"] > 0, timeout=5,
             what="isp2 to take new connections again")
    assert d.stop() == 0
    d.assert_clean()


def test_drain_survives_a_restart(lab, egressd_bin):
    """A drain made without ?confirm is kept in the state folder: the next run starts with
    the uplink drained; enabled again through the API, the run after starts with it in."""
    gw = build(lab)
    d, api = start(gw, egressd_bin)
    r = api.patch("/api/uplinks/isp3", {"enabled": False})
    assert r.status == 200 and r.json()["enabled"] is False, r
    assert d.stop() == 0
    d = Egressd.start(gw, egressd_bin, CONF)
    d.wait_log(r"uplink isp3: added \(drained")
    api = ApiClient.unix(d)
    assert uplink(api, "isp3")["enabled"] is False
    d.wait_log(r"policy: balancing")
    wait_table(gw, ("isp1", "isp2"))
    c = tcp_shares(lab["client1"], 100)
    assert c["isp3"] == 0 and c["fail"] == 0, c
    r = api.patch("/api/uplinks/isp3", {"enabled": True})
    assert r.status == 200 and r.json()["enabled"] is True, r
    assert d.stop() == 0
    d = Egressd.start(gw, egressd_bin, CONF)
    api = ApiClient.unix(d)
    assert uplink(api, "isp3")["enabled"] is True
    assert d.stop() == 0
    d.assert_clean()
