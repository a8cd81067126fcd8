#!/usr/bin/python3
"""make demo: egressd balancing a LAN over three ISPs, in a lab of network namespaces.

    client1 --+                        +-- isp1 (3, 40 Mbit/s) --+
              +-- gw (egressd policy) -+-- isp2 (2, 20 Mbit/s) --+-- internet (web, DNS, iperf3)
    client2 --+                        +-- isp3 (1, 10 Mbit/s) --+

The gateway runs the real egressd with the policy module: new connections from the LAN are
spread over the ISPs by weight 3:2:1, each ISP health-checked through itself.  Both clients
open new connections all the time and download from the web server.  The live view shows
per uplink its state, its share of the new connections of the last 10 s and its
throughput.  Part-way the demo blackholes an ISP behind a live link (only the health checks
can tell), shows the failover - its connections move at once, the others never notice -
and the recovery, and does it again with another ISP.

With --proxy the gateway runs go-dispatch-proxy's gateway mode instead (egressd's proxy
module, PROXY_CONF): the clients' TCP is taken by the transparent proxy, which spreads the
connections over the ISPs' addresses 3:2:1 and races a second ISP when one does not answer
within 300 ms; the same view, the same failures.

egressd's dashboard is served on the host's loopback (http://127.0.0.1:8090/ unless
--web-port says otherwise; the URL and the admin login are printed): egressd's API listens
inside the gw namespace, and webrelay.py forwards the host's port to it without touching the
host's routes, links or firewall.  tests/lab/test_dashboard.py drives the same lab (Demo)
with a browser.

Runs until Ctrl-C (or --duration seconds) and then removes every namespace it made.  Changes
nothing in the machine's own network namespace.
"""

import argparse
import collections
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from egressd import Egressd  # noqa: E402
from lab import Lab  # noqa: E402
import policylab  # noqa: E402

UPLINKS = ["isp1", "isp2", "isp3"]
RATE = {"isp1": 40, "isp2": 20, "isp3": 10}
TRANSITION = re.compile(r"^(\S+) \S+\s+uplink (\S+): (\S+) -> (\S+) \((.*)\)$")
SCRIPT = [(10, "blackhole", "isp2"), (22, "restore", "isp2"), (30, "blackhole", "isp1"),
          (40, "restore", "isp1")]
CYCLE = 50
DOWNLOAD = ("import urllib.request\n"
            "while True:\n"
            "    try:\n"
            "        urllib.request.urlopen('http://%s/bytes/400000', timeout=3).read()\n"
            "    except OSError:\n"
            "        pass\n" % policylab.SERVER)


# --proxy: the same ISPs as the proxy's uplinks (by source address), the LAN in gateway mode
PROXY_UPLINK = """
[uplink %(isp)s]
source = %(addr)s
gateway = %(gw)s
weight = %(weight)d
check = icmp
check_target = %(target)s
interval = 300ms
interval_failing = 200ms
timeout = 200ms
"""
PROXY_CONF = """
[proxy]
port = 0

[gateway]
address = 10.10.1.1
subnet = 10.10.1.0/24, 10.10.2.0/24
auto_config = true
backup_file = %(backup)s
"""


# egressd's API inside gw with the dashboard of this tree (the lab gives each egressd its
# own socket and state directory in the run dir)
API_CONF = """
[api]
listen = 127.0.0.1:%(port)d
web_root = %(web)s
"""
API_PORT = 8090
WEB_ROOT = HERE.parents[1] / "web"
PASSWORD = re.compile(r"api: first start: the password for (\S+) is (\S+)")


def proxy_conf(backup):
    hops = {"isp1": ("192.0.2.2", "198.51.100.2"), "isp2": ("192.0.2.10", "198.51.100.18"),
            "isp3": ("192.0.2.18", "198.51.100.34")}
    return PROXY_CONF % {"backup": backup} + "".join(
        PROXY_UPLINK % {"isp": u, "addr": policylab.ADDR[u], "gw": hops[u][0],
                        "target": hops[u][1], "weight": w}
        for u, w in zip(UPLINKS, (3, 2, 1)))


