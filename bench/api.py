#!/usr/bin/python3
"""The REST API's cost to the data plane: the same egressd with 20 dashboard clients on its
API and with none, in one run.

One lab (tests/lab/policylab.py), one egressd on gw running the policy module for client1's
LAN and gateway mode (the transparent proxy) for client2's:

    client1 10.10.1.2 -- lan0 --+                  +-- isp1 --+
      (policy: kernel forwarding)   gw (egressd) --+-- isp2 --+-- inet 11.0.0.80 (nginx 80,
    client2 10.10.2.2 -- lan1 --+    API socket    +-- isp3 --+        iperf3 5201)
      (gateway mode: the proxy)     apiload.py (dashboard clients, latency probe)

Measured in --rounds rounds, each with and without the clients (the order reversed every
round, so load from elsewhere on the machine falls on both alike):
  - the proxy's new connections per second: connhold.py churn from client2 to nginx, which
    gateway mode hands to the proxy (as bench/proxy.py measures it);
  - the policy module's throughput: iperf3, one stream, client1 to inet;
  - the API's latency meanwhile: apiload.py probe, GET /api/uplinks one after the other.
The clients (apiload.py clients) do what an open web dashboard does: the event stream held
open, GET /api/uplinks every 2 s and GET /api/connections every 3 s.  Reported: the medians
of each condition and their ratio (goal: within noise), the probe's p99 under each, and
egressd's resident memory (VmRSS, after the same load) with the API off (no listener, no
socket), on and idle, and on with the clients attached.

Exit status 1 when the run is invalid - a measurement failed or counted nothing, traffic
reached inet without egressd, not every client got its stream, the probe got no answer, or
egressd did not stop cleanly - with the reasons; a missed goal is a result, exit 0.
What it must not do: touch the host's namespace - everything runs inside the lab's.
"""
import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAB = HERE.parent / "tests" / "lab"
sys.path.insert(0, str(LAB))

from egressd import Egressd  # noqa: E402
from lab import Lab, LabError  # noqa: E402
import policylab  # noqa: E402

APILOAD = HERE / "apiload.py"
CONNHOLD = LAB / "connhold.py"
SERVER = policylab.SERVER
CLIENTS = 20

CONF = """
[global]
log_level = info

[balance]
lan = lan0

[policy balanced]
member = isp1, isp2, isp3

[proxy]
address = 10.10.1.1
port = 1080

[gateway]
address = 10.10.2.1
subnet = 10.10.2.0/24
auto_config = yes
backup_file = %(backup)s
"""

UPLINK = """
[uplink %(name)s]
interface = %(name)s
gateway = %(gw)s
source = %(addr)s
weight = %(weight)d
masquerade = yes
check = icmp
check_target = %(target)s
"""
UPLINKS = [("isp1", "192.0.2.2", 3, "198.51.100.2"), ("isp2", "192.0.2.10", 2, "198.51.100.18"),
           ("isp3", "192.0.2.18", 1, "198.51.100.34")]
API_OFF = ["--set", "api.listen=none", "--set", "api.socket=none"]


def conf(lab):
    return CONF % {"backup": lab.dir / "ruleset-backup.nft"} + "".join(
        UPLINK % {"name": n, "gw": g, "addr": policylab.ADDR[n], "weight": w, "target": t}
        for n, g, w, t in UPLINKS)


def build(lab):
    gw = policylab.build(lab)
    inet = lab["inet"]
    inet.nginx(80, name="inet")
    inet.iperf3_server(5201)
    # room for the client's ports, TIME_WAIT ports reused (as bench/proxy.py)
    lab["client2"].sysctl(**{"net.ipv4.ip_local_port_range": "1024 65535",
                             "net.ipv4.tcp_tw_reuse": 1})
    return gw


def start(lab, binary, api):
    d = Egressd.start(lab["gw"], binary, conf(lab), args=[] if api else API_OFF)
    for u, *_ in UPLINKS:
        d.wait_log(r"uplink %s: init -> up" % u)
    d.wait_log(r"gateway: intercepting 1 subnet")
    policylab.wait_table(lab["gw"])
    return d


