#!/usr/bin/python3
"""The DNS forwarder beside dnsmasq and dnsdist, side by side in one lab run.

    client 10.53.0.2 -- gw 10.53.0.1 / 10.53.1.1 -- up 10.53.1.2 (unbound)

unbound on up answers every name under bench.test from local data (TTL an hour), so the
upstream is the same fast resolver for every side.  On gw, each side in turn listens on
10.53.0.1 and forwards to 10.53.1.2:

  dnsmasq   --server=10.53.1.2, --cache-size 0 (no cache) or 10000 (cache);
  dnsdist   one backend, no packet cache or a packet cache of 10 000 answers;
  egressd   [dns] upstream = 10.53.1.2, cache_size 0 or 10000, at 1 and 2 workers
            (egressd_w1: everything on the main loop; egressd_w2: two UDP sockets in one
            SO_REUSEPORT group, a loop each) and, on a machine with more than 2 CPUs, as
            many workers as CPUs (egressd_wN).

dnsperf on client asks for N names (1 000: n0..n999.bench.test A) with 100 queries in
flight (-q 100, 2 client sockets) for --seconds; each side first answers one name (from
upstream) and refuses nothing, or the run is invalid.  The cache runs start with a warm-up
pass so that every side answers from its cache.  Rounds (--runs, 2): every side once per
round, the order reversed each round; each side's best round counts (on a shared machine a
stall caused elsewhere should not count against one side), every round is printed.
Ratios are to dnsdist.  Exit status 1 when a run is invalid (a side failed, answered wrong
or dnsperf printed no rate); a missed goal is a result, exit 0.
What it must not do: touch the host's namespace - everything runs inside the lab's.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAB = HERE.parent / "tests" / "lab"
sys.path.insert(0, str(LAB))

from egressd import Egressd  # noqa: E402
from lab import Lab, LabError, wait_port  # noqa: E402
import dnsperf_util  # noqa: E402

SPEC = """
    client:eth0 10.53.0.2/24 -- gw:lan0 10.53.0.1/24
    gw:up0 10.53.1.1/24 -- up:eth0 10.53.1.2/24
"""
GW = "10.53.0.1"
UPSTREAM = "10.53.1.2"
ANSWER = "10.53.1.80"
PORTS = {"dnsmasq": 5301, "dnsdist": 5302, "egressd_w1": 5303, "egressd_w2": 5305,
         "egressd_wN": 5306, "baseline": 5304}
SIDES = ("dnsmasq", "dnsdist", "egressd_w1", "egressd_w2") + (
    ("egressd_wN",) if (os.cpu_count() or 1) > 2 else ())
CACHE = 10000

UNBOUND_CONF = """server:
    interface: %s
    port: 53
    access-control: 0.0.0.0/0 allow
    num-threads: 1
    username: ""
    chroot: ""
    directory: "%s"
    pidfile: "%s/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    do-daemonize: no
    module-config: "iterator"
    local-zone: "bench.test." redirect
    local-data: "bench.test. 3600 IN A %s"
remote-control:
    control-enable: no