class View:
    def __init__(self, tty, what):
        self.tty = tty
        self.what = what
        self.state = {u: ["init", "-", 0, ""] for u in UPLINKS}
        self.events = collections.deque(maxlen=8)
        self.seen = 0
        self.flows = collections.deque()  # (time, uplink or "fail")
        self.bytes = {}
        self.rate = {u: 0.0 for u in UPLINKS}
        self.footer = ""

    def feed_log(self, log):
        lines = log.splitlines()
        for line in lines[self.seen:]:
            m = TRANSITION.match(line)
            if m:
                stamp, name, _, to, why = m.groups()
                if name in self.state:
                    s = self.state[name]
                    s[0], s[1], s[3] = to, stamp.split("T")[1], why
                    s[2] += 1
            if (" uplink " in line or "policy:" in line or " ready: " in line or
                    "gateway:" in line):
                self.events.append(line)
                if not self.tty:
                    print(line, flush=True)
        self.seen = len(lines)

    def feed_flow(self, line):
        f = line.split()
        if len(f) >= 2:
            up = policylab.UPLINK_OF.get(f[3], "?") if f[1] == "ok" and len(f) > 3 else "fail"
            self.flows.append((time.monotonic(), up))

    def feed_counters(self, gw):
        now = time.monotonic()
        for link in gw.json(["ip", "-j", "-s", "link", "show"]):
            name = link.get("ifname")
            if name not in UPLINKS:
                continue
            st = link["stats64"]
            total = st["rx"]["bytes"] + st["tx"]["bytes"]
            if name in self.bytes:
                t0, b0 = self.bytes[name]
                if now > t0:
                    self.rate[name] = (total - b0) * 8 / (now - t0) / 1e6
            self.bytes[name] = (now, total)

    def shares(self):
        cut = time.monotonic() - 10
        while self.flows and self.flows[0][0] < cut:
            self.flows.popleft()
        c = collections.Counter(u for _, u in self.flows)
        total = sum(c[u] for u in UPLINKS) or 1
        return {u: 100.0 * c[u] / total for u in UPLINKS}, c["fail"]

    def draw(self, elapsed, note):
        shares, fails = self.shares()
        if not self.tty:
            return
        out = ["\033[H\033[2J",
               "Egress demo - %s  (Ctrl-C to stop)" % self.what,
               "elapsed %4ds   %s" % (elapsed, note), "",
               "%-6s %-8s %-7s %-16s %-13s %-6s %s" % ("uplink", "state", "weight",
                                                       "new conns (10s)", "throughput",
                                                       "trans.", "reason"),
               "-" * 90]
        for u, w in zip(UPLINKS, (3, 2, 1)):
            st, since, n, why = self.state[u]
            color = {"up": "\033[32m", "down": "\033[31m"}.get(st, "\033[33m")
            out.append("%-6s %s%-8s\033[0m %-7d %5.1f%%%10s %7.1f Mbit/s %-6d %s" % (
                u, color, st, w, shares[u], "", self.rate[u], n, why))
        out += ["", "failed new connections in the last 10 s: %d" % fails, "",
                self.footer, "", "egressd says:"] + ["  " + e for e in self.events]
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()