def memory_kb(pid):
    """(VmRSS, VmHWM) of pid in kB."""
    with open("/proc/%d/status" % pid) as f:
        v = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
    return int(v["VmRSS"].split()[0]), int(v["VmHWM"].split()[0])


# ---------------------------------------------------------------------------------------------
# the load


def conn_rate(lab, seconds):
    r = lab["client2"].run([sys.executable, CONNHOLD, "churn", SERVER, 80, seconds, 32, 2],
                           timeout=seconds + 60)
    st = json.loads(r.stdout)
    st["rate"] = st["ok"] / st["seconds"]
    return st


def iperf(lab, seconds):
    r = lab["client1"].run(["iperf3", "-c", SERVER, "-P", 1, "-t", seconds, "-J"],
                           timeout=seconds + 30)
    return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


class ApiLoad:
    """apiload.py in gw on d's API socket, until stop(), which returns its JSON."""

    def __init__(self, d, mode, *extra):
        self.p = d.node.popen([sys.executable, APILOAD, mode, *extra, "--unix", d.api_socket],
                              name="apiload-%s" % mode, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    def line(self, timeout=40):
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        line = self.p.stdout.readline() if ready else ""
        if not line:
            raise LabError("apiload said nothing within %d s (exit %s)"
                           % (timeout, self.p.poll()))
        return json.loads(line)

    def stop(self):
        self.p.stdin.close()
        try:
            return self.line()
        finally:
            self.p.wait(30)


def one_round(lab, d, args, res, with_clients):
    """One measurement of each kind, with or without the dashboard clients."""
    key = "clients" if with_clients else "none"
    r = res.setdefault(key, {"cps": [], "gbps": [], "ms": [], "probe": [], "cps_fail": 0,
                             "peers": {}})
    clients = ApiLoad(d, "clients", str(CLIENTS)) if with_clients else None
    try:
        if clients:
            ready = clients.line()["ready"]
            r["ready"] = min(r.get("ready", ready), ready)
        probe = ApiLoad(d, "probe")
        try:
            cps = conn_rate(lab, args.cps_seconds)
            r["gbps"].append(iperf(lab, args.iperf_seconds))
        finally:
            p = probe.stop()
        r["cps"].append(cps["rate"])
        r["cps_fail"] += cps["fail"]
        for a, n in cps["peers"].items():
            r["peers"][a] = r["peers"].get(a, 0) + n
        r["ms"] += p["ms"]
        r["probe"].append({k: p[k] for k in ("n", "codes", "errors")})
        if clients:
            r["rss_kb"] = max(r.get("rss_kb", 0), memory_kb(d.proc.pid)[0])
    finally:
        if clients:
            r.setdefault("clients", []).append(clients.stop())


def p99(ms):
    if not ms:
        return None
    s = sorted(ms)
    return s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]


# ---------------------------------------------------------------------------------------------
# report


def report(r):
    n, c = r["none"], r["clients"]
    print("API cost to the data plane: one egressd, %d dashboard clients beside none "
          "(%d rounds, medians; %d CPUs, load average %.1f at the start)"
          % (CLIENTS, r["rounds"], r["cpus"], r["load"]))
    print("%-40s %14s %14s %8s" % ("", "no clients", "%d clients" % CLIENTS, "ratio"))
    for key, name, unit, fmt in (("cps", "proxy new connections", "per s", "%.0f"),
                                 ("gbps", "policy throughput, 1 stream", "Gbit/s", "%.2f")):
        a, b = statistics.median(n[key]), statistics.median(c[key])
        print("%-40s %14s %14s %7.2f   (runs %s | %s)" % (
            "%s (%s)" % (name, unit), fmt % a, fmt % b, b / a if a else float("nan"),
            "/".join(fmt % v for v in n[key]), "/".join(fmt % v for v in c[key])))
    pa, pb = p99(n["ms"]), p99(c["ms"])
    print("%-40s %14s %14s %8s   (%d | %d requests)" % (
        "API latency p99, GET /api/uplinks (ms)", "%.2f" % pa if pa is not None else "-",
        "%.2f" % pb if pb is not None else "-", "", len(n["ms"]), len(c["ms"])))
    m = r["memory_kb"]
    print("%-40s %14s %14s %8s" % ("egressd VmRSS (kB), API off / on", m["api_off"],
                                   m["api_on"], "%.2f" % (m["api_on"] / m["api_off"])))
    print("%-40s %14s %14s" % ("  on, with the clients attached", "", c.get("rss_kb", "-")))
    st = c.get("clients") or []
    if st:
        reqs = {}
        for s in st:
            for k, v in s["requests"].items():
                reqs[k] = reqs.get(k, 0) + v
        print("clients' requests: %s; stream bytes read %d"
              % (", ".join("%s: %d" % kv for kv in sorted(reqs.items())),
                 sum(s["stream_bytes"] for s in st)))
    print("goal: the data plane within noise with the clients (ratios near 1: %s)" % ", ".join(
        "%.2f" % (statistics.median(c[k]) / statistics.median(n[k])) for k in ("cps", "gbps")
        if statistics.median(n[k])))


