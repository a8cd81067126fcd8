#!/usr/bin/python3
"""What the health-check engine costs: egressd probing 500 targets every second.

    gw:up0 10.100.0.1/16 --- tgt:eth0 10.100.<u>.<1..10>/16    (5 uplinks x 10 targets)
    ...                                                        (10 links)
    gw:up9 10.109.0.1/16 --- tgt:eth9 10.109.<u>.<1..10>/16

50 uplinks, each bound to its link, each with 10 targets: 17 uplinks check icmp, 17 tcp
(port 80) and 16 http (GET / from nginx), at the default settings (interval 1s, timeout
500ms).  After every uplink is up and a warm-up, egressd's CPU time (utime + stime from
/proc/PID/stat) is measured over --seconds and its resident memory read from
/proc/PID/status.  Any transition during the measurement is reported (there should be
none).  The run is invalid (exit 1) when there was one, when fewer than 80% of the expected
probes (one per target per second) arrived - the CPU time would then be that of less work -
or when egressd does not stop cleanly.  Everything runs in lab namespaces, removed at the
end, also on failure.

    /usr/bin/python3 bench/check_cpu.py --egressd build/src/cmd/egressd [--seconds 20]
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "lab"))

from egressd import Egressd  # noqa: E402
from lab import Lab, wait_for  # noqa: E402

LINKS, PER_LINK, TARGETS = 10, 5, 10
KINDS = ["icmp", "tcp", "http"]


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def build(lab):
    gw, tgt = lab.node("gw"), lab.node("tgt")
    conf = ["[global]", "log_level = info", ""]
    batch = []
    n = 0
    for link in range(LINKS):
        net = 100 + link
        lab.link(gw, tgt, addrs=["10.%d.0.1/16" % net, "10.%d.0.2/16" % net],
                 ifnames=("up%d" % link, "eth%d" % link))
        for u in range(PER_LINK):
            kind = KINDS[n * len(KINDS) // (LINKS * PER_LINK)]
            targets = ["10.%d.%d.%d" % (net, u + 1, t + 1) for t in range(TARGETS)]
            batch += ["addr add %s/16 dev eth%d" % (a, link) for a in targets]
            conf += ["[uplink u%02d]" % n, "interface = up%d" % link, "check = %s" % kind,
                     "check_target = %s" % ", ".join(targets)]
            if kind in ("tcp", "http"):
                conf.append("check_port = 80")
            conf.append("")
            n += 1
    tgt.ip_batch(batch)
    tgt.nginx(80, name="tgt")
    # count what arrives: echo requests and connection attempts (tcp and http probes)
    tgt.run(["nft", "-f", "-"], input="table inet bench {\n chain in {\n  type filter hook "
            "input priority 0;\n  icmp type echo-request counter\n  tcp flags & (syn | ack) "
            "== syn counter\n }\n}\n")
    return gw, tgt, "\n".join(conf) + "\n", n


def probes_seen(tgt):
    data = tgt.json(["nft", "-j", "list", "table", "inet", "bench"])["nftables"]
    return sum(e["counter"]["packets"] for i in data if "rule" in i
               for e in i["rule"]["expr"] if "counter" in e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--egressd", required=True, help="path of the built egressd")
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement time")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds after all are up")
    args = ap.parse_args()
    binary = Path(args.egressd).resolve()
    hz = os.sysconf("SC_CLK_TCK")

    with Lab() as lab:
        gw, tgt, conf, n_uplinks = build(lab)
        d = Egressd.start(gw, binary, conf, timeout=30)
        wait_for(lambda: len(re.findall(r"init -> up", d.log())) >= n_uplinks, timeout=15,
                 what="all %d uplinks up" % n_uplinks)
        time.sleep(args.warmup)
        d.set_mark()
        pid = d.proc.pid
        t0, c0, p0 = time.monotonic(), cpu_ticks(pid), probes_seen(tgt)
        time.sleep(args.seconds)
        t1, c1, p1 = time.monotonic(), cpu_ticks(pid), probes_seen(tgt)
        rss = rss_kib(pid)
        changes = re.findall(r"uplink \S+: \w+ -> \w+ .*", d.since_mark())
        status = d.stop()
        d.assert_clean()

    pct = 100.0 * (c1 - c0) / hz / (t1 - t0)
    print("health engine: %d targets at 1s: %.1f%% of one core, RSS %.1f MiB"
          % (n_uplinks * TARGETS, pct, rss / 1024.0))
    print("  (%d uplinks: icmp, tcp, http mixed; %.0f s measured; %.0f probes/s arrived; "
          "%d transitions; exit %s)" % (n_uplinks, t1 - t0, (p1 - p0) / (t1 - t0),
                                        len(changes), status))
    for line in changes[:10]:
        print("  " + line)
    rate = (p1 - p0) / (t1 - t0)
    if rate < 0.8 * n_uplinks * TARGETS:
        print("invalid run: %.0f probes/s arrived, expected about %d" % (rate,
                                                                        n_uplinks * TARGETS))
    if status != 0 or changes:
        print("invalid run: %s" % ("egressd exited with %s" % status if status != 0 else
                                   "uplinks changed state while measured"))
    return 0 if status == 0 and not changes and rate >= 0.8 * n_uplinks * TARGETS else 1


if __name__ == "__main__":
    sys.exit(main())
