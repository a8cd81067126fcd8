#!/usr/bin/python3
"""Run the benchmarks and print each beside its peer, with ratios.

Core: prefix merging and config parsing.  The peer for merging prefixes is
Python's ipaddress.collapse_addresses, which is what scripts around
gateway-route-manager-style tools use; both get the same input in the same
run.  Then the module benchmarks: failover.py (route module failover time
beside the published defaults of gateway-route-manager, mwan3 and dpinger)
check_cpu.py (health-engine CPU for 500 targets at 1 s), policy.py (the policy
module's throughput and connection rate beside plain kernel forwarding with and without
masquerade, medians of interleaved rounds, and its failover time), proxy.py (the proxy beside plain forwarding, HAProxy and socat:
throughput, connection rate, memory per idle connection; the DNS forwarder beside
dnsmasq) and api.py (the REST API's cost to the data plane: the proxy's connection rate
and the policy module's throughput with 20 dashboard clients beside none, the API's
latency meanwhile, egressd's memory with the API on and off), allowlist.py (100 000
allowlist entries in one nftables transaction beside iptables one rule per address, and
forwarding through a gateway holding them beside one holding a single entry) and
allowlist_fanout.py (one change reaching 200 simulated gateways through egress-server's
hub: time until all acknowledged, memory per gateway) and devices.py (the [devices] module:
200 devices from a cold start until all hold leases, memory and CPU per device at rest, the
IPv6 -> IPv4 port forward's throughput beside plain forwarding) and dns.py (the DNS
forwarder beside dnsmasq and dnsdist under dnsperf, unbound upstream, with and without
cache: queries per second and latency).

Exits 1 when a run is invalid - a result that does not match its peer's, or a benchmark
script that says its run measured nothing trustworthy (exit 1, the reason printed) - never
because a number misses a goal: the scripts print those as results.
"""
import argparse
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True, help="path of the built egressd")
    ap.add_argument("--prefixes", type=int, default=100000)
    ap.add_argument("--uplinks", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3, help="failover runs per profile")
    args = ap.parse_args()
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(args.egressd))))
    bench_core = os.path.join(build, "bench", "bench_core")

    with tempfile.TemporaryDirectory() as tmp:
        pfile = os.path.join(tmp, "prefixes.txt")
        out = subprocess.run([bench_core, str(args.prefixes), str(args.uplinks), pfile],
                             check=True, capture_output=True, text=True).stdout
        results = {r["bench"]: r for r in map(json.loads, out.splitlines())}
        with open(pfile) as f:
            nets = [ipaddress.ip_network(line.strip()) for line in f]
        t0 = time.monotonic()
        peer = list(ipaddress.collapse_addresses(nets))
        peer_s = time.monotonic() - t0

    m = results["prefix-merge"]
    print(f"{'benchmark':<34}{'egress':>14}{'peer':>14}{'ratio':>10}")
    print(f"{'merge %d IPv4 prefixes' % m['prefixes']:<34}{m['seconds'] * 1e3:>11.1f} ms"
          f"{peer_s * 1e3:>11.1f} ms{peer_s / m['seconds']:>9.1f}x   (peer: python ipaddress)")
    if m["merged"] != len(peer):
        print(f"MISMATCH: egress merged into {m['merged']} prefixes, peer into {len(peer)}")
        return 1
    print(f"{'  -> merged prefixes':<34}{m['merged']:>14}{len(peer):>14}")
    p = results["public-v4"]
    print(f"{'public IPv4 = complement(RFC 6890)':<34}{p['seconds_each'] * 1e6:>11.1f} us"
          f"{'':>14}{'':>10}   ({p['prefixes']} prefixes)")
    c = results["conf-parse"]
    print(f"{'parse conf, %d uplinks' % c['uplinks']:<34}{c['seconds'] * 1e3:>11.1f} ms")
    dp = results["dispatch-pick"]
    print(f"{'proxy uplink pick, %d rules' % dp['rules'][1]:<34}{dp['ns'][1]:>11.1f} ns"
          f"{dp['ns'][0]:>11.1f} ns{dp['ns'][1] / dp['ns'][0]:>9.1f}x   (peer: with "
          f"{dp['rules'][0]} rule)")
    print()
    here = os.path.dirname(os.path.abspath(__file__))
    invalid = []
    for script, extra in (("failover.py", ["--runs", str(args.runs)]), ("check_cpu.py", []),
                          ("policy.py", []), ("proxy.py", []), ("api.py", []),
                          ("allowlist.py", []), ("allowlist_fanout.py", []),
                          ("devices.py", []), ("dns.py", [])):
        path = os.path.join(here, script)
        r = subprocess.run([sys.executable, path, "--egressd", args.egressd] + extra)
        if r.returncode != 0:
            invalid.append("%s (exit %d)" % (script, r.returncode))
        print()
    if invalid:
        print("bench: invalid runs: %s" % ", ".join(invalid))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
