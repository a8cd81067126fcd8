#!/usr/bin/python3
"""The allowlist agent at scale, beside the original's one iptables rule per address.

1. The table (bench/al_nft_bench, in a private namespace): 100 000 items applied in one
   nftables transaction with a counter per element (goal: under 1 s), the same list again
   (nothing sent), deltas of 1 and of 1000 changes.
2. The original's way, on the same machine: one `iptables-legacy -A FORWARD -d IP -j
   ACCEPT` per address, timed for --iptables-rules addresses (each call rewrites the whole
   table, so a rule costs more the more there are: 100 000 is estimated from the cost per
   rule in each half, and said to be an estimate).
3. Propagation: the time from POST /api/entries on egress-server (egress-server beside the
   egressd under test) until a client behind each of two gateways reaches the new
   destination (goal: under 2 s), over --trials entries.
4. Forwarding through a gateway (tests/lab/allowlab.py's gw1, egressd enforcing a kept
   list) holding 100 000 entries beside one holding only the destination: iperf3 throughput
   and new TCP connections per second from c1 to inet (goal: at least 95%), in alternating
   rounds so load from elsewhere falls on both alike.

Exit status 1 when a run is invalid (a measurement failed or counted nothing); a missed
goal is a result, exit 0.  What it must not do: touch the host's namespace.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAB = HERE.parent / "tests" / "lab"
sys.path.insert(0, str(LAB))

from allowlab import AllowLab  # noqa: E402
from lab import Lab, LabError  # noqa: E402

DEST = "11.0.0.1"


def items(n):
    """n items: the destination, then n-1 other public addresses."""
    out = [{"key": "1", "entry": 1, "label": DEST, "dst": DEST + "/32"}]
    for i in range(1, n):
        a = "12.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
        out.append({"key": str(i + 1), "entry": i + 1, "label": a, "dst": a + "/32"})
    return out


def table_bench(build, n):
    r = subprocess.run([str(build / "bench" / "al_nft_bench"), str(n)], capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        raise LabError("al_nft_bench: %s" % r.stderr.strip())
    return json.loads(r.stdout)


def iptables_bench(lab, k):
    """Seconds for k rules, added one by one, and the cost model a + b*i per rule i fitted
    on the two halves (each call rewrites the table: b > 0)."""
    node = lab.node("ipt")
    halves = []
    for lo, hi in ((0, k // 2), (k // 2, k)):
        script = ("i=%d; while [ $i -lt %d ]; do iptables-legacy -w -A FORWARD -d "
                  "11.$((i / 65536 %% 256)).$((i / 256 %% 256)).$((i %% 256)) -j ACCEPT "
                  "|| exit 1; i=$((i + 1)); done" % (lo, hi))
        t0 = time.monotonic()
        node.run(["sh", "-c", script], timeout=3600)
        halves.append((time.monotonic() - t0) / (hi - lo))
    n = node.run(["iptables-legacy-save"]).stdout.count("-A FORWARD")
    if n != k:
        raise LabError("iptables: %d rules instead of %d" % (n, k))
    b = max(0.0, (halves[1] - halves[0]) / (k / 2))
    a = halves[0] - b * k / 4
    return sum(halves) * k / 2, a, b


def iperf(al, seconds):
    r = al.lab["c1"].run(["iperf3", "-c", DEST, "-t", str(seconds), "-J"], timeout=seconds + 30)
    return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


def cps(al, seconds):
    r = al.lab["c1"].run([sys.executable, str(LAB / "newflows.py"), DEST, "7000", "0",
                          str(seconds), "2"], timeout=seconds + 60)
    return sum(1 for line in r.stdout.splitlines() if " ok " in line) / seconds


def propagation(egressd, trials):
    from egress_server import EgressServer
    from allowlab import SERVER_SETTINGS
    binary = os.environ.get("EGRESS_SERVER") or Path(egressd).with_name("egress-server")
    times = []
    with Lab() as lab:
        al = AllowLab(lab, egressd)
        al.server = EgressServer.start(lab["srv"], binary, settings=SERVER_SETTINGS)
        token = al.server.token("bench", "read")
        al.start_gateways(token)
        for gw in ("gw1", "gw2"):
            al.wait_synced(gw)
        api = al.server.api()
        for i in range(trials):
            dest = "11.0.0.%d" % (10 + i)
            t0 = time.monotonic()
            r = api.post("/api/entries", {"value": dest})
            if r.status != 201:
                raise LabError("POST /api/entries: %s" % r)
            reached = {}
            while len(reached) < 2 and time.monotonic() - t0 < 30:
                for c in ("c1", "c2"):
                    if c not in reached and al.fetch(c, dest, timeout=0.2):
                        reached[c] = time.monotonic() - t0
            if len(reached) < 2:
                raise LabError("%s not reached from both clients in 30 s" % dest)
            times.append(max(reached.values()))
    return times


def forwarding(egressd, n_items, rounds, seconds):
    res = {"none": {"iperf": [], "cps": []}, "full": {"iperf": [], "cps": []}}
    with Lab() as lab:
        al = AllowLab(lab, egressd)
        lab["inet"].iperf3_server(5201)
        lab["inet"].popen([sys.executable, str(LAB / "echosrv.py"), "7000"], name="echo")
        for r in range(rounds):
            for cond in (("none", "full") if r % 2 == 0 else ("full", "none")):
                al.write_state("gw1", 1, items(n_items if cond == "full" else 1))
                d = al.start_gateway("gw1", server=False, timeout=120)
                d.wait_log(r"enforcing version 1", timeout=120)
                al.wait_reachable("c1", DEST)
                res[cond]["iperf"].append(iperf(al, seconds))
                res[cond]["cps"].append(cps(al, seconds))
                d.stop_clean()
    return {c: {k: statistics.median(v) for k, v in m.items()} for c, m in res.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True)
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--iptables-rules", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    build = Path(args.egressd).resolve().parents[2]

    t = table_bench(build, args.items)
    with Lab() as lab:
        ipt, a, b = iptables_bench(lab, args.iptables_rules)
    est = a * args.items + b * args.items ** 2 / 2
    print("allowlist: %d entries" % args.items)
    print("  nftables, one transaction with counters (egressd): %8.2f s   (goal < 1 s)"
          % t["start_s"])
    print("  the same list again (nothing sent):                 %8.3f s" % t["same_again_s"])
    print("  a delta of 1 / of 1000 changes:                     %8.3f s / %.3f s"
          % (t["delta1_s"], t["delta1000_s"]))
    print("  iptables-legacy, one rule per address: %d rules in %.1f s (%.1f ms each); "
          "%d estimated at %.0f s (per rule %.1f ms + %.3f ms per 1000 rules before it)" % (args.iptables_rules, ipt, 1000 * ipt / args.iptables_rules,
                                      args.items, est, 1000 * a, 1e6 * b))
    p = propagation(args.egressd, args.trials)
    print("  an entry added on egress-server until clients of both gateways reach it: "
          "median %.2f s, worst %.2f s over %d (goal < 2 s; each includes a curl's own time)"
          % (statistics.median(p), max(p), len(p)))
    f = forwarding(args.egressd, args.items, args.rounds, args.seconds)
    for key, name, unit in (("iperf", "iperf3, 1 stream", "Gbit/s"),
                            ("cps", "new TCP connections", "per s")):
        if not f["none"][key] or not f["full"][key]:
            print("allowlist: invalid run: %s measured nothing" % name)
            return 1
        print("  %-22s 1 entry %8.2f %-6s  %d entries %8.2f %-6s  %5.0f%% (goal >= 95%%)"
              % (name, f["none"][key], unit, args.items, f["full"][key], unit,
                 100 * f["full"][key] / f["none"][key]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as e:
        print("allowlist: invalid run: %s" % e)
        sys.exit(1)
