#!/usr/bin/python3
"""The proxy and DNS modules beside their peers, side by side in one lab run.

One lab (tests/lab/proxylab.py), each side in turn on gw, the same client and servers:

    client 10.20.0.2 -- gw 10.20.0.1 --+-- isp1 --+-- inet 11.0.0.80 (iperf3 5201, nginx 80,
                                       +-- isp2 --+        connhold 7100) and 11.0.0.53 (DNS)

  plain    gw forwards and masquerades (table ip benchnat of our own, removed after);
           the client talks to 11.0.0.80 itself - what the kernel does alone;
  HAProxy  mode tcp, option splice-request/-response, a listener on gw per server port;
  HAProxy REDIRECT  the same HAProxy behind the same kind of nft REDIRECT as egressd's
           gateway mode (server 0.0.0.0: the original destination), so that the cost of
           the interception (conntrack, NAT) is on both sides of that comparison;
  socat    TCP-LISTEN:...,fork (a process per connection), a listener per server port;
  egressd  `egressd dispatch -gateway`: the client talks to 11.0.0.80 itself and gw's
           REDIRECT hands its TCP to the transparent proxy (splice relay, 2 uplinks 3:2).

egressd runs with one worker per CPU, and again with 1 and 2 workers where the machine has
another number of CPUs, both as the transparent gateway and as a SOCKS5 proxy (those sides:
1 stream and the connection rate only); each worker accepts on its own socket, so the
connection rate at 1, 2, ... workers shows what the extra cores bring.

Measured for each: iperf3 with 1 and 8 streams; new connections per second (connhold.py
churn: many in flight, each connect + HTTP/1.0 GET to nginx + read to EOF + close; nginx
rather than the Python echo server, whose thread per connection would cap every side
alike); userspace memory per idle connection (connhold.py hold: N connections, each
answered once end to end, then idle; VmRSS summed over the proxy's processes - threads
included - before and after, divided by N; PSS beside it, fairer to socat's forks); and
the CPU time the proxy's processes used (user + system, reaped children included) per GB
of the 1-stream iperf3 runs and per new connection - less sensitive to a shared machine
than rates, though system time also carries the kernel work done in the proxy's calls.
DNS: dnsperf against egressd's forwarder ([dns], uplinks' dns = 11.0.0.53, cache on)
and against dnsmasq on gw forwarding to 11.0.0.53 (cache the same size); inet's
resolver gives its answers a TTL of an hour so that both caches keep them.

The sides take turns in --runs rounds (2; the order reversed each round), and throughput
and connection rate are each side's best round, every round printed beside it: on a
shared machine a stall caused elsewhere should not count against one side.
N is 1 000 and 10 000 (--hold), each in turn, unless the file limit the proxies inherit (RLIMIT_NOFILE, raised to its hard
limit here) cannot hold two sockets per connection; then it is cut, and says so.
Ratios are to plain forwarding (throughput, connection rate), HAProxy (memory, CPU) and
dnsmasq (DNS); the issue's goals are checked at the end and a miss is printed as such
(the connection rate's goal: egressd's ratio to plain forwarding at least HAProxy's, at
every worker count; memory: at most HAProxy's and at most 3 KiB at each N).
Exit status 1 when the run is invalid - a side failed, its traffic did not go through it
(the client reached the server with the side gone), nothing of a kind succeeded through it, or
dnsperf printed no rate - and each reason is printed; a missed goal is a result, exit 0.
What it must not do: touch the host's namespace - everything runs inside the lab's.
"""
import argparse
import json
import os
import resource
import select
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAB = HERE.parent / "tests" / "lab"
sys.path.insert(0, str(LAB))

from egressd import Egressd  # noqa: E402
from lab import Lab, LabError, wait_for, wait_port  # noqa: E402
import proxylab  # noqa: E402
import dnsperf_util  # noqa: E402

