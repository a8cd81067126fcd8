#!/usr/bin/python3
"""Failover time of the route module: how long after a gateway dies do new flows still
go into it?

A LAN client opens a new connection every 20 ms through gw, where `egressd route` spreads
flows over three gateways.  One gateway is blackholed (link up, every packet dropped: the
dead-ISP case a link watcher cannot see).  The failover time is the start time of the last
connection that failed, minus the moment of the blackhole: until then, new flows were still
hashed onto the dead gateway.  Run with gateway-route-manager's default flags and with an
aggressive profile, several times each; printed beside the published defaults of
gateway-route-manager, OpenWrt mwan3 and pfSense dpinger.

A run says what it saw: "not detected" when egressd did not take the gateway out of service
within the traffic window (the failures then only stop with the window), "no new flow
failed" when none did. A run is invalid, and the script exits 1, when egressd does not stop
cleanly or the flows did not use every gateway before the cut; not when a time is long.
"""
import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "lab"))

from egressd import Egressd, api_args  # noqa: E402
from lab import Lab, LabError  # noqa: E402
import routelab  # noqa: E402

PROFILES = [
    ("defaults (-check-period 3s -timeout 1s)", []),
    ("aggressive (-check-period 200ms -timeout 150ms -fall 2)",
     ["-check-period", "200ms", "-timeout", "150ms", "-fall", "2"]),
]
PEERS = [
    ("gateway-route-manager, defaults", "about 4 s (3 s period + 1 s timeout, no hysteresis)"),
    ("OpenWrt mwan3, defaults", "about 60 s (track interval 5 s x down 3, more with timeouts)"),
    ("pfSense dpinger, defaults", "about 14 s (loss over a 10 s window, 500 ms probes)"),
]


class InvalidRun(Exception):
    """The run measured nothing trustworthy (egressd failed, the traffic was not as planned)."""


def blackhole_result(out, t0, detected):
    """What a blackhole run saw, from newflows.py's output: {"detected": egressd logged the
    uplink's loss within the traffic window, "failed": flows started at t0 or later that
    failed, "seconds": start of the last of them - t0, None when none failed}."""
    fails = [float(f[0]) for f in (line.split() for line in out.splitlines())
             if f[1] == "fail" and float(f[0]) >= t0]
    return {"detected": detected, "failed": len(fails),
            "seconds": max(fails) - t0 if fails else None}


def describe(res):
    """One run's result in words: the time, or why there is none."""
    if not res["detected"]:
        return "not detected within the traffic window (%d new flows failed)" % res["failed"]
    if res["seconds"] is None:
        return "detected, but no new flow failed (none went into the dead uplink)"
    return "%.2f s (%d new flows failed)" % (res["seconds"], res["failed"])


def summary(results):
    """Several runs' results: the median and maximum of the times measured, then each run."""
    times = [r["seconds"] for r in results if r["detected"] and r["seconds"] is not None]
    head = ("median %.2f s, max %.2f s of %d measured" % (statistics.median(times), max(times),
                                                         len(times))
            if times else "no time measured")
    return "%s (runs: %s)" % (head, "; ".join(describe(r) for r in results))


def one_run(egressd_bin, args, victim=2):
    with Lab() as lab:
        gw, health = routelab.build(lab)
        argv = [str(egressd_bin), "route", "-d", "-start-ip", routelab.GWS[0], "-end-ip",
                routelab.GWS[2], "-metrics-port", "0"] + args + api_args(gw, "egressd")
        proc = gw.spawn_daemon(argv, name="egressd", log_match=r"ready: ", timeout=10)
        d = Egressd(gw, egressd_bin, lab.dir / "none.conf", proc)
        d.wait_log(r"route: 3 of 3 gateways in service", timeout=10)
        lan = lab["lan"]
        client = lan.popen([sys.executable, str(HERE.parent / "tests" / "lab" / "newflows.py"),
                            routelab.SERVER, "7000", "0.02", "12", "1.0"],
                           name="newflows", stdout=subprocess.PIPE, text=True)
        time.sleep(2.0)  # flows over all three gateways first
        d.set_mark()
        t0 = time.monotonic()
        lab.cut(lab["g%d" % victim], "eth0", mode="blackhole")
        out, _ = client.communicate(timeout=30)
        detected = re.search(r"uplink %s: up -> down" % re.escape(routelab.GWS[victim - 1]),
                             d.since_mark()) is not None
        after = [line.split() for line in out.splitlines()]
        ok_before = [f for f in after if f[1] == "ok" and float(f[0]) < t0]
        used = {f[3] for f in ok_before if len(f) > 3}
        d.stop_clean()
        if len(used) < 3:
            raise InvalidRun("flows did not use all three gateways before the cut: %s" % used)
        return blackhole_result(out, t0, detected)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print("failover: blackhole 1 of 3 gateways, new flow every 20 ms; time until the last "
          "new flow sent into the dead gateway")
    invalid = 0
    for name, flags in PROFILES:
        results = []
        for _ in range(args.runs):
            try:
                results.append(one_run(args.egressd, flags))
            except (InvalidRun, LabError) as e:
                invalid += 1
                print("  egressd route, %s invalid run: %s" % (name, e))
        if results:
            print("  egressd route, %-55s %s" % (name + ":", summary(results)))
    for name, text in PEERS:
        print("  %-70s %s" % (name + ":", text))
    if invalid:
        print("failover: %d invalid runs" % invalid)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