"""

DNSDIST_CONF = """setLocal("%s:%d")
setACL({"0.0.0.0/0"})
setSecurityPollSuffix("")
newServer({address="%s:53", checkName="bench.test.", checkInterval=5})
%s
"""
DNSDIST_CACHE = """pc = newPacketCache(%d, {})
getPool(""):setCache(pc)
""" % CACHE

EGRESSD_CONF = """
[dns]
address = %s
port = %d
upstream = %s
cache_size = %d
max_pending = 10000
%s"""




def start(lab, args, side, cache):
    """Start one side on gw; returns a function that stops it."""
    gw = lab["gw"]
    port = PORTS[side]
    if side == "dnsmasq":
        return gw.dnsmasq("--listen-address=" + GW, "--bind-interfaces",
                          "--server=" + UPSTREAM, "--cache-size=%d" % (CACHE if cache else 0),
                          "--dns-forward-max=10000", port=port).stop
    if side == "dnsdist":
        conf = lab.dir / "dnsdist.conf"
        conf.write_text(DNSDIST_CONF % (GW, port, UPSTREAM, DNSDIST_CACHE if cache else ""))
        p = gw.popen(["dnsdist", "--supervised", "--disable-syslog", "-C", str(conf)],
                     name="dnsdist")
        wait_port(gw, port, proto="udp", proc=p)
        return p.stop
    binary = args.baseline if side == "baseline" else args.egressd
    # the baseline may predate the workers key
    workers = {"egressd_w1": "workers = 1\n", "egressd_w2": "workers = 2\n",
               "egressd_wN": "workers = 0\n"}.get(side, "")
    e = Egressd.start(gw, binary, EGRESSD_CONF % (GW, port, UPSTREAM,
                                                         CACHE if cache else 0, workers))
    return e.stop_clean


def run_side(lab, args, side, cache, qfile):
    c = lab["client"]
    stop = start(lab, args, side, cache)
    try:
        got = dnsperf_util.answer(c, GW, PORTS[side], "n0.bench.test")
        if got != ANSWER:
            raise LabError("%s answers n0.bench.test with %s" % (side, got))
        if cache:
            # warm-up: every name in the cache
            dnsperf_util.dnsperf(c, GW, PORTS[side], qfile, 2)
        return dnsperf_util.dnsperf(c, GW, PORTS[side], qfile, args.seconds)
    finally:
        stop()


def versions():
    def first(argv, match=""):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return [x for x in (r.stdout + r.stderr).strip().splitlines() if match in x][0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"
    return {"dnsmasq": first(["dnsmasq", "--version"]),
            "dnsdist": first(["dnsdist", "--version"]),
            "unbound": first(["unbound", "-V"]),
            "dnsperf": first(["dnsperf", "-h"], "Version")}


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--names", type=int, default=1000)
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--baseline", help="another egressd build, run as one more side "
                    "(\"baseline\") to show what a change moved")
    args = ap.parse_args()
    sides = [s for s in args.sides.split(",") if s]
    if args.baseline:
        sides.append("baseline")
    r = {"cpus": os.cpu_count(), "load": os.getloadavg()[0], "cpu": cpu_model(),
         "kernel": platform.release(),
         "versions": versions(), "results": {}}
    invalid = []
    with Lab() as lab:
        lab.apply(SPEC)
        lab["gw"].forward(False)
        d = lab.dir / "unbound"
        d.mkdir()
        (d / "unbound.conf").write_text(UNBOUND_CONF % (UPSTREAM, d, d, ANSWER))
        up = lab["up"].popen(["unbound", "-d", "-c", str(d / "unbound.conf")], name="unbound")
        wait_port(lab["up"], 53, proto="udp", proc=up)
        qfile = lab.dir / "queries.txt"
        qfile.write_text("".join("n%d.bench.test A\n" % i for i in range(args.names)))
        for rnd in range(args.runs):
            for cache in (False, True):
                order = sides if rnd % 2 == 0 else sides[::-1]
                for side in order:
                    key = "%s/%s" % (side, "cache" if cache else "nocache")
                    rounds = r["results"].setdefault(key, [])
                    try:
                        res = run_side(lab, args, side, cache, qfile)
                    except (LabError, subprocess.SubprocessError, OSError) as e:
                        res = {"error": str(e)}
                    rounds.append(res)
                    if res.get("error") or not res.get("qps"):
                        invalid.append("%s: %s" % (key, res.get("error", "no rate")))
    report(r)
    if args.json:
        print(json.dumps(r))
    if invalid:
        print("dns bench: invalid: " + "; ".join(invalid))
        return 1
    return 0


def best(rounds):
    good = [x for x in rounds if x.get("qps")]
    return max(good, key=lambda x: x["qps"]) if good else None


def report(r):
    print("DNS forwarder benchmark: dnsperf -q 100, %s; one lab, each side in turn "
          "(%d CPUs: %s, kernel %s, load average %.1f at the start)"
          % ("1 000 names", r["cpus"], r["cpu"], r["kernel"], r["load"]))
    for k, v in r["versions"].items():
        print("  %-8s %s" % (k, v))
    print("%-10s %-11s %12s %8s %12s %s" % ("cache", "side", "queries/s", "ratio", "latency ms",
                                            "rounds (q/s)"))
    for cache in ("nocache", "cache"):
        ref = best(r["results"].get("dnsdist/" + cache, []))
        for side in SIDES + ("baseline",):
            rounds = r["results"].get("%s/%s" % (side, cache))
            if not rounds:
                continue
            b = best(rounds)
            ratio = "%.2f" % (b["qps"] / ref["qps"]) if b and ref else "-"
            print("%-10s %-11s %12s %8s %12s %s" % (
                cache, side, "%.0f" % b["qps"] if b else "-", ratio,
                "%.3f" % b["latency_ms"] if b else "-",
                " ".join("%.0f" % x["qps"] if x.get("qps") else "err" for x in rounds)))
    print("goal: egressd at least dnsdist's queries/s and latency, with and without cache "
          "(egressd_w2: two workers; egressd_wN: one per CPU)")


if __name__ == "__main__":
    sys.exit(main())
