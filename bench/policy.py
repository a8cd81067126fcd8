#!/usr/bin/python3
"""The policy module against plain kernel forwarding, side by side in one run.

Same lab (tests/lab/policylab.py), same client and server:
  - plain:  gw forwards through isp1 with one masquerade rule - what the kernel does alone;
  - policy: egressd's policy module spreads connections over the three ISPs (ct marks,
            weighted choice, per-uplink tables, masquerade).
Measured: iperf3 throughput with 1 and 8 streams, new TCP connections per second, and
the failover time (an ISP blackholed behind a live link: time until the last new
connection sent into it) with the default checks and an aggressive profile, or "not
detected" / "no new flow failed" as in failover.py. Exits 1 when a run is invalid (egressd
does not stop cleanly), not when a number is poor.
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAB = HERE.parent / "tests" / "lab"
sys.path.insert(0, str(LAB))

from egressd import Egressd  # noqa: E402
from failover import blackhole_result, describe  # noqa: E402
from lab import Lab, LabError  # noqa: E402
import policylab  # noqa: E402

PLAIN_NAT = """table ip benchnat {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "isp1" masquerade
    }
}
"""


def iperf(client, streams, seconds):
    r = client.run(["iperf3", "-c", policylab.SERVER, "-P", str(streams), "-t", str(seconds),
                    "-J"], timeout=seconds + 20)
    return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


def conns_per_second(client, seconds=4):
    r = client.run([sys.executable, str(LAB / "newflows.py"), policylab.SERVER, "7000", "0",
                    str(seconds), "2"], timeout=seconds + 30)
    ok = sum(1 for line in r.stdout.splitlines() if " ok " in line)
    return ok / seconds


def measure(lab, streams_secs):
    c = lab["client1"]
    return {"iperf1": iperf(c, 1, streams_secs), "iperf8": iperf(c, 8, streams_secs),
            "cps": conns_per_second(c)}


def failover(egressd_bin, conf):
    with Lab() as lab:
        gw = policylab.build(lab)
        d = Egressd.start(gw, egressd_bin, conf)
        for u in ("isp1", "isp2", "isp3"):
            d.wait_log(r"uplink %s: init -> up" % u)
        client = lab["client1"].popen([sys.executable, str(LAB / "newflows.py"),
                                       policylab.SERVER, "7000", "0.01", "9", "1"],
                                      name="newflows", stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        d.set_mark()
        t0 = time.monotonic()
        lab.cut(lab["isp2"], "eth1", mode="blackhole")
        out, _ = client.communicate(timeout=30)
        detected = re.search(r"uplink isp2: up -> down", d.since_mark()) is not None
        d.stop_clean()
        return blackhole_result(out, t0, detected)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    # each in a lab of its own, so neither inherits the other's conntrack or TIME_WAIT state
    with Lab() as lab:
        gw = policylab.build(lab)
        lab["inet"].iperf3_server(5201)
        gw.run(["nft", "-f", "-"], input=PLAIN_NAT)
        plain = measure(lab, args.seconds)
    with Lab() as lab:
        gw = policylab.build(lab)
        lab["inet"].iperf3_server(5201)
        d = Egressd.start(gw, args.egressd, policylab.CONF)
        for u in ("isp1", "isp2", "isp3"):
            d.wait_log(r"uplink %s: init -> up" % u)
        pol = measure(lab, args.seconds)
        d.stop_clean()
    print("policy module vs plain kernel forwarding (same lab, same run)")
    print("%-28s %14s %14s %8s" % ("", "plain", "egressd policy", "ratio"))
    for key, name, unit in (("iperf1", "iperf3, 1 stream", "Gbit/s"),
                            ("iperf8", "iperf3, 8 streams", "Gbit/s"),
                            ("cps", "new TCP connections", "per s")):
        print("%-28s %10.2f %-6s %7.2f %-6s %6.0f%%" % (name, plain[key], unit, pol[key], unit,
                                                       100 * pol[key] / plain[key]))
    slow = failover(args.egressd, policylab.CONF.replace("interval = 300ms\n", "")
                    .replace("interval_failing = 200ms\n", "").replace("timeout = 200ms\n", ""))
    fast = failover(args.egressd, policylab.CONF)
    print("failover, ISP blackholed behind a live link (time until the last new connection "
          "sent into it):")
    print("  egressd policy, default checks (1s / 500ms / fall 3):     %s" % describe(slow))
    print("  egressd policy, 300ms interval, 200ms failing and timeout: %s" % describe(fast))
    print("  OpenWrt mwan3, defaults: about 60 s; pfSense dpinger, defaults: about 14 s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as e:
        print("policy: invalid run: %s" % e)
        sys.exit(1)
