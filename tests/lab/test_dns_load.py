"""The DNS forwarder under many queries in flight from several clients.

    client1 (10.54.1.2) --+
                          +-- gw (egressd [dns] on 10.54.1.1 and 10.54.2.1) -- up (10.54.9.2)
    client2 (10.54.2.2) --+

up runs dnsload.py serve: it answers shuffled, and before each answer it sends a forged
one (the ID plus one, or another question, with a wrong address).  Four askers (two per
client, three sockets each, the same IDs 0..N-1 in every one) have all their queries in
flight at once; every answer must reach the socket that asked, with its ID, its question
and the address made from its name.  Upstream, the forwarder's queries must come from many
source ports (the upstream socket pool rotates) with IDs of its own.
"""
import collections
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import json

import pytest

from egressd import Egressd
from lab import Lab

pytestmark = pytest.mark.requires_root
HERE = Path(__file__).resolve().parent
DNSLOAD = str(HERE / "dnsload.py")
SPEC = """
    client1:eth0 10.54.1.2/24 -- gw:c1 10.54.1.1/24
    client2:eth0 10.54.2.2/24 -- gw:c2 10.54.2.1/24
    gw:up0 10.54.9.1/24 -- up:eth0 10.54.9.2/24
"""
UPSTREAM = "10.54.9.2"
N = 300  # queries per asker
CONF = """
[dns]
address = 0.0.0.0
port = 5300
upstream = %s
cache_size = 0
timeout = 5s
attempts = 1
max_pending = 5000
""" % UPSTREAM


@pytest.fixture(scope="module")
def dlab():
    with Lab() as lab:
        lab.apply(SPEC)
        log = lab.dir / "upstream-queries.log"
        log.write_text("")
        lab["up"].spawn_daemon([sys.executable, DNSLOAD, "serve", UPSTREAM, "53", str(log)],
                               name="dnsload", port=53, proto="udp")
        lab.upstream_log = log
        yield lab


def ask(node, server, tag):
    r = node.run([sys.executable, DNSLOAD, "ask", server, "5300", tag, str(N), "3"],
                 timeout=60)
    return json.loads(r.stdout)


@pytest.mark.daemon
def test_many_in_flight_from_several_clients(dlab, egressd_bin):
    d = Egressd.start(dlab["gw"], egressd_bin, CONF)
    try:
        dlab.upstream_log.write_text("")
        jobs = [(dlab["client1"], "10.54.1.1", "a"), (dlab["client1"], "10.54.1.1", "b"),
                (dlab["client2"], "10.54.2.1", "c"), (dlab["client2"], "10.54.2.1", "d")]
        with ThreadPoolExecutor(len(jobs)) as ex:
            results = list(ex.map(lambda j: ask(*j), jobs))
        for (_, _, tag), r in zip(jobs, results):
            assert r == {"right": N, "wrong": 0, "missing": 0}, (tag, r)
        seen = [tuple(map(int, line.split()))
                for line in dlab.upstream_log.read_text().splitlines()]
        assert len(seen) >= len(jobs) * N
        ports = collections.Counter(p for p, _ in seen)
        ids = {i for _, i in seen}
        # the pool's sockets are replaced as they are used: many ports, none carrying all
        assert len(ports) >= 10, ports
        assert max(ports.values()) <= len(seen) // 4, ports
        # the forwarder's own IDs, not the clients' 0..N-1 (random: few repeat)
        assert len(ids) >= 0.9 * len(seen), len(ids)
    finally:
        assert d.stop() == 0
        d.assert_clean()


def series(page, name):
    """{labels text: value} of one metric family on a /metrics page."""
    out = {}
    for line in page.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, value = line.rsplit(" ", 1)
            out[key[len(name):]] = float(value)
    return out


@pytest.mark.daemon
def test_two_workers_both_answer_and_the_counters_add_up(dlab, egressd_bin):
    """workers = 2: two UDP sockets in one SO_REUSEPORT group, a loop each.  The kernel
    spreads the askers' 32 sockets over both (all on one: 2^-31), every answer is right,
    and /metrics counts each query once, whichever worker took it."""
    conf = CONF + "workers = 2\n[global]\nmetrics_port = 9153\n"
    d = Egressd.start(dlab["gw"], egressd_bin, conf)
    try:
        n_sock = 8
        jobs = [(dlab["client1"], "10.54.1.1", "w1"), (dlab["client1"], "10.54.1.1", "w2"),
                (dlab["client2"], "10.54.2.1", "w3"), (dlab["client2"], "10.54.2.1", "w4")]

        def ask_many(node, server, tag):
            r = node.run([sys.executable, DNSLOAD, "ask", server, "5300", tag, str(N),
                          str(n_sock)], timeout=60)
            return json.loads(r.stdout)
        with ThreadPoolExecutor(len(jobs)) as ex:
            results = list(ex.map(lambda j: ask_many(*j), jobs))
        for (_, _, tag), r in zip(jobs, results):
            assert r == {"right": N, "wrong": 0, "missing": 0}, (tag, r)
        page = dlab["gw"].curl("http://127.0.0.1:9153/metrics").stdout
        total = len(jobs) * N
        per_worker = series(page, "egress_dns_worker_queries_total")
        assert set(per_worker) == {'{worker="0"}', '{worker="1"}'}, per_worker
        assert all(v > 0 for v in per_worker.values()), per_worker
        assert sum(per_worker.values()) == total, per_worker
        assert series(page, "egress_dns_queries_total")['{transport="udp"}'] == total
        assert series(page, "egress_dns_answers_total")['{transport="udp"}'] == total
        up = series(page, "egress_dns_upstream_queries_total")
        assert up == {'{uplink="",transport="udp"}': total}, up
        assert series(page, "egress_dns_pending")[""] == 0
        d.wait_log("2 workers")
    finally:
        assert d.stop() == 0
        d.assert_clean()
