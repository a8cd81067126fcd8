#!/usr/bin/python3
"""The policy module against plain kernel forwarding, side by side in one run.

Same lab (tests/lab/policylab.py), same client and server, three modes:
  - plain:  gw forwards through isp1 and nothing else (the ISP and the server route the
            client's network back): what the kernel does alone;
  - masq:   the same with one masquerade rule on isp1, the peer the goal is set against;
  - policy: egressd's policy module spreads connections over the three ISPs (ct marks,
            weighted choice, per-uplink tables and fwmark rules, masquerade).
Measured: iperf3 throughput with 1 and 8 streams and new TCP connections per second, as
medians of --rounds short rounds per mode, the modes interleaved in a rotating order (each
round in a fresh lab) so that a load which comes and goes on a shared machine touches all of
them; --compare adds another egressd build (e.g. the one before a change) to the same run.
Then, one lab per mode, the routing table lookups per forwarded packet (a count, from the
kernel's fib:fib_table_lookup tracepoint through perf; --no-lookups skips it).
Then the failover time (an ISP blackholed behind a live link: time until the last new
connection sent into it) with the default checks and an aggressive profile, or "not
detected" / "no new flow failed" as in failover.py (--no-failover skips it). Exits 1 when a
run is invalid (egressd does not stop cleanly), not when a number is poor.
"""
import argparse
import json
import re
import statistics
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


def conns_per_second(client, seconds):
    r = client.run([sys.executable, str(LAB / "newflows.py"), policylab.SERVER, "7000", "0",
                    str(seconds), "2"], timeout=seconds + 30)
    ok = sum(1 for line in r.stdout.splitlines() if " ok " in line)
    return ok / seconds


def measure(lab, seconds):
    c = lab["client1"]
    return {"iperf1": iperf(c, 1, seconds), "iperf8": iperf(c, 8, seconds),
            "cps": conns_per_second(c, seconds)}


def one_round(mode, seconds, binary, run=measure):
    """One short round of mode in a lab of its own (no conntrack or TIME_WAIT state from
    another), returning what run(lab, seconds) gives."""
    with Lab() as lab:
        gw = policylab.build(lab)
        lab["inet"].iperf3_server(5201)
        d = None
        if mode == "plain":
            # no address translation: the ISP and the server route the client's network back
            lab["isp1"].ip("route", "add", "10.10.1.0/24", "via", "192.0.2.1")
            lab["inet"].ip("route", "add", "10.10.1.0/24", "via", "198.51.100.1")
        elif mode == "masq":
            gw.run(["nft", "-f", "-"], input=PLAIN_NAT)
        else:
            d = Egressd.start(gw, binary, policylab.CONF)
            for u in ("isp1", "isp2", "isp3"):
                d.wait_log(r"uplink %s: init -> up" % u)
            policylab.wait_table(gw)
        r = run(lab, seconds)
        if d is not None:
            d.stop_clean()
        return r


def forwarding(args):
    """Medians of args.rounds rounds of each mode, the modes interleaved (in a rotating
    order) so that a load that comes and goes on a shared machine touches all of them."""
    modes = [("plain", "plain forwarding", None), ("masq", "forwarding + masquerade", None),
             ("policy", "egressd policy", args.egressd)]
    if args.compare:
        modes.append(("compare", "policy (%s)" % args.compare_label, args.compare))
    got = {m[0]: [] for m in modes}
    for i in range(args.rounds):
        for j in range(len(modes)):
            key, _, binary = modes[(i + j) % len(modes)]
            got[key].append(one_round(key, args.seconds, binary))
    med = {k: {f: statistics.median(r[f] for r in v) for f in FIGURES} for k, v in got.items()}
    print("policy module beside kernel forwarding (same lab, one run; medians of %d rounds of "
          "%d s, interleaved)" % (args.rounds, args.seconds))
    print("%-22s" % "" + "".join("%18s" % m[1][:17] for m in modes) + "   policy/masq"
          + ("   policy/plain" if True else ""))
    for f, name, unit in FIGURE_NAMES:
        row = "%-22s" % ("%s, %s" % (name, unit))
        for key, _, _ in modes:
            row += "%18.2f" % med[key][f] if unit == "Gbit/s" else "%18.0f" % med[key][f]
        row += "%13.1f%%" % (100 * med["policy"][f] / med["masq"][f])
        row += "%14.1f%%" % (100 * med["policy"][f] / med["plain"][f])
        print(row)
    if args.compare:
        print("%s/masq:" % args.compare_label + "".join(
            "  %s %.1f%%" % (name, 100 * med["compare"][f] / med["masq"][f])
            for f, name, _ in FIGURE_NAMES))
    print("rounds (policy/masq per round): " + "; ".join(
        " ".join("%.2f" % (got["policy"][i][f] / got["masq"][i][f]) for f in FIGURES)
        for i in range(args.rounds)))


