#!/usr/bin/python3
"""The device gateway ([devices] module) at scale: leases for 200 devices from a cold start,
egressd's cost per device at rest, and port-forward throughput from IPv6 to IPv4.

tests/lab/devlab.py's topology with --devices LAN devices (default 200), every MAC
registered on the firewall, a dual-stack upstream (dnsmasq: DHCPv4, DHCPv6 and RAs); each
device already holds its LAN address, so the LAN DHCP server's leases file lists them all
when egressd starts.

Measured:
  - from egressd's start (empty store, no macvlan yet) until GET /devices shows every device
    active with a WAN IPv4 and a WAN IPv6 (goal under 10 s for 200; the reference tool asks
    for one device after another, up to about 2.5 minutes each), and until the first, with
    the slowest GET /devices meanwhile (the API answers throughout, 5 s at most); the
    upstream's dnsmasq runs with --no-ping (its ping check before each offer, about 0.15 s
    a client on its one loop, is the upstream's cost, not egressd's);
  - egressd's resident memory (VmRSS) and CPU time (over --rest seconds) at rest with every
    device active, less those of an egressd whose [devices] serves none of them (allow lists
    a MAC no device has), per device; the upstream's leases last 2 minutes with dnsmasq's
    own T1 (1 minute), so a rest of over a minute includes each device's renewal;
  - TCP throughput (iperf3, --seconds s, from the internet host to device 1's iperf3 server)
    through the IPv6 -> IPv4 port forward (egressd's splice relay on the device's WAN IPv6)
    beside plain kernel forwarding (the IPv4 port forward: DNAT on its WAN IPv4).

Exit status 1 when the run is invalid - a device that never got its leases, an egressd that
did not stop cleanly, an iperf3 run that failed - with the reason; a missed goal is a
result, exit 0.  What it must not do: anything outside its lab's namespaces.
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "lab"))

from devlab import DevLab, mac_of  # noqa: E402
from lab import Lab, LabError  # noqa: E402

IPERF_PORT = 5201
PORT_MAP = "port_map = 8080:80 2323:23 %d:%d\n" % (IPERF_PORT, IPERF_PORT)


class Invalid(Exception):
    pass


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise Invalid("no %s for pid %d" % (key, pid))


def cpu_seconds(pid):
    """CPU time of pid and its threads so far, in seconds (schedstat: nanoseconds, where
    utime + stime would count 10 ms ticks)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


def at_rest(d, seconds):
    """(VmRSS kB, CPU seconds over `seconds`) of a running egressd."""
    pid = d.proc.pid
    c0 = cpu_seconds(pid)
    time.sleep(seconds)
    return proc_status(pid, "VmRSS"), cpu_seconds(pid) - c0


def stop(d):
    try:
        d.stop_clean()
    except LabError as e:
        raise Invalid(str(e)) from None


def iperf(dl, addr, seconds):
    """bits/s of a TCP run from the internet host to addr:IPERF_PORT."""
    r = dl.inet.run(["iperf3", "-c", addr, "-p", IPERF_PORT, "-t", seconds, "-J"], check=False,
                    timeout=seconds + 30)
    try:
        res = json.loads(r.stdout)
        return res["end"]["sum_received"]["bits_per_second"]
    except (ValueError, KeyError):
        raise Invalid("iperf3 to %s failed: %s %s" % (addr, r.stdout[-500:], r.stderr[-500:])) \
            from None


def run(args):
    n = args.devices
    every = list(range(1, n + 1))
    with Lab() as lab:
        t = time.monotonic()
        dl = DevLab(lab, n=n, registered=every, renew=None)
        dl.lan_up()
        print("lab: %d devices built and on the LAN in %.1f s" % (n, time.monotonic() - t))
        dl.node(1).iperf3_server(IPERF_PORT)

        # the baseline: the same egressd serving no device
        d = dl.start_egressd(args.egressd, extra="allow = 02:00:00:ff:ff:ff\n" + PORT_MAP,
                             name="egressd-none")
        time.sleep(2)
        rss0, cpu0 = at_rest(d, args.rest)
        stop(d)
        shutil.rmtree(dl.state_dir(), ignore_errors=True)

        # the cold start
        t0 = time.monotonic()
        d = dl.start_egressd(args.egressd, extra=PORT_MAP, timeout=30)
        first = None
        fam = {"ipv4_wan_address": None, "ipv6_address": None}  # when all had that one
        deadline = t0 + args.timeout
        slowest = 0.0  # the slowest GET /devices meanwhile (the API answers throughout)
        while True:
            t = time.monotonic()
            try:
                devs = dl.devices()
            except LabError as e:
                raise Invalid("GET /devices during the cold start: %s" % e) from None
            slowest = max(slowest, time.monotonic() - t)
            done = [m for m, r in devs.items() if r.get("status") == "active"
                    and r.get("ipv4_wan_address") and r.get("ipv6_address")]
            now = time.monotonic()
            if done and first is None:
                first = now - t0
            for k in fam:
                if fam[k] is None and sum(1 for r in devs.values() if r.get(k)) >= n:
                    fam[k] = now - t0
            if len(done) >= n:
                break
            if now > deadline:
                raise Invalid("after %.0f s only %d of %d devices hold their leases"
                              % (args.timeout, len(done), n))
            time.sleep(0.1)
        t_all = now - t0
        time.sleep(2)
        rss1, cpu1 = at_rest(d, args.rest)

        rec = devs[mac_of(1)]
        bps6 = iperf(dl, rec["ipv6_address"], args.seconds)
        bps4 = iperf(dl, rec["ipv4_wan_address"], args.seconds)
        stop(d)

    print(f"{'devices ([devices])':<44}{'egress':>14}{'peer':>36}")
    print(f"{'%d devices: all hold leases (v4 + v6)' % n:<44}{t_all:>12.2f} s"
          f"{'~%d min (reference, 2.5 min each)' % (n * 2.5):>36}   goal under 10 s: "
          f"{'met' if t_all < 10 else 'MISSED'}")
    print(f"{'  first device':<44}{first:>12.2f} s")
    print(f"{'  slowest GET /devices meanwhile':<44}{slowest:>12.2f} s")
    print(f"{'  all with a WAN IPv4 / all with a WAN IPv6':<44}{fam['ipv4_wan_address']:>12.2f} s"
          f"{fam['ipv6_address']:>12.2f} s")
    print(f"{'memory per device at rest (VmRSS)':<44}{(rss1 - rss0) / n:>11.1f} kB"
          f"{'':>36}   ({rss0} -> {rss1} kB)")
    print(f"{'CPU per device at rest':<44}{(cpu1 - cpu0) / args.rest / n * 100:>11.4f} %"
          f"{'':>36}   ({cpu0 * 1e3:.1f} -> {cpu1 * 1e3:.1f} ms over {args.rest} s)")
    print(f"{'forward IPv6 -> IPv4 (relay) / IPv4 DNAT':<44}{bps6 / 1e9:>9.2f} Gbit/s"
          f"{bps4 / 1e9:>28.2f} Gbit/s   ratio {bps6 / bps4:.2f} (peer: DNAT)")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--rest", type=int, default=10, help="seconds measured at rest")
    ap.add_argument("--seconds", type=int, default=5, help="seconds of each iperf3 run")
    ap.add_argument("--timeout", type=int, default=300, help="give up on leases after this")
    args = ap.parse_args()
    try:
        return run(args)
    except Invalid as e:
        print("devices: invalid run: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