class Demo:
    """The demo's lab at work: topology, peers, egressd (policy module, or with proxy=True
    gateway mode) with its API, the clients' traffic, and the dashboard's relay on the
    host's loopback.

        demo = Demo(lab, egressd_bin, web_port=0)   # 0: any free port
        demo.url, demo.user, demo.password          # the dashboard and its admin login
        demo.close()                                # the relay; the lab removes the rest
    """

    def __init__(self, lab, egressd, proxy=False, web_port=API_PORT):
        self.lab = lab
        self.relay = None
        self.gw = gw = policylab.build(lab)
        inet = lab["inet"]
        inet.http_server(80, name="internet")
        inet.iperf3_server(5201)
        try:
            inet.dnsmasq("--address=/example.test/" + policylab.SERVER, port=53)
        except Exception as e:  # the demo runs without its DNS server
            print("demo: no DNS server: %s" % e)
        for isp in UPLINKS:
            lab[isp].netem("eth0", rate_mbit=RATE[isp])
        api = API_CONF % {"port": API_PORT, "web": WEB_ROOT}
        if proxy:
            conf = proxy_conf(lab.dir / "ruleset-backup.nft")
        else:
            conf = policylab.CONF
        self.d = Egressd.start(gw, egressd, conf + api)
        self.user, self.password = self._login()
        self.flows = []
        for client in ("client1", "client2"):
            p = lab[client].popen([sys.executable, str(HERE / "newflows.py"),
                                   policylab.SERVER, "7000", "0.05", "100000", "1"],
                                  name="newflows", stdout=subprocess.PIPE, text=True,
                                  bufsize=1)
            self.flows.append(p)
            for i in range(2):
                lab[client].popen([sys.executable, "-c", DOWNLOAD], name="download%d" % i)
        self.url = self._serve(web_port)

    def _login(self):
        """The admin login egressd made on its first start (it prints the password once)."""
        m = PASSWORD.search(self.d.log())
        return (m.group(1), m.group(2)) if m else ("admin", None)

    def _serve(self, port):
        """Start webrelay.py from the host's 127.0.0.1:port to egressd's API in gw; the
        URL.  A port in use gives way to one the kernel picks."""
        for p in (port, 0) if port else (0,):
            relay = subprocess.Popen([sys.executable, str(HERE / "webrelay.py"),
                                      "--listen", "127.0.0.1:%d" % p, "--netns", self.gw.ns,
                                      "--to", "127.0.0.1:%d" % API_PORT],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
            line = relay.stdout.readline()
            if line.startswith("webrelay: listening on "):
                self.relay = relay
                return "http://%s/" % line.split()[-1]
            relay.wait()
            err = relay.stderr.read().strip().splitlines()
            print("demo: cannot serve the dashboard on 127.0.0.1:%d: %s"
                  % (p, err[-1] if err else "webrelay exited"), flush=True)
        raise RuntimeError("demo: no port for the dashboard")

    def login_line(self):
        who = ("user %s, password %s" % (self.user, self.password) if self.password else
               "log in with the admin password egressd printed first")
        return "dashboard at %s (%s)" % (self.url, who)

    def close(self):
        if self.relay is not None and self.relay.poll() is None:
            self.relay.terminate()
            self.relay.wait(5)
        self.relay = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--egressd", required=True, help="the egressd binary")
    ap.add_argument("--duration", type=float, default=0,
                    help="stop after this many seconds (default: run until Ctrl-C)")
    ap.add_argument("--plain", action="store_true",
                    help="print events line by line instead of a live screen")
    ap.add_argument("--proxy", action="store_true",
                    help="the proxy module in gateway mode instead of the policy module")
    ap.add_argument("--run", help="the lab's run id (namespaces eg-RUN-*; default: random)")
    ap.add_argument("--web-port", type=int, default=API_PORT,
                    help="serve the dashboard on the host's 127.0.0.1:PORT (default %(default)s;"
                    " 0: any free port)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("make demo needs root: it creates network namespaces")

    tty = sys.stdout.isatty() and not args.plain
    with Lab(run=args.run) as lab:
        print("demo: lab %s, namespaces %s*" % (lab.run, lab.prefix), flush=True)
        demo = Demo(lab, args.egressd, proxy=args.proxy, web_port=args.web_port)
        try:
            return run(lab, demo, args, tty)
        finally:
            demo.close()


def run(lab, demo, args, tty):
    """The live view and the script of failures, until Ctrl-C or --duration."""
    d, gw, flows = demo.d, demo.gw, demo.flows
    if not lab.has_netem:
        print("demo: this kernel has no netem: ISPs differ in rate only, not in latency")
    print("demo: " + demo.login_line(), flush=True)
    if args.proxy:
        view = View(tty, "egressd's transparent proxy spreading a LAN over three ISPs")
    else:
        view = View(tty, "egressd balancing a LAN over three ISPs")
    view.footer = demo.login_line()
    start = time.monotonic()
    done = set()
    note = "all ISPs healthy"
    try:
        while True:
            elapsed = time.monotonic() - start
            if args.duration and elapsed >= args.duration:
                break
            cycle, t = divmod(elapsed, CYCLE)
            for at, action, isp in SCRIPT:
                key = (int(cycle), at, action, isp)
                if t >= at and key not in done:
                    done.add(key)
                    if action == "blackhole":
                        lab.cut(lab[isp], "eth1", mode="blackhole")
                        note = "%s blackholed behind a live link" % isp
                    else:
                        lab.restore(lab[isp], "eth1")
                        note = "%s repaired" % isp
                    if not tty:
                        print("demo: " + note, flush=True)
            if not d.alive():
                print(d.proc.tail(30))
                sys.exit("egressd exited with %s" % d.proc.returncode)
            ready, _, _ = select.select([p.stdout for p in flows], [], [], 0.25)
            for f in ready:
                line = f.readline()
                if line:
                    view.feed_flow(line)
            view.feed_log(d.log())
            view.feed_counters(gw)
            view.draw(int(elapsed), note)
    except KeyboardInterrupt:
        pass
    shares, fails = view.shares()
    print("demo: new connections of the last 10 s: " +
          ", ".join("%s %.0f%%" % (u, shares[u]) for u in UPLINKS) +
          "; failed: %d" % fails, flush=True)
    rc = d.stop()
    view.feed_log(d.log())
    print("egressd stopped (exit %s); removing the lab" % rc, flush=True)
    d.assert_clean()
    if rc != 0:
        sys.exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
