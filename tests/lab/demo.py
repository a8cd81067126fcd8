#!/usr/bin/python3
"""make demo: egressd in a lab of network namespaces, with a live view of its uplinks.

    client1 --+                 +-- isp1 --+
              +-- gw (egressd) -+-- isp2 --+-- internet (web server)
    client2 --+                 +-- isp3 --+

The gateway runs the real egressd with one uplink per ISP, each health-checked
through its ISP (ICMP to the ISP's far side, HTTP for isp3).  Every few seconds
the demo breaks an ISP: it cuts a link (carrier loss, seen at once) or
blackholes an ISP behind a live link (only the health checks can tell), and
later repairs it; the view shows each uplink's state as egressd reports it,
with the time of its last change and its number of transitions.  The traffic dataplanes (route, policy,
proxy) join this demo as they land; today it shows the shared uplink model
following the kernel.

Runs until Ctrl-C (or --duration seconds) and then removes every namespace
it made.  Changes nothing in the machine's own network namespace.
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from egressd import Egressd  # noqa: E402
from lab import Lab  # noqa: E402

SPEC = """
    client1:eth0 10.10.1.2/24 -- gw:lan1 10.10.1.1/24
    client2:eth0 10.10.2.2/24 -- gw:lan2 10.10.2.1/24
    gw:isp1 192.0.2.1/29 -- isp1:eth0 192.0.2.2/29
    gw:isp2 192.0.2.9/29 -- isp2:eth0 192.0.2.10/29
    gw:isp3 192.0.2.17/29 -- isp3:eth0 192.0.2.18/29
    isp1:eth1 198.51.100.1/28 -- internet:isp1 198.51.100.2/28
    isp2:eth1 198.51.100.17/28 -- internet:isp2 198.51.100.18/28
    isp3:eth1 198.51.100.33/28 -- internet:isp3 198.51.100.34/28
    gw forward
    isp1 forward
    isp2 forward
    isp3 forward
    client1 default via 10.10.1.1
    client2 default via 10.10.2.1
    gw route 198.51.100.0/28 via 192.0.2.2
    gw route 198.51.100.16/28 via 192.0.2.10
    gw route 198.51.100.32/28 via 192.0.2.18
    internet route 192.0.2.0/29 via 198.51.100.1
    internet route 192.0.2.8/29 via 198.51.100.17
    internet route 192.0.2.16/29 via 198.51.100.33
"""

CONF = """
; the demo's gateway: one uplink per ISP
[global]
log_level = info

[uplink isp1]
interface = isp1
gateway = 192.0.2.2
weight = 3
check = icmp
check_target = 198.51.100.2

[uplink isp2]
interface = isp2
gateway = 192.0.2.10
weight = 2
check = icmp
check_target = 198.51.100.18

[uplink isp3]
interface = isp3
gateway = 192.0.2.18
weight = 1
check = http
check_target = 198.51.100.34
"""

UPLINKS = ["isp1", "isp2", "isp3"]
TRANSITION = re.compile(r"^(\S+) \S+\s+uplink (\S+): (\S+) -> (\S+) \((.*)\)$")

# (seconds into a cycle, action, uplink): "cut" takes the link's carrier away (seen at
# once); "blackhole" keeps the link up but drops everything behind it, so only the
# health checks can tell
SCRIPT = [(6, "cut", "isp2"), (12, "restore", "isp2"), (16, "blackhole", "isp3"),
          (24, "restore", "isp3"), (28, "blackhole", "isp1"), (34, "restore", "isp1")]
CYCLE = 40


class View:
    def __init__(self, tty):
        self.tty = tty
        self.state = {u: ["init", "-", 0, ""] for u in UPLINKS}
        self.events = []
        self.seen = 0

    def feed(self, log):
        lines = log.splitlines()
        for line in lines[self.seen:]:
            m = TRANSITION.match(line)
            if m:
                stamp, name, _, to, why = m.groups()
                if name in self.state:
                    s = self.state[name]
                    s[0], s[1], s[3] = to, stamp.split("T")[1], why
                    s[2] += 1
            if " ready: " in line or " uplink " in line or "reload" in line:
                self.events.append(line)
                if not self.tty:
                    print(line, flush=True)
        self.seen = len(lines)
        self.events = self.events[-8:]

    def draw(self, elapsed, note):
        if not self.tty:
            return
        out = ["\033[H\033[2J",
               "Egress demo - egressd in a lab of network namespaces  (Ctrl-C to stop)",
               "elapsed %4ds   %s" % (elapsed, note), "",
               "%-8s %-6s %-14s %-11s %s" % ("uplink", "state", "last change", "transitions",
                                             "reason"),
               "-" * 72]
        for u in UPLINKS:
            st, since, n, why = self.state[u]
            color = {"up": "\033[32m", "down": "\033[31m"}.get(st, "")
            out.append("%-8s %s%-6s\033[0m %-14s %-11d %s" % (u, color, st, since, n, why))
        out += ["", "egressd says:"] + ["  " + e for e in self.events]
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--egressd", required=True, help="the egressd binary")
    ap.add_argument("--duration", type=float, default=0,
                    help="stop after this many seconds (default: run until Ctrl-C)")
    ap.add_argument("--plain", action="store_true",
                    help="print events line by line instead of a live screen")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("make demo needs root: it creates network namespaces")

    tty = sys.stdout.isatty() and not args.plain
    with Lab.from_spec(SPEC) as lab:
        lab["internet"].http_server(80, name="internet")
        d = Egressd.start(lab["gw"], args.egressd, CONF)
        view = View(tty)
        start = time.monotonic()
        done = set()
        note = "all uplinks connected"
        try:
            while True:
                elapsed = time.monotonic() - start
                if args.duration and elapsed >= args.duration:
                    break
                cycle, t = divmod(elapsed, CYCLE)
                for at, action, uplink in SCRIPT:
                    key = (int(cycle), at, action, uplink)
                    if t >= at and key not in done:
                        done.add(key)
                        if action == "cut":
                            lab.cut(lab["gw"], uplink)
                            note = "cut %s (carrier lost)" % uplink
                        elif action == "blackhole":
                            lab.cut(lab[uplink], "eth1", mode="blackhole")
                            note = "blackholed %s behind a live link" % uplink
                        else:
                            for node, ifname in ((lab["gw"], uplink), (lab[uplink], "eth1")):
                                lab.restore(node, ifname)
                            note = "restored %s" % uplink
                        if not tty:
                            print("demo: " + note, flush=True)
                if not d.alive():
                    print(d.proc.tail(30))
                    sys.exit("egressd exited with %s" % d.proc.returncode)
                view.feed(d.log())
                view.draw(int(elapsed), note)
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        rc = d.stop()
        view.feed(d.log())
        print("egressd stopped (exit %s); removing the lab" % rc, flush=True)
        d.assert_clean()
        if rc != 0:
            sys.exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