CONNHOLD = LAB / "connhold.py"
SERVER = proxylab.SERVER
GW = proxylab.GW_LAN
HOLD_PORT = 7100
PORTS = {"iperf": 5201, "web": 80, "hold": HOLD_PORT}
HAPROXY_PORTS = {"iperf": 15201, "web": 10080, "hold": 17100}
SOCAT_PORTS = {"iperf": 25201, "web": 20080, "hold": 27100}
SOCAT_HOLD = 1000  # socat forks a process per connection: 10 000 would be 10 000 processes
DNS_PORTS = {"egressd": 5300, "dnsmasq": 5301}
DNS_NAMES = ["web.test A", "web.test AAAA", "only-v4.test A"] + \
    ["n%d.bench.test A" % i for i in range(8)]

PLAIN_NAT = """table ip benchnat {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "isp1" masquerade
    }
}
"""

# maxconn fits N idle connections; maxpipes (default maxconn / 4, 2 fds each) is cut so that
# both fit the file limit, and 200 pipes are plenty for 8 streams
HAPROXY_REDIRECT_PORT = 18000
BENCH_REDIRECT = """table ip benchredir {
    chain pre {
        type nat hook prerouting priority dstnat;
        iifname "lan0" ip daddr 11.0.0.80 tcp dport { %s } redirect to :%d
    }
}
"""

HAPROXY_CONF = """global
    log stderr format raw local0 warning
    maxconn %d
    maxpipes 200
defaults
    mode tcp
    option splice-request
    option splice-response
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    maxconn 20000
"""

EGRESSD_DNS_CONF = """
[dns]
address = %s
port = %d

[uplink isp1]
source = %s
dns = %s

[uplink isp2]
source = %s
dns = %s
""" % (GW, DNS_PORTS["egressd"], proxylab.ADDR["isp1"], proxylab.DNS, proxylab.ADDR["isp2"],
       proxylab.DNS)

# egressd's worker counts: 1, 2 and every CPU ("egressd" and "egressd_socks" are the
# default, one per CPU), for the transparent gateway and for SOCKS5 alike: each worker
# accepts on a socket of its own and runs its connections' handshakes and connects, so the
# connection rate is the figure that moves with it.  The sides with a worker count of
# their own only measure 1 stream (gateway) and the connection rate.
CPUS = os.cpu_count() or 1
OTHER_COUNTS = sorted({1, 2} - {CPUS})


def _workers(n):
    return "%d worker%s" % (n, "s" * (n > 1))


WORKER_SIDES = [("egressd_w%d" % n, "egressd gateway, " + _workers(n)) for n in OTHER_COUNTS]
SOCKS_WORKER_SIDES = [("egressd_socks_w%d" % n, "egressd SOCKS5, " + _workers(n))
                      for n in OTHER_COUNTS]
SIDES = [("plain", "plain forwarding"), ("haproxy", "HAProxy splice"),
         ("haproxy_redirect", "HAProxy REDIRECT"), ("socat", "socat fork"),
         ("egressd", "egressd gateway, " + _workers(CPUS))] + WORKER_SIDES + \
    [("egressd_socks", "egressd SOCKS5, " + _workers(CPUS))] + SOCKS_WORKER_SIDES
# HAProxy REDIRECT would repeat HAProxy's
MEMORY_SIDES = ("haproxy", "socat", "egressd", "egressd_socks")
SOCKS_PORT = 1080
MEMORY_GOAL = 3072  # bytes per idle connection, at every N (the goal)


# ---------------------------------------------------------------------------------------------
# the sides: each start_*() returns {"targets": {what: (host, port)}, "pids": fn(what) -> the
# processes serving that target (None for plain forwarding), "stop": fn}


def start_plain(lab):
    gw = lab["gw"]
    gw.forward(True)
    gw.run(["nft", "-f", "-"], input=PLAIN_NAT)

    def stop():
        gw.run(["nft", "delete", "table", "ip", "benchnat"])
        gw.forward(False)
    return {"targets": {k: (SERVER, p) for k, p in PORTS.items()}, "pids": None, "stop": stop}