FIGURES = ("iperf1", "iperf8", "cps")
FIGURE_NAMES = (("iperf1", "iperf3 1 stream", "Gbit/s"), ("iperf8", "iperf3 8 streams", "Gbit/s"),
                ("cps", "new TCP conns", "per s"))


LOOKUP = re.compile(r"fib_table_lookup: table (\d+) oif \d+ iif (\d+) .* (\S+)/\d+ -> "
                    r"(\S+)/\d+ .*==> dev (\S+) ")
GW_DEVS = ("lan0", "lan1", "isp1", "isp2", "isp3", "-")
PINGS = 200


def count_lookups(lab, seconds):
    """Routing table lookups per forwarded packet: PINGS echo requests from client1 to the
    server (one ICMP flow, so the established path) and their replies, with the kernel's
    fib:fib_table_lookup tracepoint recorded machine-wide (perf) and only the lookups between
    the two addresses counted (routing and reverse-path checks, both directions), by table.
    The tracepoint does not tell namespaces apart: the client's (eth0) and the ISPs' and the
    server's lookups (eth0, eth1, lo) are told by the device they give; lookups from lo (the
    gateway's own, nftables' per new connection) are left out."""
    data = Path(lab.dir) / "fib.perf"
    perf = subprocess.Popen(["perf", "record", "-q", "-e", "fib:fib_table_lookup", "-a",
                             "-o", str(data), "--", "sleep", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    got = lab["client1"].ping(policylab.SERVER, count=PINGS, interval=0.005)
    perf.wait(timeout=30)
    out = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True, text=True,
                         timeout=120).stdout
    ends = {"10.10.1.2", policylab.SERVER}
    tables = {}
    for m in LOOKUP.finditer(out):
        if {m.group(3), m.group(4)} == ends and m.group(2) != "1" and m.group(5) in GW_DEVS:
            t = int(m.group(1))
            kind = "local" if t == 255 else "main" if t == 254 else "uplink"
            tables[kind] = tables.get(kind, 0) + 1
    packets = 2 * got.received
    return {k: v / packets for k, v in tables.items()} if packets else None


def lookups(args):
    """One lab per mode: the routing lookups its forwarded packets take (deterministic, so one
    round each)."""
    try:
        subprocess.run(["perf", "list", "fib:*"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        print("routing lookups per packet: not measured (perf with the fib tracepoints needed)")
        return
    modes = [("plain", "plain forwarding", None), ("masq", "forwarding + masquerade", None),
             ("policy", "egressd policy", args.egressd)]
    if args.compare:
        modes.append(("compare", "policy (%s)" % args.compare_label, args.compare))
    print("routing table lookups per forwarded packet (%d pings and their replies, one flow; "
          "routing and reverse-path checks; fib:fib_table_lookup)" % PINGS)
    for key, name, binary in modes:
        r = one_round(key, 0, binary, run=count_lookups)
        if r is None:
            print("  %-26s no reply came back" % name)
            continue
        print("  %-26s %.2f  (%s)" % (name, sum(r.values()), ", ".join(
            "%s %.2f" % (k, r[k]) for k in ("local", "main", "uplink") if k in r)))


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
    ap.add_argument("--seconds", type=int, default=3, help="length of each measurement")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per mode (medians)")
    ap.add_argument("--compare", help="another egressd binary measured in the same run")
    ap.add_argument("--compare-label", default="other build")
    ap.add_argument("--no-failover", action="store_true", help="forwarding figures only")
    ap.add_argument("--no-lookups", action="store_true",
                    help="skip the routing lookups per packet (perf tracepoint)")
    args = ap.parse_args()
    forwarding(args)
    if not args.no_lookups:
        lookups(args)
    if args.no_failover:
        return 0
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
