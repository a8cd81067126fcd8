"""The proxy with several workers: each accepts on its own socket (SO_REUSEPORT) and runs
its sessions from handshake to end; the limits, the contention ratio and the counters are
the module's, exact across workers.

    client (10.20.0.2, .3) -- gw (egressd dispatch 192.0.2.1@3 192.0.2.9@2, workers = N)
                                 +-- isp1 --+-- inet (echo server: "peer <address>")
                                 +-- isp2 --+

See tests/lab/proxylab.py.  Each check is exact (no tolerance) where the quantity is the
module's own (counters, limits), and within a few points where it is a ratio over a sample.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import promtext
import proxylab
from egressd import Egressd
from lab import Lab

pytestmark = pytest.mark.requires_root
HERE = Path(__file__).resolve().parent
METRICS = "http://127.0.0.1:9091/metrics"

# N connections from one address at once, each through SOCKS5 to the echo server and "who"
# answered.  Once every attempt has ended it prints how many got through, and holds them
# open until the file RELEASE exists.
HOLD_MANY = r"""
import os, socket, struct, sys, threading, time
gw, bind, n, release = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ok, lock, held = [0], threading.Lock(), []
done = threading.Barrier(n + 1)
def one():
    try:
        s = socket.create_connection((gw, 1080), timeout=10, source_address=(bind, 0))
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("11.0.0.80") + struct.pack("!H", 7000))
        assert s.recv(10)[:2] == b"\x05\x00"
        s.sendall(b"who\n")
        assert s.recv(100).startswith(b"peer ")
        with lock:
            ok[0] += 1
            held.append(s)
    except (OSError, AssertionError):
        pass
    done.wait()
threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads:
    t.start()
done.wait()
print(ok[0], flush=True)
while not os.path.exists(release):
    time.sleep(0.05)
for s in held:
    s.close()
"""


@pytest.fixture(scope="module")
def wlab():
    with Lab() as lab:
        proxylab.build(lab, web=False, dns=False)
        lab["client"].ip("addr", "add", "10.20.0.3/24", "dev", "eth0")
        yield lab


def start(lab, binary, workers, *sets):
    args = proxylab.dispatch_args("-lhost", proxylab.GW_LAN, "-lport", "1080",
                                  "-metrics-port", "9091", "--set", "proxy.workers=%d" % workers,
                                  *[a for s in sets for a in ("--set", s)])
    return Egressd.command(lab["gw"], binary, args)


def stop(d):
    assert d.stop() == 0
    d.assert_clean()


class Metrics:
    """One scrape of gw's /metrics, parsed strictly (promtext)."""

    def __init__(self, lab):
        self.fams = promtext.parse(lab["gw"].curl(METRICS).stdout)

    def series(self, name):
        """{frozenset of (label, value): value} of family `name` ({} if absent)."""
        f = self.fams.get(name)
        return f.series() if f else {}

    def value(self, name, **labels):
        """The sample of `name` with exactly these labels, or None."""
        return self.series(name).get(frozenset(labels.items()))


def metrics(lab):
    return Metrics(lab)


def flows(node, count, conc):
    args = [sys.executable, str(HERE / "socksflows.py"), proxylab.GW_LAN, "1080",
            proxylab.SERVER, "7000", str(count), str(conc)]
    return json.loads(node.run(args, timeout=120).stdout)


@pytest.mark.daemon
@pytest.mark.parametrize("workers", [2, 4])
def test_ratio_and_counters_across_workers(wlab, egressd_bin, workers):
    """600 connections, 16 at a time: every worker accepted some (egress_proxy_accepted_total
    per worker, summing to 600), the 3:2 ratio holds over all of them, and the counters per
    uplink equal what the server saw, to the connection and the byte."""
    d = start(wlab, egressd_bin, workers)
    try:
        r = flows(wlab["client"], 600, 16)
        assert r["fail"] == 0, r
        share = r["peers"].get(proxylab.ADDR["isp1"], 0) / 600
        assert abs(share - 0.6) <= 0.05, r
        m = metrics(wlab)
        accepted = m.series("egress_proxy_accepted_total")
        assert sorted(int(dict(k)["worker"]) for k in accepted) == list(range(workers))
        assert all(v > 0 for v in accepted.values()), accepted
        assert sum(accepted.values()) == 600, accepted
        for up in proxylab.ADDR.values():
            n = r["peers"].get(up, 0)
            assert m.value("egress_proxy_connections_total", uplink=up) == n, (up, r)
            # "who\n" up, "peer 192.0.2.N\n" down: the SOCKS reply is egressd's own
            assert m.value("egress_proxy_bytes_total", uplink=up, direction="up") == 4 * n
            assert m.value("egress_proxy_bytes_total", uplink=up, direction="down") == 15 * n
            # no failure: the series does not even appear
            assert m.value("egress_proxy_connect_failures_total", uplink=up) in (None, 0)
        assert m.value("egress_proxy_client_connections_total", client=proxylab.CLIENT) == 600
    finally:
        stop(d)


@pytest.mark.daemon
@pytest.mark.parametrize("workers", [2, 4])
def test_limits_across_workers(wlab, egressd_bin, workers):
    """Two clients open 25 connections each at once, accepted on every worker:
    max_per_client = 20 and max_connections = 30 hold exactly - 30 get through, neither
    client more than 20 - and the 20 refused are counted by reason."""
    c = wlab["client"]
    release = wlab.dir / ("release-%d" % workers)
    d = start(wlab, egressd_bin, workers, "proxy.max_per_client=20",
              "proxy.max_connections=30")
    try:
        procs = [c.popen([sys.executable, "-c", HOLD_MANY, proxylab.GW_LAN, a, "25",
                          str(release)], name="hold-" + a, stdout=subprocess.PIPE, text=True)
                 for a in (proxylab.CLIENT, "10.20.0.3")]
        # both hold what they got until both have counted
        got = [int(p.stdout.readline().strip() or -1) for p in procs]
        release.touch()
        for p in procs:
            p.wait(timeout=30)
        assert sum(got) == 30 and max(got) <= 20, got
        m = metrics(wlab)
        refused = m.series("egress_proxy_refused_total")
        assert refused[frozenset({("reason", "max_connections")})] + \
            refused[frozenset({("reason", "max_per_client")})] == 20, refused
        accepted = m.series("egress_proxy_accepted_total")
        assert sum(accepted.values()) == 50 and all(v > 0 for v in accepted.values()), accepted
        assert sum(m.series("egress_proxy_connections_total").values()) == 30
    finally:
        stop(d)