def start_haproxy(lab, n_hold, redirect=False):
    """HAProxy with a listener per server port or, with redirect, as a transparent proxy
    like egressd's: gw's REDIRECT (table ip benchredir) sends the client's TCP to one listener
    and HAProxy connects to the original destination (server 0.0.0.0, SO_ORIGINAL_DST)."""
    gw = lab["gw"]
    if redirect:
        gw.run(["nft", "-f", "-"], input=BENCH_REDIRECT % (
            ", ".join(str(p) for p in PORTS.values()), HAPROXY_REDIRECT_PORT))
        listen = "listen redirect\n    bind %s:%d\n    server s 0.0.0.0:0\n" % (
            GW, HAPROXY_REDIRECT_PORT)
        targets = {k: (SERVER, p) for k, p in PORTS.items()}
        port = HAPROXY_REDIRECT_PORT
    else:
        listen = "".join("listen %s\n    bind %s:%d\n    server s %s:%d\n"
                         % (k, GW, HAPROXY_PORTS[k], SERVER, p) for k, p in PORTS.items())
        targets = {k: (GW, p) for k, p in HAPROXY_PORTS.items()}
        port = HAPROXY_PORTS["hold"]
    path = lab.dir / "haproxy.cfg"
    path.write_text(HAPROXY_CONF % (n_hold + 200) + listen)
    try:
        proc = gw.spawn_daemon(["haproxy", "-db", "-f", path], name="haproxy", port=port)
    except LabError:
        if redirect:
            gw.run(["nft", "delete", "table", "ip", "benchredir"])
        raise

    def stop():
        proc.stop()
        if redirect:
            gw.run(["nft", "delete", "table", "ip", "benchredir"])
    return {"targets": targets, "pids": lambda what: [proc.pid], "stop": stop}


def start_socat(lab):
    gw = lab["gw"]
    procs = {}
    for k, p in PORTS.items():
        procs[k] = gw.popen(["socat", "TCP-LISTEN:%d,bind=%s,fork,reuseaddr,backlog=1024"
                             % (SOCAT_PORTS[k], GW), "TCP:%s:%d" % (SERVER, p)],
                            name="socat-%s" % k)
        wait_port(gw, SOCAT_PORTS[k], proc=procs[k])

    def stop():
        for proc in procs.values():
            proc.stop()
    return {"targets": {k: (GW, p) for k, p in SOCAT_PORTS.items()},
            "pids": lambda what: [procs[what].pid] + descendants(procs[what].pid), "stop": stop}


def start_egressd_socks(lab, binary, workers=0):
    """egressd dispatch as a SOCKS5 proxy on gw (go-dispatch-proxy's command line): the
    client's connections name the server in their requests."""
    gw = lab["gw"]
    d = Egressd.command(gw, binary, proxylab.dispatch_args(
        "-lhost", GW, "-lport", str(SOCKS_PORT), "-set", "proxy.max_per_client=20000",
        "-set", "proxy.workers=%d" % workers))
    wait_port(gw, SOCKS_PORT)
    return {"targets": {k: (SERVER, p) for k, p in PORTS.items()}, "socks": (GW, SOCKS_PORT),
            "pids": lambda what: [d.proc.pid], "stop": d.stop_clean}


def start_egressd(lab, binary, workers=0):
    gw = lab["gw"]
    d = Egressd.command(gw, binary, proxylab.dispatch_args(
        "-set", "proxy.workers=%d" % workers,
        "-gateway", "-gateway-ip", GW, "-subnet", "10.20.0.0/24", "-auto-config",
        "-backup-file", lab.dir / "ruleset-backup.nft", "-lport", "0",
        # the default allows 1000 connections per client address; the memory test makes
        # its N from one client
        "-set", "proxy.max_per_client=20000"))
    d.wait_log(r"gateway: intercepting 1 subnet")

    return {"targets": {k: (SERVER, p) for k, p in PORTS.items()},
            "pids": lambda what: [d.proc.pid], "stop": d.stop_clean}


def descendants(pid):
    """Every process below pid (from /proc/*/stat)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cpu_seconds(pids):
    """User + system CPU time of pids, their threads and their reaped children."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tck


def settled(pids_fn):
    """The pids of a forking side once its children of the last run have exited (and so
    have been reaped into the parent's cutime/cstime)."""
    try:
        wait_for(lambda: len(pids_fn()) <= 1, timeout=3, what="children to exit")
    except AssertionError:
        pass  # a child still running counts with its own time
    return pids_fn()


