"""egress-server's resolver against a real DNS server whose zone the test changes: a changed
A record published within the interval and the old address gone after the grace period,
CNAME chains, AAAA, a domain resolving only to reserved addresses publishing nothing,
NXDOMAIN in the status.

    srv (egress-server, [resolver] with a short interval and grace) --- dns (BIND's named,
    10.53.0.2 fd53::2                                                   10.53.0.1 fd53::1,
                                                                        zone allow.test)

What an entry publishes is read from the store itself (its "ENTRY/ADDR" items, what a
gateway's snapshot holds), beside what the API's entry says of it ("resolver").
"""

import contextlib
import sqlite3

import pytest

from authdns import AuthDNS
from egress_server import EgressServer
from lab import wait_for

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

SPEC = """
    srv:eth0 10.53.0.2/24 fd53::2/64 -- dns:eth0 10.53.0.1/24 fd53::1/64
"""
ZONE = "allow.test"
# short, so that a test sees rounds and a grace period end; the waits below are deadlines
INTERVAL, GRACE = 2, 6
WAIT = 20  # s: a deadline for what must happen within INTERVAL (or after GRACE)


def start(lab, server_bin, records, nameserver="10.53.0.1"):
    lab.apply(SPEC)
    dns = AuthDNS.start(lab["dns"], {ZONE: records})
    srv = EgressServer.start(lab["srv"], server_bin, settings={"resolver": {
        "nameservers": nameserver, "interval": "%ds" % INTERVAL, "ttl_min": "1s",
        "grace": "%ds" % GRACE, "timeout": "500ms"}})
    return dns, srv


def stop(srv):
    assert srv.stop() == 0, srv.proc.tail(30)
    srv.assert_clean()


def add(srv, value):
    r = srv.api().post("/api/entries", {"value": value})
    assert r.status == 201, r
    return r.json()["id"]


def published(srv, entry):
    """The addresses entry publishes in the store now."""
    with contextlib.closing(sqlite3.connect("file:%s?mode=ro" % srv.db, uri=True,
                                            timeout=5)) as db:
        rows = db.execute("SELECT key FROM items WHERE entry = ? AND item IS NOT NULL",
                          (entry,)).fetchall()
    return {k.split("/", 1)[1] for (k,) in rows if "/" in k}


def status(srv, entry):
    """What the resolver says of entry (GET /api/entries/ID's "resolver"), or None."""
    r = srv.api().get("/api/entries/%d" % entry)
    assert r.status == 200, r
    return r.json().get("resolver")


def wait_published(srv, entry, want, timeout=WAIT):
    """Wait until entry publishes exactly the set want; return the status seen then."""
    wait_for(lambda: published(srv, entry) == want, timeout=timeout, interval=0.1,
             what="entry %d to publish %s (it publishes %s)"
             % (entry, sorted(want), sorted(published(srv, entry))))
    return status(srv, entry)


def test_changed_a_record_and_grace(lab, server_bin):
    dns, srv = start(lab, server_bin, [("www", 300, "A", "93.184.216.34")])
    www = add(srv, "www." + ZONE)
    st = wait_published(srv, www, {"93.184.216.34"}, timeout=10)
    assert [a["address"] for a in st["addresses"]] == ["93.184.216.34"]
    assert st["addresses"][0]["ttl"] == 300 and "expires" in st["addresses"][0]
    assert st["error"] is None and "publishes_nothing" not in st

    # the record changes: the new address comes with the next round (the interval, the TTL
    # being longer); the one that left DNS is still published with it, in its grace period
    dns.set_zone(ZONE, [("www", 300, "A", "93.184.216.99")])
    wait_for(lambda: "93.184.216.99" in published(srv, www), timeout=WAIT, interval=0.1,
             what="the new address published")
    assert published(srv, www) == {"93.184.216.34", "93.184.216.99"}
    old = {a["address"]: a for a in status(srv, www)["addresses"]}["93.184.216.34"]
    assert "grace_until" in old and "expires" not in old, old
    # then it goes, and only it
    wait_published(srv, www, {"93.184.216.99"}, timeout=GRACE + WAIT)
    stop(srv)


def test_cname_aaaa(lab, server_bin):
    dns, srv = start(lab, server_bin, [
        ("alias", 300, "CNAME", "edge"),
        ("edge", 300, "CNAME", "www"),
        ("www", 300, "A", "93.184.216.34"),
        ("www", 300, "AAAA", "2606:2800:220:1:248:1893:25c8:1946"),
        ("v6only", 300, "AAAA", "2606:4700::6810:84e5"),
    ], nameserver="[fd53::1]:53")
    alias, v6only = add(srv, "alias." + ZONE), add(srv, "v6only." + ZONE)
    # the chain alias -> edge -> www is followed for both families
    wait_published(srv, alias, {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"})
    st = wait_published(srv, v6only, {"2606:4700::6810:84e5"})
    assert st["error"] is None  # no A record is not an error when there is an AAAA
    # the chain's end moves: followed at the next round
    dns.set_zone(ZONE, [
        ("alias", 300, "CNAME", "edge"),
        ("edge", 300, "CNAME", "www2"),
        ("www2", 300, "A", "93.184.216.77"),
        ("v6only", 300, "AAAA", "2606:4700::6810:84e5"),
    ])
    wait_for(lambda: "93.184.216.77" in published(srv, alias), timeout=WAIT, interval=0.1,
             what="the new end of the chain published")
    wait_published(srv, alias, {"93.184.216.77"}, timeout=GRACE + WAIT)
    stop(srv)


def test_reserved_only_publishes_nothing(lab, server_bin):
    dns, srv = start(lab, server_bin, [
        ("internal", 300, "A", "10.9.9.9"),
        ("internal", 300, "A", "192.168.4.4"),
        ("internal", 300, "AAAA", "fd00::9"),
        ("mixed", 300, "A", "10.9.9.9"),
        ("mixed", 300, "A", "93.184.216.50"),
    ])
    internal, mixed = add(srv, "internal." + ZONE), add(srv, "mixed." + ZONE)
    nx = add(srv, "gone." + ZONE)
    # each address is judged alone: the public one of mixed is published
    wait_published(srv, mixed, {"93.184.216.50"})
    wait_for(lambda: (status(srv, internal) or {}).get("resolved_at"), timeout=WAIT,
             interval=0.1, what="internal resolved")
    st = status(srv, internal)
    assert published(srv, internal) == set()
    assert st["publishes_nothing"] == "resolves only to reserved addresses", st
    assert st["addresses"] == []
    refused = {r["address"]: r["why"] for r in st["refused"]}
    assert set(refused) == {"10.9.9.9", "192.168.4.4", "fd00::9"}, st
    assert all(refused.values()), refused
    assert "publishes_nothing" not in status(srv, mixed)
    wait_for(lambda: (status(srv, nx) or {}).get("error"), timeout=WAIT, interval=0.1,
             what="the NXDOMAIN shown")
    assert "NXDOMAIN" in status(srv, nx)["error"]
    r = srv.api().get("/api/status")
    assert r.status == 200, r
    rs = r.json()["resolver_status"]
    assert rs["leader"] is True and rs["domains"] == 3 and rs["publishing_nothing"] == 1, rs
    assert rs["nameservers"] == ["10.53.0.1:53"], rs
    stop(srv)
