#!/usr/bin/python3
"""Fan-out of the allowlist: one change reaching 200 connected gateways.

One egress-server on loopback (tests/lab/egress_server.py: its own temp dir, SQLite store)
and --gateways simulated agents (tests/lab/simgw.py) in this process, each speaking the
real protocol over its own WebSocket: hello, snapshot, ack, then every delta applied (its
"from" checked against the version held) and acknowledged at once.

    200 simulated gateways --- ws://127.0.0.1:PORT/ws ---> egress-server
    admin client (POST /api/entries) -----------------/

Measured:
  - time from one change (POST /api/entries sent) until every gateway has acknowledged its
    delta, over --rounds changes (median and worst; goal under 1 s), how much of it the
    change's own commit took (until the POST was answered: SQLite's synchronous commit), and
    until GET /api/gateways shows every gateway at the new version with lag 0 (what an
    operator sees);
  - egress-server's memory per connected gateway: its resident memory (VmRSS) with every
    gateway connected and synchronised, less before the first connected, divided by their
    number.

Exit status 1 when the run is invalid - a gateway refused, one that missed a change or got
a delta that does not start at its version, a list that differs from the server's, or a
server that did not stop cleanly - with the reason; a missed goal is a result, exit 0.
What it must not do: talk to anything but its own server on loopback.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAB = HERE.parent / "tests" / "lab"
sys.path.insert(0, str(LAB))

from egress_server import EgressServer  # noqa: E402
from simgw import SimGateway  # noqa: E402

SETTINGS = {"api": {"max_clients": 2000}, "hub": {"max_gateways": 2000}}


def vmrss_kib(srv):
    return int(srv.status("VmRSS").split()[0])


class Invalid(Exception):
    pass


class Api:
    """Blocking JSON calls to the server's API on loopback, run off the loop's thread."""

    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")


async def follow(g, acked):
    """Apply and acknowledge every message; record when each version was acknowledged."""
    while True:
        try:
            msg = await g.recv(timeout=3600)
        except Exception as e:  # closed, or a delta that does not chain
            acked.setdefault("errors", []).append("%s: %s" % (g.name, e))
            return
        await g.ack()
        acked.setdefault(msg["version"], []).append(time.monotonic())


async def connect_all(url, token, n):
    gws = [SimGateway(url, "gw%03d" % i, token=token) for i in range(n)]
    sem = asyncio.Semaphore(50)

    async def one(g):
        async with sem:
            await g.connect(timeout=30)
            await g.ack()

    await asyncio.gather(*(one(g) for g in gws))
    return gws


async def bench(srv, args):
    admin = Api(srv.url, srv.token("bench", "admin"))
    ws_url = "ws://%s/ws" % srv.url.split("://", 1)[1]
    loop = asyncio.get_running_loop()
    tok = await loop.run_in_executor(None, admin.call, "POST", "/api/tokens",
                                     {"name": "fanout", "access": "read"})
    for i in range(args.entries):  # a list of some size for the snapshots
        await loop.run_in_executor(None, admin.call, "POST", "/api/entries",
                                   {"value": "%d.%d.%d.0/24" % (11 + i // 65536,
                                                                i // 256 % 256, i % 256)})
    await asyncio.sleep(1)
    rss0 = vmrss_kib(srv)
    gws = await connect_all(ws_url, tok["token"], args.gateways)
    await asyncio.sleep(1)
    rss1 = vmrss_kib(srv)
    acked = {}
    tasks = [asyncio.create_task(follow(g, acked)) for g in gws]
    to_all, to_api, to_post = [], [], []
    for r in range(args.rounds):
        t0 = time.monotonic()
        await loop.run_in_executor(None, admin.call, "POST", "/api/entries",
                                   {"value": "8.%d.%d.0/24" % (r // 256, r % 256)})
        to_post.append(time.monotonic() - t0)
        v = (await loop.run_in_executor(None, admin.call, "GET", "/api/status"))["version"]
        deadline = time.monotonic() + 30
        while len(acked.get(v, [])) < len(gws):
            if acked.get("errors"):
                raise Invalid("; ".join(acked["errors"][:5]))
            if time.monotonic() > deadline:
                raise Invalid("round %d: %d of %d gateways acknowledged version %d" %
                              (r, len(acked.get(v, [])), len(gws), v))
            await asyncio.sleep(0.002)
        to_all.append(max(acked[v]) - t0)
        while True:
            shown = await loop.run_in_executor(None, admin.call, "GET", "/api/gateways")
            shown = shown["gateways"] if isinstance(shown, dict) else shown
            if sum(1 for g in shown if g["version"] == v and g["lag"] == 0) >= len(gws):
                break
            if time.monotonic() > deadline:
                raise Invalid("round %d: /api/gateways never showed every gateway at %d"
                              % (r, v))
            await asyncio.sleep(0.01)
        to_api.append(time.monotonic() - t0)
        await asyncio.sleep(0.2)
    want = await loop.run_in_executor(None, admin.call, "GET", "/api/entries")
    want = {str(e["id"]) for e in (want["entries"] if isinstance(want, dict) else want)}
    for g in gws:
        if {k.split("/")[0] for k in g.items} != want:
            raise Invalid("%s holds a list that differs from the server's" % g.name)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*(g.close() for g in gws), return_exceptions=True)
    return to_all, to_api, to_post, rss0, rss1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", help="path of the built egressd (egress-server beside it)")
    ap.add_argument("--egress-server", help="path of the built egress-server")
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--entries", type=int, default=100, help="entries before the gateways come")
    args = ap.parse_args()
    binary = args.egress_server or os.path.join(os.path.dirname(args.egressd), "egress-server")
    with tempfile.TemporaryDirectory(prefix="eg-fanout-") as tmp:
        srv = EgressServer.start_local(Path(tmp), binary, settings=SETTINGS)
        # stopped whatever ends the run (an error, ^C), never left serving on loopback
        try:
            to_all, to_api, to_post, rss0, rss1 = asyncio.run(bench(srv, args))
        except Invalid as e:
            print("allowlist fan-out: INVALID: %s" % e)
            return 1
        finally:
            stopped = srv.stop()
        if stopped != 0:
            print("allowlist fan-out: INVALID: egress-server did not stop cleanly")
            return 1
    n = args.gateways
    print(f"{'allowlist fan-out, %d gateways' % n:<44}{'median':>10}{'worst':>10}")
    print(f"{'  one change -> all acknowledged':<44}{statistics.median(to_all) * 1e3:>7.1f} ms"
          f"{max(to_all) * 1e3:>7.1f} ms   (goal < 1000 ms: "
          f"{'met' if max(to_all) < 1 else 'MISSED'}, {len(to_all)} changes)")
    print(f"{'  of it, the commit (POST answered)':<44}"
          f"{statistics.median(to_post) * 1e3:>7.1f} ms{max(to_post) * 1e3:>7.1f} ms")
    print(f"{'  one change -> all shown on /api/gateways':<44}"
          f"{statistics.median(to_api) * 1e3:>7.1f} ms{max(to_api) * 1e3:>7.1f} ms")
    print(f"{'  server memory per connected gateway':<44}{(rss1 - rss0) / n:>7.1f} KiB"
          f"{'':>10}   (VmRSS {rss0} -> {rss1} KiB, {args.entries} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