def memory_kb(pids):
    """(VmRSS, Pss) in kB summed over pids; a process that has gone counts 0."""
    rss = pss = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                rss += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            with open("/proc/%d/smaps_rollup" % pid) as f:
                pss += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return rss, pss


# ---------------------------------------------------------------------------------------------
# measurements


def iperf(client, target, streams, seconds):
    """(Gbit/s, bytes) received by the server."""
    r = client.run(["iperf3", "-c", target[0], "-p", target[1], "-P", streams, "-t", seconds,
                    "-J"], timeout=seconds + 30)
    got = json.loads(r.stdout)["end"]["sum_received"]
    return got["bits_per_second"] / 1e9, got["bytes"]


def socks_args(socks):
    return ["--socks5", "%s:%d" % socks] if socks else []


def conn_rate(client, target, seconds, socks=None):
    r = client.run([sys.executable, CONNHOLD, *socks_args(socks), "churn", target[0], target[1],
                    seconds, 32, 2], timeout=seconds + 60)
    st = json.loads(r.stdout)
    st["rate"] = st["ok"] / st["seconds"]
    return st


def idle_memory(client, target, pids, n, socks=None):
    """Open n idle connections through the side; returns its memory per connection."""
    before = memory_kb(pids("hold"))
    p = client.popen([sys.executable, CONNHOLD, *socks_args(socks), "hold", target[0],
                      target[1], n],
                     name="connhold", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 120)
        line = p.stdout.readline() if ready else ""
        if not line:
            raise LabError("connhold did not report within 120 s (exit %s)" % p.poll())
        st = json.loads(line)
        after = memory_kb(pids("hold"))
        nproc = len(pids("hold"))
    finally:
        p.stdin.close()
        p.wait(30)
    opened = max(st["open"], 1)
    return {"n": n, "open": st["open"], "fail": st["fail"], "errors": st["errors"],
            "rss_before_kb": before[0], "rss_after_kb": after[0], "processes": nproc,
            "rss_per_conn": (after[0] - before[0]) * 1024 / opened,
            "pss_per_conn": (after[1] - before[1]) * 1024 / opened, "peers": st["peers"]}


def closed_path(client):
    """True when the client cannot reach the server by itself (no side in place)."""
    return client.curl("http://%s/" % SERVER, timeout=1, check=False).returncode != 0


def run_side(lab, side, args, n_holds, res, memory):
    """One round of side: an iperf3 run with 1 and with 8 streams and a connection-rate run,
    appended to res's lists; the idle memory at each N of n_holds too if memory (a side
    with a worker count of its own: 1 stream and the connection rate only)."""
    c = lab["client"]
    if side == "plain":
        s = start_plain(lab)
    elif side == "haproxy":
        s = start_haproxy(lab, max(n_holds))
    elif side == "haproxy_redirect":
        s = start_haproxy(lab, max(n_holds), redirect=True)
    elif side == "socat":
        s = start_socat(lab)
    elif side.startswith("egressd_socks_w"):
        s = start_egressd_socks(lab, args.egressd, workers=int(side[len("egressd_socks_w"):]))
    elif side == "egressd_socks":
        s = start_egressd_socks(lab, args.egressd)
    elif side.startswith("egressd_w"):
        s = start_egressd(lab, args.egressd, workers=int(side[len("egressd_w"):]))
    else:
        s = start_egressd(lab, args.egressd)
    pids = s["pids"]
    light = side.startswith("egressd_w") or side.startswith("egressd_socks_w")
    socks = s.get("socks")  # a SOCKS5 side: the connection rate and memory only

    def cpu(what):
        return cpu_seconds(settled(lambda: pids(what))) if pids else 0.0
    try:
        t = s["targets"]
        for streams in () if socks else (1,) if light else (1, 8):
            c0 = cpu("iperf")
            gbps, nbytes = iperf(c, t["iperf"], streams, args.seconds)
            res.setdefault("iperf%d_runs" % streams, []).append(gbps)
            if pids and streams == 1:
                _add(res, "cpu_iperf1", cpu("iperf") - c0, nbytes / 1e9)
        c0 = cpu("web")
        cps = conn_rate(c, t["web"], args.cps_seconds, socks)
        if pids:
            _add(res, "cpu_cps", cpu("web") - c0, cps["ok"] / 1e3)
        res.setdefault("cps_runs", []).append(cps["rate"])
        if "cps" not in res or cps["rate"] > res["cps"]["rate"]:
            res["cps"] = cps
        if memory and side in MEMORY_SIDES:
            for n in n_holds:
                if side == "socat" and n > SOCAT_HOLD:
                    continue
                res["mem%d" % n] = idle_memory(c, t["hold"], s["pids"], n, socks)
    finally:
        s["stop"]()
    for streams in () if socks else (1,) if light else (1, 8):
        res["iperf%d" % streams] = max(res["iperf%d_runs" % streams])
    # the negative beside the positive: with the side gone, nothing gets through
    res["closed_after"] = res.get("closed_after", True) and closed_path(c)


