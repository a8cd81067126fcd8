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
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "lab"))

from egressd import Egressd  # noqa: E402
from lab import Lab, wait_for  # noqa: E402
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


def one_run(egressd_bin, args, victim=2):
    with Lab() as lab:
        gw, health = routelab.build(lab)
        argv = [str(egressd_bin), "route", "-d", "-start-ip", routelab.GWS[0], "-end-ip",
                routelab.GWS[2], "-metrics-port", "0"] + args
        proc = gw.spawn_daemon(argv, name="egressd", log_match=r"ready: ", timeout=10)
        d = Egressd(gw, egressd_bin, lab.dir / "none.conf", proc)
        d.wait_log(r"route: 3 of 3 gateways in service", timeout=10)
        lan = lab["lan"]
        client = lan.popen([sys.executable, str(HERE.parent / "tests" / "lab" / "newflows.py"),
                            routelab.SERVER, "7000", "0.02", "12", "1.0"],
                           name="newflows", stdout=subprocess.PIPE, text=True)
        time.sleep(2.0)  # flows over all three gateways first
        t0 = time.monotonic()
        lab.cut(lab["g%d" % victim], "eth0", mode="blackhole")
        out, _ = client.communicate(timeout=30)
        after = [line.split() for line in out.splitlines()]
        fails = [float(f[0]) for f in after if f[1] == "fail" and float(f[0]) >= t0]
        ok_before = [f for f in after if f[1] == "ok" and float(f[0]) < t0]
        used = {f[3] for f in ok_before if len(f) > 3}
        d.stop()
        if len(used) < 3:
            raise RuntimeError("flows did not use all three gateways before the cut: %s" % used)
        return (max(fails) - t0) if fails else 0.0, len(fails)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print("failover: blackhole 1 of 3 gateways, new flow every 20 ms; time until the last "
          "new flow sent into the dead gateway")
    for name, flags in PROFILES:
        times, lost = [], []
        for _ in range(args.runs):
            t, n = one_run(args.egressd, flags)
            times.append(t)
            lost.append(n)
        print("  egressd route, %-55s median %.2f s, max %.2f s (%d runs; %d flows lost on "
              "median)" % (name + ":", statistics.median(times), max(times), args.runs,
                           statistics.median(lost)))
    for name, text in PEERS:
        print("  %-70s %s" % (name + ":", text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
