"""Lab tests of the gateway agent, egressd's [allowlist] module (allowlab.py's topology).

Without egress-server: a list kept in the state folder is enforced as soon as egressd is
ready (a restart without the server), for every kind of item: addresses of both families, a
prefix, a port-limited and a source-limited entry, names and wildcards through DNS learning;
a destination never added is blocked and its drops counted per client; a private address a
list holds is skipped and logged; counters are labelled with the entry.

With egress-server (tests marked `server`): entries added, deleted, the server killed and
restarted, a gateway away while entries go, a wrong token.
"""

import pytest

from allowlab import AllowLab

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
    assert {i["label"] for i in st["items"]} >= {"11.0.0.1", "*.cdn.test"}

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