def _add(res, key, cpu, units):
    """Add one run's CPU seconds and units of work (GB, thousands of connections)."""
    acc = res.setdefault(key, {"cpu_s": 0.0, "units": 0.0})
    acc["cpu_s"] += cpu
    acc["units"] += units
    acc["per_unit"] = acc["cpu_s"] / acc["units"] if acc["units"] else None




def dns_side(lab, side, args, qfile):
    """Start one DNS side on gw, check that it answers from upstream, run dnsperf."""
    c, gw = lab["client"], lab["gw"]
    port = DNS_PORTS[side]
    if side == "egressd":
        stop = Egressd.start(gw, args.egressd, EGRESSD_DNS_CONF).stop_clean
    else:
        stop = gw.dnsmasq("--listen-address=" + GW, "--bind-interfaces",
                          "--server=" + proxylab.DNS, "--cache-size=1024", port=port).stop
    try:
        good = dnsperf_util.answer(c, GW, port, "web.test")
        bad = dnsperf_util.answer(c, GW, port, "nowhere.test")
        if good != SERVER or bad != "NXDOMAIN":
            raise LabError("%s answers web.test with %s, nowhere.test with %s"
                           % (side, good, bad))
        return dnsperf_util.dnsperf(c, GW, port, qfile, args.dns_seconds)
    finally:
        stop()


def run_dns(lab, args, r):
    qfile = lab.dir / "queries.txt"
    qfile.write_text("\n".join(DNS_NAMES) + "\n")
    r["dns"] = {}
    for side in ("egressd", "dnsmasq"):
        try:
            r["dns"][side] = dns_side(lab, side, args, qfile)
        except (LabError, AssertionError, subprocess.SubprocessError, OSError) as e:
            r["dns"][side] = {"error": str(e)}
            r["dns_error"] = "%s: %s" % (side, e)


def build(lab):
    """The proxy lab with our own resolver on inet (answers with an hour's TTL)."""
    gw = proxylab.build(lab, dns=False)
    inet = lab["inet"]
    inet.dnsmasq("--listen-address=" + proxylab.DNS, "--bind-interfaces", "--local-ttl=3600",
                 "--address=/web.test/" + SERVER, "--address=/web.test/" + proxylab.SERVER6,
                 "--address=/only-v4.test/" + SERVER, "--address=/bench.test/" + SERVER,
                 "--address=/nowhere.test/")
    inet.iperf3_server(5201)
    inet.popen([sys.executable, CONNHOLD, "serve", HOLD_PORT], name="connhold-serve")
    wait_port(inet, HOLD_PORT)
    # the same for every side: room for the client's ports, TIME_WAIT ports reused (gw keeps
    # its range: the proxies' listening ports stay out of it)
    lab["client"].sysctl(**{"net.ipv4.ip_local_port_range": "1024 65535",
                            "net.ipv4.tcp_tw_reuse": 1})
    return gw


# ---------------------------------------------------------------------------------------------
# report