def invalid(r):
    out = []
    for key in ("none", "clients"):
        x = r.get(key)
        if not x or not x["cps"] or not x["gbps"]:
            out.append("%s: nothing measured" % key)
            continue
        if min(x["cps"]) <= 0:
            out.append("%s: a connection-rate run had no connection through" % key)
        if not set(x["peers"]) <= set(policylab.ADDR.values()):
            out.append("%s: inet saw connections from %s, not from the uplinks"
                       % (key, sorted(set(x["peers"]) - set(policylab.ADDR.values()))))
        if not x["ms"]:
            out.append("%s: the API probe got no answer (%s)" % (key, x["probe"]))
        elif any(set(p["codes"]) != {"200"} for p in x["probe"]):
            out.append("%s: the API probe got %s" % (key, [p["codes"] for p in x["probe"]]))
    c = r.get("clients") or {}
    if c and c.get("ready") != CLIENTS:
        out.append("only %s of %d clients got the event stream" % (c.get("ready"), CLIENTS))
    for s in c.get("clients", []):
        bad = {k: v for k, v in s["requests"].items() if not k.endswith(" 200")}
        if bad or s["errors"]:
            out.append("the clients got %s, errors %s" % (bad, s["errors"]))
            break
    out += r.get("errors", [])
    return out


def closed_paths(lab):
    """True when neither client reaches inet by itself (no egressd in place)."""
    return all(lab[c].curl("http://%s/" % SERVER, timeout=1, check=False).returncode != 0
               for c in ("client1", "client2"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cps-seconds", type=int, default=3)
    ap.add_argument("--iperf-seconds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = {"rounds": args.rounds, "cpus": os.cpu_count(), "load": os.getloadavg()[0],
         "memory_kb": {}, "errors": []}
    t0 = time.monotonic()
    with Lab() as lab:
        build(lab)
        if not closed_paths(lab):
            raise LabError("a client reaches inet without egressd")
        # the API off: its memory after the same load as below
        d = start(lab, args.egressd, api=False)
        try:
            conn_rate(lab, args.cps_seconds)
            iperf(lab, args.iperf_seconds)
            r["memory_kb"]["api_off"] = memory_kb(d.proc.pid)[0]
        finally:
            if d.stop() != 0:
                r["errors"].append("egressd (API off) did not stop cleanly")
        d = start(lab, args.egressd, api=True)
        try:
            for i in range(args.rounds):
                for with_clients in ((False, True) if i % 2 == 0 else (True, False)):
                    one_round(lab, d, args, r, with_clients)
                    if i == 0 and not with_clients:  # after the same load as with it off
                        r["memory_kb"]["api_on"] = memory_kb(d.proc.pid)[0]
        finally:
            if d.stop() != 0:
                r["errors"].append("egressd (API on) did not stop cleanly")
        try:
            d.assert_clean()
        except AssertionError as e:
            r["errors"].append(str(e)[:500])
    r["seconds"] = round(time.monotonic() - t0, 1)
    why = invalid(r)
    if args.json:
        print(json.dumps(r))
    elif not why:
        report(r)
        print("(%.0f s)" % r["seconds"])
    for line in why:
        print("invalid run: %s" % line)
    return 1 if why else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (LabError, subprocess.SubprocessError) as e:
        print("api: invalid run: %s" % e)
        sys.exit(1)