def ratio(v, ref):
    return "%7.2f" % (v / ref) if v is not None and ref else "%7s" % "-"


def _row(name, label, v, fmt, unit, ref, extra=""):
    print("%-30s %-20s %9s %-7s %s%s" % (name, label, fmt % v if v is not None else "-", unit,
                                         ratio(v, ref), extra))


def report(r):
    sides = r["sides"]
    print("proxy and DNS benchmark: one lab, each side in turn (%d CPUs, load average %.1f "
          "at the start)" % (r["cpus"], r["load"]))
    print("%-30s %-20s %17s %7s" % ("", "side", "value", "ratio"))
    for key, name, unit, fmt in (("iperf1", "iperf3 1 stream", "Gbit/s", "%.2f"),
                                 ("iperf8", "iperf3 8 streams", "Gbit/s", "%.2f"),
                                 ("cps", "new connections", "per s", "%.0f")):
        refv = _val(sides.get("plain"), key)
        for i, (side, label) in enumerate(SIDES):
            _row(name if i == 0 else "", label, _val(sides.get(side), key), fmt, unit, refv,
                 _note(sides.get(side), key))
    # below: the proxies only, against HAProxy; lower is better
    proxies = SIDES[1:]
    for n in r["hold_n"]:
        key = "mem%d" % n
        names = ["idle memory, RSS per conn", "  (N = %d)" % n]
        refv = _val(sides.get("haproxy"), key)
        rows = [x for x in proxies if x[0] in MEMORY_SIDES and (x[0] != "socat" or
                                                                n <= SOCAT_HOLD)]
        for i, (side, label) in enumerate(rows):
            m = (sides.get(side) or {}).get(key)
            extra = _err(sides.get(side))
            if m:
                extra = "  PSS %.0f B, %d open" % (m["pss_per_conn"], m["open"])
                if m["fail"]:
                    extra += ", %d failed %s" % (m["fail"], m["errors"])
            _row(names[i] if i < len(names) else "", label, m["rss_per_conn"] if m else None,
                 "%.0f", "B", refv, extra)
    for key, name, unit in (("cpu_iperf1", "proxy CPU, iperf3 1 stream", "s/GB"),
                                   ("cpu_cps", "proxy CPU per new connection", "ms")):
        refv = _val(sides.get("haproxy"), key)
        for i, (side, label) in enumerate(proxies):
            _row(name if i == 0 else "", label, _val(sides.get(side), key), "%.3f", unit, refv)
    dns = r.get("dns", {})
    for key, name, unit, fmt in (("qps", "DNS queries (dnsperf -l %d)" % r["dns_seconds"],
                                  "per s", "%.0f"),
                                 ("latency_ms", "DNS average latency", "ms", "%.3f")):
        refv = (dns.get("dnsmasq") or {}).get(key)
        for i, (side, label) in enumerate((("egressd", "egressd [dns]"),
                                           ("dnsmasq", "dnsmasq"))):
            d = dns.get(side) or {}
            extra = "  lost %d; %s" % (d["lost"] or 0, d["codes"]) \
                if key == "qps" and "qps" in d else ""
            _row(name if i == 0 else "", label, d.get(key), fmt, unit, refv, extra)
    if "dns_error" in r:
        print("DNS: %s" % r["dns_error"])
    print("\ngoals (from the issue):")
    for name, ok, detail in goals(r):
        print("  %-52s %-7s %s" % (name, "met" if ok else ("MISSED" if ok is False else "n/a"),
                                   detail))
    for what, default, prefix in (("gateway", "egressd", "egressd_w"),
                                  ("SOCKS5", "egressd_socks", "egressd_socks_w")):
        by_n = {CPUS: _val(sides.get(default), "cps")}
        by_n.update({n: _val(sides.get(prefix + str(n)), "cps") for n in OTHER_COUNTS})
        one = by_n.get(1)
        if one and all(v is not None for v in by_n.values()):
            print("  (%s connections/s by workers, to 1 worker: %s)" % (what, ", ".join(
                "%d: %.2f" % (n, by_n[n] / one) for n in sorted(by_n))))
    e, h = sides.get("egressd"), sides.get("haproxy_redirect")
    pairs = [(_val(e, k), _val(h, k), what) for k, what in
             (("iperf1", "1 stream"), ("iperf8", "8 streams"), ("cps", "connections/s"),
              ("cpu_cps", "CPU per connection"))]
    if all(a is not None and b for a, b, _ in pairs):
        print("  (beside HAProxy behind the same REDIRECT, egressd/HAProxy: %s)"
              % ", ".join("%.2f %s" % (a / b, what) for a, b, what in pairs))


def _val(side, key):
    if not side or key not in side:
        return None
    v = side[key]
    if key == "cps":
        return v["rate"]
    if key.startswith("mem"):
        return v["rss_per_conn"]
    if key.startswith("cpu_"):
        return v["per_unit"]
    return v


def _note(side, key):
    if not side:
        return ""
    if "error" in side and key not in side:
        return "  (%s)" % side["error"].splitlines()[0][:60]
    runs = side.get(key + "_runs")
    extra = "  (runs %s)" % "/".join("%.*f" % (0 if key == "cps" else 2, v) for v in runs) \
        if runs and len(runs) > 1 else ""
    if key == "cps" and key in side:
        c = side["cps"]
        extra += " via " + ", ".join("%s %d" % kv for kv in sorted(c["peers"].items()))
        if c["fail"]:
            extra += "; %d failed %s" % (c["fail"], c["errors"])
    return extra


def _err(side):
    return "  (%s)" % side["error"].splitlines()[0][:60] if side and "error" in side else ""


def goals(r):
    s = r["sides"]
    e, h, p = s.get("egressd"), s.get("haproxy"), s.get("plain")

    def cmp(name, a, b, f, fmt, fn=lambda x, y: x >= y):
        va, vb = _val(a, f), _val(b, f)
        if va is None or vb is None:
            return (name, None, "not measured")
        return (name, fn(va, vb), fmt % (va, vb))
    dns = r.get("dns", {})
    qe, qd = (dns.get("egressd") or {}).get("qps"), (dns.get("dnsmasq") or {}).get("qps")
    out = [cmp("throughput, 1 stream >= HAProxy's", e, h, "iperf1", "%.2f vs %.2f Gbit/s"),
           cmp("throughput, 8 streams >= HAProxy's", e, h, "iperf8", "%.2f vs %.2f Gbit/s"),
           cmp("new connections per second >= HAProxy's", e, h, "cps", "%.0f vs %.0f"),
           cmp("throughput, 1 stream >= 90% of plain forwarding", e, p, "iperf1",
               "%.2f vs %.2f Gbit/s", lambda x, y: x >= 0.9 * y),
           cmp("CPU per GB, 1 stream <= HAProxy's", e, h, "cpu_iperf1", "%.3f vs %.3f s/GB",
               lambda x, y: x <= y)]
    vp, vh = _val(p, "cps"), _val(h, "cps")
    for side, label in [x for x in SIDES if x[0].startswith("egressd")]:
        ve = _val(s.get(side), "cps")
        if None in (ve, vp, vh) or not vp:
            out.append(("conn/s / plain >= HAProxy's, %s" % label, None,
                        "not measured"))
            continue
        out.append(("conn/s / plain >= HAProxy's, %s" % label,
                    ve / vp >= vh / vp, "%.2f vs %.2f" % (ve / vp, vh / vp)))
    for n in r["hold_n"]:
        for side, what in (("egressd", "gateway"), ("egressd_socks", "SOCKS5")):
            out.append(cmp("idle memory per conn <= HAProxy's, %s, N = %d" % (what, n),
                           s.get(side), h, "mem%d" % n, "%.0f vs %.0f B", lambda x, y: x <= y))
            ve = _val(s.get(side), "mem%d" % n)
            out.append(("idle memory per conn <= 3 KiB, %s, N = %d" % (what, n),
                        None if ve is None else ve <= MEMORY_GOAL,
                        "not measured" if ve is None else "%.0f B" % ve))
    if qe is None or qd is None:
        out.append(("DNS queries per second >= dnsmasq's", None, "not measured"))
    else:
        out.append(("DNS queries per second >= dnsmasq's", qe >= qd, "%.0f vs %.0f" % (qe, qd)))
    return out


def invalid(r):
    """Why the run measured nothing trustworthy, as a list of reasons ([] when it is valid)."""
    out = []
    for side, label in SIDES:
        res = r["sides"].get(side, {})
        if "error" in res:
            out.append("%s failed: %s" % (label, res["error"][-1500:]))
            continue
        if res.get("closed_after") is False:
            out.append("%s: the client reached the server with the side gone, so what was "
                       "measured need not have gone through it" % label)
        if "cps" in res and not res["cps"]["ok"]:
            out.append("%s: no connection of the rate runs succeeded (%s)"
                       % (label, res["cps"]["errors"]))
        for n in r["hold_n"]:
            m = res.get("mem%d" % n)
            if m and not m["open"]:
                out.append("%s: no idle connection opened (%s)" % (label, m["errors"]))
    if "dns_error" in r:
        out.append("DNS: %s" % r["dns_error"])
    for side, d in r.get("dns", {}).items():
        if "error" not in d and d.get("qps") is None:
            out.append("DNS %s: dnsperf printed no rate" % side)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", required=True)
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 -t")
    ap.add_argument("--cps-seconds", type=int, default=3, help="each connection-rate run")
    ap.add_argument("--runs", type=int, default=2,
                    help="rounds of iperf3 and connection-rate runs, each side once per round; "
                    "the best round counts (a stall caused elsewhere should not count against "
                    "a side)")
    ap.add_argument("--dns-seconds", type=int, default=10, help="dnsperf -l (0: no DNS)")
    ap.add_argument("--hold", default="1000,10000",
                    help="idle connections (memory), each N in turn: N,N,...")
    ap.add_argument("--sides", default=",".join(x[0] for x in SIDES),
                    help="the sides to run, of %s" % ", ".join(x[0] for x in SIDES))
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead")
    args = ap.parse_args()
    # a proxy holds two sockets per connection: N must fit the file limit the proxies inherit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = min(hard, 1 << 20)
    asked = [int(x) for x in args.hold.split(",")]
    n_holds = sorted({min(n, (limit - 1000) // 2) for n in asked})
    chosen = args.sides.split(",")
    unknown = set(chosen) - {x[0] for x in SIDES}
    if unknown:
        ap.error("--sides: unknown %s (expected some of %s)"
                 % (", ".join(sorted(unknown)), ", ".join(x[0] for x in SIDES)))
    sides = [x for x in SIDES if x[0] in chosen]
    r = {"sides": {}, "hold_n": n_holds, "hold_asked": asked, "nofile": limit,
         "dns_seconds": args.dns_seconds, "cpus": os.cpu_count(),
         "load": os.getloadavg()[0]}
    t0 = time.monotonic()
    with Lab() as lab:
        build(lab)
        if not closed_path(lab["client"]):
            raise LabError("the client reaches the server without any side in place")
        # rounds, every side once per round (in turn, the order reversed each round), so
        # that load from elsewhere on the machine falls on all sides alike
        for rnd in range(args.runs):
            order = sides if rnd % 2 == 0 else sides[::-1]
            for side, _ in order:
                res = r["sides"].setdefault(side, {})
                if "error" in res:
                    continue
                try:
                    run_side(lab, side, args, n_holds, res, memory=rnd == 0)
                except (LabError, AssertionError, subprocess.SubprocessError, ValueError,
                        KeyError, OSError) as e:
                    res["error"] = str(e)
        if args.dns_seconds > 0:
            run_dns(lab, args, r)
    r["seconds"] = round(time.monotonic() - t0, 1)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        if n_holds[-1] < max(asked):
            print("note: idle connections N = %d, not %d: the file limit here is %d and "
                  "a proxy holds 2 sockets per connection" % (n_holds[-1], max(asked), limit))
        report(r)
        print("(%.0f s)" % r["seconds"])
    why = invalid(r)
    for line in why:
        print("invalid run: %s" % line, file=sys.stderr if args.json else sys.stdout)
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main())
