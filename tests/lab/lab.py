"""Network-namespace lab for Egress: unit and integration tests, `make demo`, `make bench`.

Builds small topologies of network namespaces joined by veth pairs, runs real peers inside
them (namesrv, nginx, dnsmasq, iperf3, the daemon under test), impairs links (loss, rate,
delay where the kernel can), cuts and restores them, and always removes what it made:

    client:eth0 ---- lan0:gw:wan0 ---- eth0:server        (Lab.from_spec(), see parse_spec())
    10.0.0.2/24      10.0.0.1  192.0.2.1    192.0.2.2/24

    from lab import Lab, wait_for
    with Lab.from_spec(SPEC) as lab:
        srv = lab["server"].http_server(8080)
        out = lab["client"].curl("http://192.0.2.2:8080/").stdout     # "server 10.0.0.2\n"
        lab.cut(lab["gw"], "wan0")                    # gw:wan0 loses carrier
        wait_for(lambda: not lab["client"].ping("192.0.2.2").ok, what="ping to fail")
        lab.restore(lab["gw"], "wan0")

Names: a lab has a run id (6 hex digits); node ROLE lives in namespace `eg-<run>-<role>`.
Processes a node starts are logged to files in the run directory /tmp/egress-lab/<run>/.

Cleanup: Lab.close() (also the context manager exit, atexit, and a SIGTERM/SIGHUP handler)
stops tracked processes (TERM, then KILL), kills whatever else runs inside the run's
namespaces (`ip netns pids`), deletes them by name, removes the run directory and releases
the run lock. Each live lab holds flock(/run/egress-lab/<run>.lock); a new Lab() sweeps the
namespaces of runs whose lock is free or missing (their process died, e.g. SIGKILL), never
those of a live lab in this or another process.

What it must not do: change anything in the host's own network namespace. Every `ip`
command it runs carries `-n NS` or is `ip netns ...`; other tools run under `ip netns exec`.
It deletes only namespaces whose names start with `eg-`, and only its own run's on close.

Impairments: loss is an nftables rule in table `netdev lab_impair` inside the node on every
kernel (IP only: ARP and ND pass). Without the netem qdisc (Lab.has_netem False) rate is a tbf
qdisc and asking for delay raises LabFeatureMissing (a skip only in a test marked
`optional_feature("netem")`, see conftest.py; a failure anywhere else).

Run as a program: `python3 lab.py sweep` removes stale namespaces of dead runs;
`python3 lab.py ping DST ...` is the ICMP echo helper Node.ping() runs inside a node.
"""

import argparse
import atexit
import errno
import fcntl
import ipaddress
import json
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Lab", "Node", "Link", "LabProc", "PingResult",
    "LabError", "LabFeatureMissing", "LabToolMissing", "LabCommandError", "TOOL_PACKAGES",
    "wait_for", "wait_port", "parse_spec", "sweep", "list_namespaces", "is_root",
]

NS_PREFIX = "eg-"
LOCK_DIR = Path("/run/egress-lab")
TMP_BASE = Path(os.environ.get("EG_LAB_TMP", "/tmp/egress-lab"))
HERE = Path(__file__).resolve().parent
NAMESRV = HERE / "namesrv.py"

_RUN_RE = re.compile(r"^[a-z0-9]{1,16}$")
_NS_RE = re.compile(r"^eg-([a-z0-9]{1,16})-(.+)$")
_ROLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_KEPT_MARK = "KEPT"
# Every program the lab, the lab tests and the benchmarks run by name, and the Debian package
# that has it (each listed in scripts/debian-packages, or essential). A name missing here is
# refused, so that a new tool cannot be used without its package being installed by `make deps`.
TOOL_PACKAGES = {
    "ip": "iproute2", "tc": "iproute2", "ss": "iproute2",
    "nft": "nftables", "conntrack": "conntrack", "sysctl": "procps",
    "iptables-legacy": "iptables", "ip6tables-legacy": "iptables",
    "iptables-legacy-save": "iptables", "ip6tables-legacy-save": "iptables",
    "curl": "curl", "openssl": "openssl", "dnsmasq": "dnsmasq-base", "nginx": "nginx-light",
    "iperf3": "iperf3", "haproxy": "haproxy", "socat": "socat", "dnsperf": "dnsperf",
    "dnsdist": "dnsdist", "unbound": "unbound",
    "unshare": "util-linux", "sh": "dash", "sleep": "coreutils", "true": "coreutils",
    "false": "coreutils", "chromium": "chromium", "chromedriver": "chromium-driver",
    "named": "bind9", "dig": "bind9-dnsutils",
}
_TOOL_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin",
                              "/bin"])


class LabError(Exception):
    """The lab could not do what was asked (bad topology, a peer that did not start, ...)."""


class LabFeatureMissing(LabError):
    """The kernel or the machine lacks a feature the caller asked for (e.g. netem delay).

    LabFeatureMissing(feature, why): `feature` is a short name ("netem", "root"). The pytest
    glue turns it into a skip only for a test marked optional_feature(feature); anywhere else
    it fails the test like any other error."""

    def __init__(self, feature, why):
        super().__init__(why)
        self.feature = feature


class LabToolMissing(LabError):
    """A program the lab runs is not installed (or not in TOOL_PACKAGES): always a failure,
    since the packages are ours to install (scripts/debian-packages, `make deps`)."""


class LabCommandError(subprocess.CalledProcessError):
    """A command run by the lab (in a node or `ip -n`) exited non-zero; str() shows stderr."""

    def __init__(self, returncode, cmd, output=None, stderr=None, where="host"):
        super().__init__(returncode, cmd, output, stderr)
        self.where = where

    def __str__(self):
        cmd = self.cmd if isinstance(self.cmd, str) else shlex.join(map(str, self.cmd))
        err = (self.stderr or "").strip() or (self.output or "").strip()
        return "[%s] %s: exit %s%s" % (self.where, cmd, self.returncode,
                                       (": " + err[-2000:]) if err else "")


def is_root():
    """True when the process may create namespaces (euid 0)."""
    return os.geteuid() == 0


def _tool(name):
    """Absolute path of a tool named in TOOL_PACKAGES, searching PATH plus the sbin
    directories; LabToolMissing if it is not there or not named."""
    if "/" in name:
        return name
    package = TOOL_PACKAGES.get(name)
    if package is None:
        raise LabToolMissing("tool %r is not in lab.TOOL_PACKAGES: add it there with its "
                             "Debian package, and the package to scripts/debian-packages" % name)
    path = shutil.which(name, path=_TOOL_PATH)
    if path is None:
        raise LabToolMissing("tool %r not found: install Debian package %s (make deps)"
                             % (name, package))
    return path


def _host(args, check=True, timeout=30, input=None):
    """Run a lab-management command on the host side and return the CompletedProcess.

    Only `ip netns ...`, `ip -n NS ...` and `unshare -n ...` are allowed: anything else could
    change the host's own namespace, so it is refused here."""
    args = [str(a) for a in args]
    name = os.path.basename(args[0])
    ok = (name == "ip" and len(args) > 2 and (args[1] == "netns" or
                                              (args[1] == "-n" and args[2].startswith(NS_PREFIX))))
    ok = ok or (name == "unshare" and len(args) > 1 and args[1] == "-n")
    if not ok:
        raise LabError("refusing a host-side command outside a lab namespace: %s" % args)
    args[0] = _tool(args[0])
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise LabCommandError(r.returncode, args, r.stdout, r.stderr)
    return r


# ---------------------------------------------------------------------------------------------
# waiting


def wait_for(predicate, timeout=5.0, interval=0.05, what=None, ignore=()):
    """Call predicate() until it returns something truthy, and return that value.

    On timeout raise AssertionError naming `what` and the last value seen (or the last
    exception of a type listed in `ignore`, which are swallowed while waiting). Exceptions of
    other types propagate at once. Use it instead of sleeps: wait on observable state."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except ignore as e:  # noqa: B030 - tuple of exception types from the caller
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s; last value: %r"
                                 % (timeout, what or getattr(predicate, "__name__", "predicate"),
                                    last))
        time.sleep(interval)


def wait_port(node, port, proto="tcp", timeout=5.0, proc=None):
    """Wait until something listens on `port` (tcp or udp) inside `node`; return True.

    If `proc` (a LabProc) exits meanwhile, raise LabError with the tail of its log."""
    def ready():
        if proc is not None and proc.poll() is not None:
            raise LabError("%s exited with %s before listening on %s/%d:\n%s"
                           % (proc.name, proc.returncode, proto, port, proc.tail()))
        return node.listening(port, proto)
    return wait_for(ready, timeout=timeout, what="%s port %d to listen in %s" % (proto, port,
                                                                               node.name))


# ---------------------------------------------------------------------------------------------
# namespaces, locks and the sweep of dead runs


def list_namespaces():
    """Names of all named network namespaces (`ip netns list`)."""
    r = _host(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _ns_pids(ns):
    r = _host(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def _kill_ns_processes(ns, grace=1.5):
    """TERM, then KILL, every process inside namespace `ns` (which must be an eg- one)."""
    if not ns.startswith(NS_PREFIX):
        raise LabError("refusing to touch namespace %r: not a lab namespace" % ns)
    me = os.getpid()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [p for p in _ns_pids(ns) if p != me]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and [p for p in _ns_pids(ns) if p != me]:
            time.sleep(0.02)


def _delete_namespace(ns):
    """Kill the processes inside lab namespace `ns`, then delete it by name."""
    if not ns.startswith(NS_PREFIX):
        raise LabError("refusing to delete namespace %r: not a lab namespace" % ns)
    _kill_ns_processes(ns)
    r = _host(["ip", "netns", "del", ns], check=False)
    if r.returncode != 0 and ns in list_namespaces():
        raise LabCommandError(r.returncode, ["ip", "netns", "del", ns], r.stdout, r.stderr)


def _lock_path(run):
    return LOCK_DIR / ("%s.lock" % run)


def _try_lock(path):
    """Return (True, fd) if the lock at `path` is free (fd holds it now; None if the file is
    missing) or (False, None) if another open file description holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True, None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False, None
        raise
    return True, fd


def _acquire_run_lock(run):
    """Create and lock /run/egress-lab/<run>.lock; return the fd, or None if `run` is taken.

    The file is locked before it becomes visible under its final name (link of a locked
    temporary), so a sweeper never sees the lock of a live run unlocked."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    tmp = LOCK_DIR / (".%s.%d.%d.tmp" % (run, os.getpid(), threading.get_ident()))
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, ("%d\n" % os.getpid()).encode())
        try:
            os.link(tmp, _lock_path(run))
        except FileExistsError:
            os.close(fd)
            return None
    finally:
        os.unlink(tmp)
    return fd


def _remove_run_dir(run, force=False):
    d = TMP_BASE / run
    if d.is_dir() and (force or not (d / _KEPT_MARK).exists()):
        shutil.rmtree(d, ignore_errors=True)


def sweep(verbose=False):
    """Delete the namespaces, lock files and run directories of dead lab runs.

    A run is dead when its lock file is missing or nobody holds its flock. Namespaces of
    live runs (this process's or another's) are left alone, and so are run directories kept
    on purpose (EG_LAB_KEEP_LOGS). Returns the names of the namespaces deleted."""
    removed = []
    runs = {}
    for ns in list_namespaces():
        m = _NS_RE.match(ns)
        if m:
            runs.setdefault(m.group(1), []).append(ns)
    mine = {lab.run for lab in list(_LIVE)}
    candidates = set(runs)
    if LOCK_DIR.is_dir():
        candidates |= {p.name[:-5] for p in LOCK_DIR.glob("*.lock")}
    if TMP_BASE.is_dir():
        candidates |= {p.name for p in TMP_BASE.iterdir() if p.is_dir()}
    for run in sorted(candidates):
        if run in mine or not _RUN_RE.match(run):
            continue
        free, fd = _try_lock(_lock_path(run))
        if not free:
            continue
        try:
            for ns in runs.get(run, []):
                try:
                    _delete_namespace(ns)
                    removed.append(ns)
                except (LabError, subprocess.SubprocessError, OSError) as e:
                    sys.stderr.write("lab: sweep: %s: %s\n" % (ns, e))
            _remove_run_dir(run)
            try:
                os.unlink(_lock_path(run))
            except FileNotFoundError:
                pass
        finally:
            if fd is not None:
                os.close(fd)
    # temporaries of processes killed between creating and publishing their lock
    if LOCK_DIR.is_dir():
        for p in LOCK_DIR.glob(".*.tmp"):
            free, fd = _try_lock(p)
            try:
                if free and fd is not None and time.time() - p.stat().st_mtime > 60:
                    p.unlink()
            except FileNotFoundError:
                pass
            finally:
                if fd is not None:
                    os.close(fd)
    if verbose and removed:
        sys.stderr.write("lab: swept stale namespaces: %s\n" % " ".join(removed))
    return removed


_sweep = sweep  # Lab.__init__ has a parameter named sweep


# ---------------------------------------------------------------------------------------------
# process-wide cleanup: atexit and signals

_LIVE = set()           # labs not yet closed, in this process
_CREATED_RUNS = []      # every run id this process created (for leak checks)
_HOOKS_LOCK = threading.Lock()
_HOOKS_INSTALLED = False
_PREV_HANDLERS = {}


def _close_all(reason):
    for lab in sorted(_LIVE, key=lambda lb: lb.run):
        try:
            lab.close()
        except Exception as e:  # cleanup must go on with the other labs
            sys.stderr.write("lab %s: close at %s failed: %s\n" % (lab.run, reason, e))


def _on_signal(signum, frame):
    _close_all(signal.Signals(signum).name)
    prev = _PREV_HANDLERS.get(signum, signal.SIG_DFL)
    if callable(prev):
        prev(signum, frame)
        return
    if prev == signal.SIG_IGN:
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_hooks():
    """atexit + SIGTERM/SIGHUP handlers that close every live lab (SIGINT already raises
    KeyboardInterrupt, whose unwinding runs finalizers and atexit)."""
    global _HOOKS_INSTALLED
    with _HOOKS_LOCK:
        if _HOOKS_INSTALLED:
            return
        _HOOKS_INSTALLED = True
        atexit.register(_close_all, "exit")
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            prev = signal.getsignal(sig)
            if prev == signal.SIG_IGN:
                continue
            _PREV_HANDLERS[sig] = prev
            signal.signal(sig, _on_signal)


_NETEM = None


def kernel_has_netem():
    """Probe once (in a throw-away namespace) whether the netem qdisc exists; cached."""
    global _NETEM
    if _NETEM is None:
        # a missing tc or unshare is LabToolMissing, not a kernel without netem
        r = _host(["unshare", "-n", _tool("tc"), "qdisc", "add", "dev", "lo", "root", "netem",
                   "delay", "1ms"], check=False, timeout=10)
        _NETEM = r.returncode == 0
    return _NETEM


# ---------------------------------------------------------------------------------------------
# processes


class LabProc(subprocess.Popen):
    """A process started by Node.popen(): a subprocess.Popen that also knows its node, its
    name and its log file, and that Lab.close() stops (TERM to its process group, then KILL).
    """

    node = None
    name = ""
    log_path = None

    def stop(self, grace=2.0):
        """Stop the process and its process group: TERM, wait `grace` s, KILL. Returns the
        exit status. Safe to call twice."""
        if self.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                try:
                    self.wait(grace)
                except subprocess.TimeoutExpired:
                    pass
        return self.returncode

    def _signal_group(self, sig):
        try:
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def log(self):
        """The whole log so far (stdout and stderr together), or "" if not logged."""
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines=20):
        """The last `lines` lines of the log."""
        return "\n".join(self.log().splitlines()[-lines:])


@dataclass
class PingResult:
    """What Node.ping() saw: packets sent and received, and round-trip times in ms."""
    sent: int
    received: int
    rtts_ms: list = field(default_factory=list)

    @property
    def ok(self):
        """True when at least one reply came back."""
        return self.received > 0

    @property
    def loss_pct(self):
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 0.0

    @property
    def avg_ms(self):
        return sum(self.rtts_ms) / len(self.rtts_ms) if self.rtts_ms else None

    def __bool__(self):
        return self.ok


@dataclass
class Link:
    """A veth pair made by Lab.link(): end a (node, interface) and end b."""
    a: "Node"
    a_if: str
    b: "Node"
    b_if: str


# ---------------------------------------------------------------------------------------------
# nodes


class Node:
    """One network namespace of a lab. `name` is its role, `ns` the namespace name.

    Created by Lab.node(); everything it runs goes through `ip netns exec <ns>` or `ip -n`."""

    def __init__(self, lab, name, ns):
        self.lab = lab
        self.name = name
        self.ns = ns
        self.ifnames = []

    def __repr__(self):
        return "<Node %s (%s)>" % (self.name, self.ns)

    # -- running commands

    def _argv(self, args):
        if isinstance(args, str):
            raise TypeError("pass argv as a list, not a string: %r" % args)
        args = [str(a) for a in args]
        if args and "/" not in args[0]:
            args[0] = _tool(args[0])
        return [_tool("ip"), "netns", "exec", self.ns] + args

    def run(self, args, check=True, timeout=20, input=None, env=None, **kw):
        """Run argv `args` inside the node and wait; return a text CompletedProcess with
        stdout and stderr captured. check=True raises LabCommandError on a non-zero exit."""
        self.lab._check_open()
        r = subprocess.run(self._argv(args), input=input, capture_output=True, text=True,
                           timeout=timeout, env=env, **kw)
        if check and r.returncode != 0:
            raise LabCommandError(r.returncode, list(args), r.stdout, r.stderr, where=self.name)
        return r

    def json(self, args, **kw):
        """Run `args` (e.g. ["ip", "-j", "route"]) like run() and return its parsed JSON."""
        out = self.run(args, **kw).stdout
        return json.loads(out) if out.strip() else None

    def ip(self, *args, check=True):
        """Run `ip -n <ns> ARGS...` (cheaper than run(["ip", ...])); returns CompletedProcess."""
        self.lab._check_open()
        return _host(["ip", "-n", self.ns] + list(args), check=check)

    def ip_batch(self, lines):
        """Run several ip commands (one per line, without the leading `ip`) in one process."""
        lines = [ln for ln in lines if ln]
        if lines:
            self.lab._check_open()
            _host(["ip", "-n", self.ns, "-batch", "-"], input="\n".join(lines) + "\n")

    def popen(self, args, name=None, **kw):
        """Start argv `args` inside the node without waiting; return a LabProc (a Popen).

        stdout and stderr go to <run dir>/<node>.<name>.log unless given in `kw`; stdin is
        /dev/null; the process leads its own session so stop() reaches its children. The lab
        tracks it and stops it at close(). Other keywords go to subprocess.Popen."""
        self.lab._check_open()
        name = name or os.path.basename(str(args[0]))
        base = "%s.%s" % (self.name, re.sub(r"[^A-Za-z0-9_.-]", "_", name))
        log_path = self.lab.dir / (base + ".log")
        n = 1
        while log_path.exists():
            n += 1
            log_path = self.lab.dir / ("%s.%d.log" % (base, n))
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        logf = None
        if "stdout" not in kw:
            logf = open(log_path, "ab", buffering=0)
            kw["stdout"] = logf
            kw.setdefault("stderr", subprocess.STDOUT)
        try:
            proc = LabProc(self._argv(args), **kw)
        finally:
            if logf is not None:
                logf.close()
        proc.node = self
        proc.name = name
        proc.log_path = log_path if logf is not None else None
        self.lab._procs.append(proc)
        return proc

    def spawn_daemon(self, args, name=None, port=None, proto="tcp", log_match=None,
                     timeout=10.0, **kw):
        """popen() a daemon that stays in the foreground, then wait until it is ready: its
        `port` listens (`proto` tcp/udp) and/or its log matches the regex `log_match`.
        Raises LabError with the log tail if it exits first. Returns the LabProc."""
        proc = self.popen(args, name=name, **kw)
        rx = re.compile(log_match) if log_match else None

        def ready():
            if proc.poll() is not None:
                raise LabError("%s in %s exited with %s while starting:\n%s"
                               % (proc.name, self.name, proc.returncode, proc.tail()))
            if rx is not None and not rx.search(proc.log()):
                return False
            return port is None or self.listening(port, proto)
        try:
            wait_for(ready, timeout=timeout, interval=0.03,
                     what="%s in %s to be ready" % (proc.name, self.name))
        except AssertionError as e:
            raise LabError("%s\nlog %s:\n%s" % (e, proc.log_path, proc.tail())) from None
        return proc

    # -- configuration

    def sysctl(self, **settings):
        """Set sysctls inside the node: node.sysctl(**{"net.ipv4.ip_forward": 1})."""
        args = ["%s=%s" % (k, v) for k, v in settings.items()]
        if args:
            self.run(["sysctl", "-q", "-w"] + args)

    def forward(self, enable=True):
        """Turn IPv4 and IPv6 forwarding on (or off) inside this node only."""
        v = 1 if enable else 0
        self.sysctl(**{"net.ipv4.ip_forward": v, "net.ipv6.conf.all.forwarding": v,
                       "net.ipv6.conf.default.forwarding": v})

    def route(self, *args):
        """`ip route replace ARGS` in the node, e.g. route("default", "via", "10.0.0.1") or
        route("198.51.100.0/24", "via", "10.0.0.1", "dev", "eth0"). Family follows the
        addresses; idempotent."""
        if len(args) == 1 and isinstance(args[0], str):
            args = args[0].split()
        self.ip("route", "replace", *[str(a) for a in args])

    # -- inspection

    def iface(self, ifname):
        """`ip -j link show dev IFNAME` of this node, as a dict."""
        return json.loads(self.ip("-j", "link", "show", "dev", ifname).stdout)[0]

    def carrier(self, ifname):
        """True if the interface is up with carrier (LOWER_UP)."""
        flags = self.iface(ifname).get("flags", [])
        return "UP" in flags and "LOWER_UP" in flags

    def mac(self, ifname):
        return self.iface(ifname)["address"]

    def addrs(self, ifname, family=None):
        """Global addresses on IFNAME as "addr/len" strings; family 4, 6 or None for both."""
        fam = {4: ["-4"], 6: ["-6"], None: []}[family]
        data = json.loads(self.ip("-j", *fam, "addr", "show", "dev", ifname).stdout)
        return ["%s/%d" % (a["local"], a["prefixlen"]) for d in data
                for a in d.get("addr_info", []) if a.get("scope") == "global"]

    def addr(self, ifname, family=4):
        """The first global address of `family` on IFNAME, without prefix length."""
        a = self.addrs(ifname, family)
        if not a:
            raise LabError("%s:%s has no global IPv%d address" % (self.name, ifname, family))
        return a[0].split("/")[0]

    def listening(self, port, proto="tcp"):
        """True if a socket listens on `port` (tcp) or is bound to it (udp) in the node."""
        flag = {"tcp": "-ltnH", "udp": "-lunH"}[proto]
        out = self.run(["ss", flag, "sport", "=", ":%d" % port], check=False).stdout
        return bool(out.strip())

    def pids(self):
        """Processes running inside the node's namespace (`ip netns pids`, from outside)."""
        return _ns_pids(self.ns)

    # -- traffic helpers

    def ping(self, dst, count=1, interval=0.2, timeout=1.0, size=56, source=None):
        """Send `count` ICMP echo requests to `dst` (v4 or v6) from inside the node, every
        `interval` s, then wait `timeout` s for late replies. Returns a PingResult (truthy
        if any reply came back). No iputils needed: the helper is this file."""
        args = [sys.executable, str(Path(__file__).resolve()), "ping", "-c", count,
                "-i", interval, "-W", timeout, "-s", size, str(dst)]
        if source:
            args[3:3] = ["-S", source]
        budget = count * interval + timeout + 10
        r = self.run(args, timeout=budget)
        d = json.loads(r.stdout)
        return PingResult(d["sent"], d["received"], d["rtts_ms"])

    def curl(self, url, *extra, timeout=3, check=True):
        """curl -sS URL inside the node with a total timeout; returns CompletedProcess."""
        return self.run(["curl", "-sS", "--max-time", timeout, *extra, url], check=check,
                        timeout=timeout + 10)

    # -- link impairments

    def netem(self, ifname, delay_ms=None, jitter_ms=None, loss_pct=None, rate_mbit=None):
        """Impair what leaves IFNAME of this node: delay (+jitter), random loss, rate.

        Loss is always an nftables rule in table `netdev lab_impair` of this node (numgen
        random, egress hook of IFNAME; IP only, sparing ARP and IPv6 neighbour discovery,
        which netem's loss would drop too), so a test sees the same loss on every kernel.
        Delay, jitter and rate are `tc qdisc replace ... root netem ...` with the kernel's
        netem qdisc. Without it (see Lab.has_netem) rate is a tbf root qdisc, and delay or
        jitter raise LabFeatureMissing before anything changes. All arguments None (or 0)
        clear the impairments of IFNAME."""
        delay = bool(delay_ms) or bool(jitter_ms)
        if loss_pct is not None and not 0 <= loss_pct <= 100:
            raise ValueError("loss_pct must be within 0..100, not %r" % loss_pct)
        if self.lab.has_netem:
            self.iface(ifname)  # fail early on a wrong name
            self._impair_set_loss(ifname, loss_pct or 0)
            self._tc_clear(ifname)
            args = []
            if delay:
                args += ["delay", "%gms" % (delay_ms or 0)]
                if jitter_ms:
                    args += ["%gms" % jitter_ms]
            if rate_mbit:
                args += ["rate", "%gmbit" % rate_mbit]
            if args:
                self.run(["tc", "qdisc", "replace", "dev", ifname, "root", "netem"] + args)
            return
        if delay:
            raise LabFeatureMissing("netem", "delay/jitter needs the netem qdisc, which this "
                                    "kernel lacks (CONFIG_NET_SCH_NETEM)")
        self.iface(ifname)  # fail early on a wrong name
        self._impair_set_loss(ifname, loss_pct or 0)
        self._tc_clear(ifname)
        if rate_mbit:
            rate_bytes = rate_mbit * 1e6 / 8
            burst = max(int(rate_bytes / 250), 16 * 1024)
            self.run(["tc", "qdisc", "replace", "dev", ifname, "root", "tbf", "rate",
                      "%gmbit" % rate_mbit, "burst", burst, "latency", "100ms"])

    def _tc_clear(self, ifname):
        self.run(["tc", "qdisc", "del", "dev", ifname, "root"], check=False)

    def _impair_set_loss(self, ifname, loss_pct):
        if not 0 <= loss_pct <= 100:
            raise ValueError("loss_pct must be within 0..100, not %r" % loss_pct)
        chain = "loss_" + re.sub(r"[^A-Za-z0-9_]", "_", ifname)
        cmds = ["add table netdev lab_impair",
                'add chain netdev lab_impair %s { type filter hook egress device "%s" '
                'priority -100; }' % (chain, ifname)]
        if loss_pct:
            # ARP and neighbour discovery pass: a lost ARP reply stalls a whole queue of
            # packets for seconds, which makes the measured loss anything but loss_pct.
            cmds += ["flush chain netdev lab_impair %s" % chain,
                     "add rule netdev lab_impair %s meta protocol != { ip, ip6 } accept" % chain,
                     "add rule netdev lab_impair %s icmpv6 type { nd-neighbor-solicit, "
                     "nd-neighbor-advert, nd-router-solicit, nd-router-advert, nd-redirect } "
                     "accept" % chain,
                     "add rule netdev lab_impair %s numgen random mod 10000 < %d counter drop"
                     % (chain, round(loss_pct * 100))]
        else:
            cmds += ["delete chain netdev lab_impair %s" % chain]
        self.run(["nft", "-f", "-"], input="\n".join(cmds) + "\n")

    # -- peers

    def http_server(self, port, name=None, bind="0.0.0.0"):
        """Start namesrv.py: GET / answers "<name> <client-ip>\\n", GET /bytes/N sends N bytes.
        `name` defaults to the node's role; bind "::" serves IPv4 and IPv6. Waits until it
        listens; returns its LabProc."""
        name = name or self.name
        return self.spawn_daemon([sys.executable, str(NAMESRV), "--port", port, "--name", name,
                                  "--bind", bind], name="namesrv-%d" % port, port=port)

    def nginx(self, port, name=None, tls=None):
        """Start nginx on `port` (IPv4 and IPv6): GET / returns "<name> <client-ip>\\n", other
        paths are served from the returned proc's `root` directory. tls=(cert, key) paths
        serve HTTPS instead of HTTP. Returns its LabProc."""
        name = name or self.name
        d = self.lab.dir / ("%s.nginx-%d" % (self.name, port))
        (d / "www").mkdir(parents=True, exist_ok=True)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / sub).mkdir(exist_ok=True)
        conf = d / "nginx.conf"
        ssl, tls_conf = "", ""
        if tls:
            ssl = " ssl"
            tls_conf = "ssl_certificate %s; ssl_certificate_key %s;" % (tls[0], tls[1])
        conf.write_text(_NGINX_CONF.format(dir=d, port=port, name=name.replace('"', ""),
                                           ssl=ssl, tls=tls_conf))
        proc = self.spawn_daemon(["nginx", "-p", str(d), "-c", str(conf), "-e", "stderr"],
                                 name="nginx-%d" % port, port=port)
        proc.root = d / "www"
        return proc

    def dnsmasq(self, *args, port=53, name=None, timeout=10.0):
        """Start dnsmasq in the foreground with `args` (e.g. "--address=/x.test/192.0.2.9",
        "--dhcp-range=..."). Hermetic defaults: no /etc/resolv.conf, no /etc/hosts, no config
        file, pid and lease files in the run dir, log to the proc's log. `port` 0 disables DNS.
        Waits for the DNS port (or the start line when port is 0); returns its LabProc."""
        n = sum(1 for p in self.lab._procs if p.node is self and p.name.startswith("dnsmasq"))
        base = self.lab.dir / ("%s.dnsmasq%d" % (self.name, n))
        argv = ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--user=root", "--group=root",
                "--pid-file=%s.pid" % base, "--dhcp-leasefile=%s.leases" % base,
                "--port=%d" % port] + [str(a) for a in args]
        if port:
            return self.spawn_daemon(argv, name=name or "dnsmasq", port=port, proto="udp",
                                     timeout=timeout)
        return self.spawn_daemon(argv, name=name or "dnsmasq", log_match=r"started, version",
                                 timeout=timeout)

    def iperf3_server(self, port=5201):
        """Start `iperf3 -s -p PORT` and wait until it listens; returns its LabProc."""
        return self.spawn_daemon(["iperf3", "-s", "-p", port], name="iperf3-%d" % port,
                                 port=port)


_NGINX_CONF = """\
# written by the Egress lab; the lab stops this nginx at close
user root;
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {port}{ssl};
        listen [::]:{port}{ssl};
        {tls}
        location = / {{ return 200 "{name} $remote_addr\\n"; }}
        location / {{ root {dir}/www; }}
    }}
}}
"""


# ---------------------------------------------------------------------------------------------
# topology description


def parse_spec(text):
    """Parse a topology description into a list of operations (pure, no side effects).

    One statement per line; `#` starts a comment. Three kinds of lines:

      A[:IF] [ADDR/LEN ...] [mac=MAC] -- B[:IF] [ADDR/LEN ...] [mac=MAC]   [mtu=N]
            a veth pair between nodes A and B; each side lists its interface name (default
            eth0, eth1, ... in order of use on that node), IPv4 and/or IPv6 addresses and an
            optional MAC; mtu= after either side applies to both ends.
      NODE [forward]
            declare a node (nodes named in links are declared implicitly); `forward` turns
            on IPv4 and IPv6 forwarding inside it.
      NODE default via ADDR [dev IF]
      NODE route PREFIX via ADDR [dev IF]   |   NODE route PREFIX dev IF
            `ip route replace ...` in NODE, applied after all links exist.

    Example:
        client:eth0 10.0.0.2/24 fd00::2/64 -- gw:lan0 10.0.0.1/24 fd00::1/64
        gw:wan0 192.0.2.1/24 -- server:eth0 192.0.2.2/24
        gw forward
        client default via 10.0.0.1
        client default via fd00::1
        server route 10.0.0.0/24 via 192.0.2.1

    Returns tuples ("node", name, {"forward": bool}), ("link", a, b, {"mtu": int|None}) with
    a/b dicts {"node", "ifname", "addrs", "mac"}, and ("route", name, [args]).
    Raises ValueError("spec line N: ...") on anything it does not understand."""
    ops = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = "spec line %d" % lineno
        tokens = line.split()
        if "--" in tokens:
            ops.append(_parse_link(tokens, where))
            continue
        name = tokens[0]
        if not _ROLE_RE.match(name):
            raise ValueError("%s: bad node name %r" % (where, name))
        rest = tokens[1:]
        if rest and rest[0] == "default":
            if len(rest) < 3 or rest[1] != "via":
                raise ValueError("%s: expected 'NODE default via ADDR [dev IF]', got %r"
                                 % (where, line))
            ops.append(("route", name, rest))
        elif rest and rest[0] == "route":
            if len(rest) < 4 or rest[2] not in ("via", "dev"):
                raise ValueError("%s: expected 'NODE route PREFIX via ADDR|dev IF', got %r"
                                 % (where, line))
            _check_prefix(rest[1], where)
            ops.append(("route", name, rest[1:]))
        else:
            flags = {"forward": False}
            for t in rest:
                if t not in flags:
                    raise ValueError("%s: unknown node flag %r (known: %s)"
                                     % (where, t, ", ".join(flags)))
                flags[t] = True
            ops.append(("node", name, flags))
    return ops


def _check_prefix(s, where):
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        raise ValueError("%s: bad prefix %r" % (where, s)) from None


def _parse_link(tokens, where):
    i = tokens.index("--")
    if tokens.count("--") != 1 or i == 0 or i == len(tokens) - 1:
        raise ValueError("%s: a link is 'A[:IF] [ADDR..] -- B[:IF] [ADDR..]'" % where)
    opts = {"mtu": None}
    ends = [_parse_end(tokens[:i], where, opts), _parse_end(tokens[i + 1:], where, opts)]
    if ends[0]["node"] == ends[1]["node"]:
        raise ValueError("%s: a link needs two different nodes" % where)
    return ("link", ends[0], ends[1], opts)


def _parse_end(tokens, where, opts):
    node, _, ifname = tokens[0].partition(":")
    if not _ROLE_RE.match(node):
        raise ValueError("%s: bad node name %r" % (where, node))
    if ifname and not _IFNAME_RE.match(ifname):
        raise ValueError("%s: bad interface name %r (1-15 of [A-Za-z0-9_.-])" % (where, ifname))
    end = {"node": node, "ifname": ifname or None, "addrs": [], "mac": None}
    for t in tokens[1:]:
        if t.startswith("mac="):
            if not re.match(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$", t[4:]):
                raise ValueError("%s: bad MAC %r" % (where, t[4:]))
            end["mac"] = t[4:].lower()
        elif t.startswith("mtu="):
            if not t[4:].isdigit() or not 68 <= int(t[4:]) <= 65535:
                raise ValueError("%s: bad mtu %r" % (where, t[4:]))
            opts["mtu"] = int(t[4:])
        else:
            try:
                ipaddress.ip_interface(t)
            except ValueError:
                raise ValueError("%s: %r is neither ADDR/LEN nor mac=/mtu=" % (where, t)) \
                    from None
            if "/" not in t:
                raise ValueError("%s: address %r needs a prefix length" % (where, t))
            end["addrs"].append(t)
    return end


def _as_list(x):
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


# ---------------------------------------------------------------------------------------------
# the lab


class Lab:
    """A set of namespaces `eg-<run>-<role>` and everything started inside them.

    Lab(run=None, netem=None, sweep=True): `run` forces a run id ([a-z0-9]{1,16}; default 6
    random hex digits); `netem` False pretends the kernel has no netem (env EG_LAB_NETEM=0
    does the same), True/None probes; `sweep` removes stale namespaces of dead runs first.
    Attributes: run, prefix ("eg-<run>-"), dir (run directory), nodes {role: Node}, links.
    Use as a context manager or call close(); lab["gw"] is lab.nodes["gw"]."""

    def __init__(self, run=None, netem=None, sweep=True):
        if not is_root():
            raise LabFeatureMissing("root", "the lab needs root (CAP_SYS_ADMIN) to create "
                                    "namespaces")
        self._pid = os.getpid()
        self._closed = False
        self._procs = []
        self._cuts = {}
        self._peers = {}
        self.nodes = {}
        self.links = []
        self._netem_opt = netem
        if run is not None and not _RUN_RE.match(run):
            raise ValueError("run id %r must match [a-z0-9]{1,16}" % run)
        _install_hooks()
        if sweep:
            _sweep(verbose=True)
        for _ in range(20):
            rid = run or secrets.token_hex(3)
            fd = _acquire_run_lock(rid)
            if fd is not None:
                break
            if run is not None:
                raise LabError("run id %r is in use (lock %s exists)" % (run, _lock_path(run)))
        else:
            raise LabError("could not find a free run id")
        self._lock_fd = fd
        self.run = rid
        self.prefix = "%s%s-" % (NS_PREFIX, rid)
        _LIVE.add(self)
        _CREATED_RUNS.append(rid)
        try:
            if any(ns.startswith(self.prefix) for ns in list_namespaces()):
                raise LabError("namespaces with prefix %s already exist" % self.prefix)
            self.dir = TMP_BASE / rid
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_spec(cls, spec, **kw):
        """Create a Lab and build the topology described by `spec` (see parse_spec)."""
        lab = cls(**kw)
        try:
            lab.apply(spec)
        except BaseException:
            lab.close()
            raise
        return lab

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getitem__(self, role):
        return self.nodes[role]

    def __repr__(self):
        return "<Lab %s %s%s>" % (self.run, sorted(self.nodes), " closed" if self._closed else "")

    def _check_open(self):
        if self._closed:
            raise LabError("lab %s is closed" % self.run)

    @property
    def has_netem(self):
        """True when link delay/loss/rate use the kernel's netem qdisc; False means loss and
        rate are emulated (nftables, tbf) and delay is unavailable."""
        if self._netem_opt is False or os.environ.get("EG_LAB_NETEM") == "0":
            return False
        return kernel_has_netem()

    # -- building

    def node(self, name, forward=False):
        """Return node `name`, creating namespace eg-<run>-<name> (lo up, IPv6 DAD off,
        IPv6 addresses kept while a link is down) if it does not exist yet. forward=True
        turns on IPv4/IPv6 forwarding inside it."""
        self._check_open()
        if not _ROLE_RE.match(name):
            raise ValueError("node name %r must match %s" % (name, _ROLE_RE.pattern))
        node = self.nodes.get(name)
        if node is None:
            ns = self.prefix + name
            _host(["ip", "netns", "add", ns])
            node = Node(self, name, ns)
            self.nodes[name] = node
            node.ip("link", "set", "lo", "up")
            node.sysctl(**{"net.ipv6.conf.all.accept_dad": 0,
                           "net.ipv6.conf.default.accept_dad": 0,
                           "net.ipv6.conf.all.keep_addr_on_down": 1,
                           "net.ipv6.conf.default.keep_addr_on_down": 1})
        if forward:
            node.forward(True)
        return node

    def link(self, a, b, addrs=None, addrs6=None, ifnames=None, mac=None, mtu=None,
             wait=True):
        """Join nodes a and b (Node or role name) with a veth pair and bring both ends up.

        addrs/addrs6: a pair (for a, for b) of "addr/len" strings or lists (either family
        works in either; addrs6 is only a convenience). ifnames: pair of names (default
        eth0, eth1, ... per node). mac: pair of MACs or None. mtu: both ends. wait: return
        only once both ends report carrier and operstate UP (see wait_links). Returns Link."""
        self._check_open()
        a = a if isinstance(a, Node) else self.node(a)
        b = b if isinstance(b, Node) else self.node(b)
        if a is b:
            raise ValueError("a link needs two different nodes")
        ifnames = list(ifnames or (None, None))
        for i, node in enumerate((a, b)):
            if ifnames[i] is None:
                k = 0
                while "eth%d" % k in node.ifnames:
                    k += 1
                ifnames[i] = "eth%d" % k
            if not _IFNAME_RE.match(ifnames[i]):
                raise ValueError("bad interface name %r" % ifnames[i])
            if ifnames[i] in node.ifnames:
                raise LabError("%s already has an interface %s" % (node.name, ifnames[i]))
        mac = mac or (None, None)
        ends = []
        for i in range(2):
            e = ["name", ifnames[i]]
            if mac[i]:
                e += ["address", mac[i]]
            if mtu:
                e += ["mtu", str(mtu)]
            ends.append(e)
        # created inside a's namespace with the peer put straight into b's: the host's own
        # namespace never sees either end.
        a.ip("link", "add", *ends[0], "type", "veth", "peer", *ends[1], "netns", b.ns)
        a.ifnames.append(ifnames[0])
        b.ifnames.append(ifnames[1])
        pairs = (addrs or (None, None), addrs6 or (None, None))
        for i, node in enumerate((a, b)):
            # up before the addresses: an IPv6 address added while the link is down misses
            # its first neighbour solicitations (the first packet then waits ~1 s).
            lines = ["link set dev %s up" % ifnames[i]]
            for addr in _as_list(pairs[0][i]) + _as_list(pairs[1][i]):
                ipaddress.ip_interface(addr)
                lines.append("addr add %s dev %s%s" % (addr, ifnames[i],
                                                      " nodad" if ":" in addr else ""))
            node.ip_batch(lines)
        self._peers[(a.name, ifnames[0])] = (b, ifnames[1])
        self._peers[(b.name, ifnames[1])] = (a, ifnames[0])
        link = Link(a, ifnames[0], b, ifnames[1])
        self.links.append(link)
        if wait:
            self.wait_links([link])
        return link

    def wait_links(self, links, timeout=10):
        """Wait until both ends of each link are up with carrier and the kernel says so in
        operstate too: the carrier of a new veth comes asynchronously (the kernel's link
        watch may defer it by up to a second), and a test that snapshots the links, or
        sends its first packet, before then sees a half-made lab."""
        def ready(node, ifname):
            i = node.iface(ifname)
            return "LOWER_UP" in i.get("flags", []) and i.get("operstate") == "UP"
        for link in links:
            for node, ifname in ((link.a, link.a_if), (link.b, link.b_if)):
                wait_for(lambda: ready(node, ifname), timeout=timeout,
                         what="%s:%s to come up" % (node.name, ifname))

    def apply(self, spec):
        """Build what `spec` describes (see parse_spec) into this lab; returns self."""
        ops = parse_spec(spec)
        for op in ops:
            if op[0] == "node":
                self.node(op[1], forward=op[2]["forward"])
        made = []
        for op in ops:
            if op[0] == "link":
                _, ea, eb, opts = op
                made.append(self.link(ea["node"], eb["node"], addrs=(ea["addrs"], eb["addrs"]),
                                      ifnames=(ea["ifname"], eb["ifname"]),
                                      mac=(ea["mac"], eb["mac"]), mtu=opts["mtu"], wait=False))
        self.wait_links(made)
        for op in ops:
            if op[0] == "route":
                self.node(op[1]).route(*op[2])
        return self

    def peer(self, node, ifname):
        """(peer Node, peer ifname) at the other end of node:ifname, or None if unknown."""
        return self._peers.get((node.name, ifname))

    # -- failures

    def cut(self, node, ifname, mode="down"):
        """Break the link behind node:ifname until restore().

        mode "down": carrier loss - the peer end is set down, so node:ifname stays
        administratively up but loses LOWER_UP (the peer's routes over it are saved and put
        back by restore()). mode "blackhole": the link stays up with carrier, but every
        packet in either direction is dropped on the peer side (nftables netdev ingress and
        egress hooks, table `netdev lab_blackhole` in the peer), like a dead ISP behind a
        live link. Without a known peer both modes act on node:ifname itself. Returns once
        node:ifname has lost its carrier (mode "down")."""
        self._check_open()
        node = node if isinstance(node, Node) else self.nodes[node]
        key = (node.name, ifname)
        if key in self._cuts:
            raise LabError("%s:%s is already cut (%s)" % (node.name, ifname, self._cuts[key][0]))
        node.iface(ifname)
        target, tif = self.peer(node, ifname) or (node, ifname)
        if mode == "down":
            saved = _routes_via(target, tif)
            target.ip("link", "set", "dev", tif, "down")
            self._cuts[key] = ("down", target, tif, saved)
            wait_for(lambda: not node.carrier(ifname), timeout=5,
                     what="%s:%s to lose carrier" % (node.name, ifname))
        elif mode == "blackhole":
            chain = re.sub(r"[^A-Za-z0-9_]", "_", tif)
            target.run(["nft", "-f", "-"], input=(
                "add table netdev lab_blackhole\n"
                'add chain netdev lab_blackhole in_%s { type filter hook ingress device "%s" '
                "priority -500; policy drop; }\n"
                'add chain netdev lab_blackhole out_%s { type filter hook egress device "%s" '
                "priority -500; policy drop; }\n" % (chain, tif, chain, tif)))
            self._cuts[key] = ("blackhole", target, tif, chain)
        else:
            raise ValueError("cut mode must be 'down' or 'blackhole', not %r" % mode)

    def restore(self, node, ifname):
        """Undo cut(node, ifname) and return once the carrier is back (mode "down"); a link
        that is not cut is left as it is."""
        self._check_open()
        node = node if isinstance(node, Node) else self.nodes[node]
        state = self._cuts.pop((node.name, ifname), None)
        if state is None:
            return
        mode, target, tif, extra = state
        if mode == "down":
            target.ip("link", "set", "dev", tif, "up")
            for fam, args in extra:
                target.ip(fam, "route", "replace", *args, check=False)
            # the carrier comes back through the kernel's linkwatch, up to ~1 s later
            wait_for(lambda: node.carrier(ifname) and target.carrier(tif), timeout=5,
                     what="%s:%s to get its carrier back" % (node.name, ifname))
        else:
            target.run(["nft", "-f", "-"], input=(
                "delete chain netdev lab_blackhole in_%s\n"
                "delete chain netdev lab_blackhole out_%s\n" % (extra, extra)))

    # -- teardown

    def namespaces(self):
        """The namespaces of this run that exist now."""
        return [ns for ns in list_namespaces() if ns.startswith(self.prefix)]

    def logs(self):
        """Paths of the logs of processes started in this lab."""
        return [p.log_path for p in self._procs if p.log_path is not None]

    def close(self, keep_logs=False):
        """Stop every process, delete this run's namespaces, remove the run directory (kept
        with a KEPT mark if keep_logs) and release the run lock. Idempotent; in a forked
        child it does nothing (the parent owns the lab)."""
        if self._closed or os.getpid() != self._pid:
            return
        errors = []
        for proc in reversed(self._procs):
            try:
                proc.stop()
            except Exception as e:
                errors.append("stop %s: %s" % (proc.name, e))
        try:
            for ns in self.namespaces():
                try:
                    _delete_namespace(ns)
                except Exception as e:
                    errors.append("delete %s: %s" % (ns, e))
        except Exception as e:
            errors.append("list namespaces: %s" % e)
        d = getattr(self, "dir", None)
        if d is not None and d.is_dir():
            if keep_logs:
                (d / _KEPT_MARK).write_text("kept on request; remove by hand\n")
            else:
                shutil.rmtree(d, ignore_errors=True)
        if not errors:
            self._closed = True
            _LIVE.discard(self)
            if self._lock_fd is not None:
                try:
                    os.unlink(_lock_path(self.run))
                except FileNotFoundError:
                    pass
                os.close(self._lock_fd)
                self._lock_fd = None
        if errors:
            raise LabError("lab %s: cleanup incomplete: %s" % (self.run, "; ".join(errors)))


# ---------------------------------------------------------------------------------------------
# kernel state snapshots: what a daemon must leave as it found it, or must not touch

# sysctls that are counters, not settings: never compared
_VOLATILE_SYSCTLS = ("net/netfilter/nf_conntrack_count",)

_SYSCTL_DUMP = r"""
import os
for d, dirs, files in os.walk("/proc/sys/net"):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        try:
            with open(p) as fh:
                print("%s = %s" % (p[10:], fh.read().strip().replace("\n", " | ")))
        except OSError:
            pass  # write-only (flush), or refused
"""


def sysctls(node):
    """Every readable setting under /proc/sys/net of node's namespace, as {key: value} with
    keys like "net/ipv4/conf/isp1/rp_filter"; counters (the conntrack count) left out."""
    lines = node.run([sys.executable, "-c", _SYSCTL_DUMP]).stdout.splitlines()
    snap = dict(line.split(" = ", 1) for line in lines if " = " in line)
    for k in _VOLATILE_SYSCTLS:
        snap.pop(k, None)
    return snap


def _rule_priority(line):
    head = line.split(":", 1)[0]
    return int(head) if head.isdigit() else None


def kernel_state(node, prios=(), tables=(), nft=(), nexthops=False):
    """Part of a node's kernel state as text, to compare byte for byte: the rules (`ip -d
    rule`, both families) whose priority is in one of the ranges `prios` [(lo, hi), both
    included], the routes (`ip -d route show table N`, both families) of `tables` and of
    every table those rules look up, the nftables tables `nft` [("inet", "egress")] without
    counters or sets' dynamic elements (`nft -s list table`; "absent" when there is none), and
    with `nexthops` the nexthop objects.  Returns {what: text}."""
    state = {}
    tabs = set(str(t) for t in tables)
    for fam in ("-4", "-6") if prios else ():
        lines = [ln for ln in node.ip("-d", fam, "rule").stdout.splitlines()
                 if any(lo <= (_rule_priority(ln) or -1) <= hi for lo, hi in prios)]
        state["rules" + fam] = "\n".join(lines)
        for ln in lines:
            m = re.search(r"\blookup (\S+)", ln)
            if m and m.group(1) not in ("main", "local", "default"):
                tabs.add(m.group(1))
    for t in sorted(tabs):
        for fam in ("-4", "-6"):
            r = node.ip("-d", fam, "route", "show", "table", t, check=False)
            state["table %s%s" % (t, fam)] = r.stdout + r.stderr
    for family, name in nft:
        r = node.run(["nft", "-s", "list", "table", family, name], check=False)
        state["nft %s %s" % (family, name)] = r.stdout if r.returncode == 0 else "absent"
    if nexthops:
        state["nexthops"] = node.ip("-d", "nexthop", "show", check=False).stdout
    return state


def host_state(node):
    """All of a node's routing and filtering state and its settings, as {what: text}, and
    "sysctl": sysctls(node): `ip -d rule` and `ip -d route show table all` of both families,
    the nexthop objects and `nft -s list ruleset`.  What a daemon's stop must leave as its
    start found it; state_diff() says what changed."""
    state = {}
    for fam in ("-4", "-6"):
        state["rules" + fam] = node.ip("-d", fam, "rule").stdout
        state["routes" + fam] = node.ip("-d", fam, "route", "show", "table", "all").stdout
    state["nexthops"] = node.ip("-d", "nexthop", "show", check=False).stdout
    state["nft"] = node.run(["nft", "-s", "list", "ruleset"]).stdout
    state["sysctl"] = sysctls(node)
    return state


def state_diff(before, after):
    """What differs between two snapshots of kernel_state() or host_state(), readably:
    {what: ["-line", "+line", ...]} for text, {what: {key: (before, after)}} for settings;
    empty when they are the same."""
    out = {}
    for k in sorted(set(before) | set(after)):
        a, b = before.get(k), after.get(k)
        if a == b:
            continue
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = a or {}, b or {}
            out[k] = {s: (a.get(s), b.get(s)) for s in sorted(set(a) | set(b))
                      if a.get(s) != b.get(s)}
        else:
            la, lb = (a or "").splitlines(), (b or "").splitlines()
            out[k] = (["-" + x for x in la if x not in lb] + ["+" + x for x in lb if x not in la]
                      or ["(same lines, another order)"])
    return out


def _routes_via(node, ifname):
    """Non-kernel routes of `node` over `ifname` as (family flag, ip-route args) to replay."""
    saved = []
    for fam in ("-4", "-6"):
        data = json.loads(node.ip("-j", fam, "route", "show", "dev", ifname, "table", "all")
                          .stdout or "[]")
        for r in data:
            if r.get("protocol") in ("kernel", "ra") or "nexthops" in r:
                continue
            if r.get("table") == "local" or r.get("type", "unicast") != "unicast":
                continue
            args = [r["dst"]]
            if "gateway" in r:
                args += ["via", r["gateway"]]
            args += ["dev", ifname]
            for key, kw in (("protocol", "proto"), ("scope", "scope"), ("prefsrc", "src"),
                            ("metric", "metric"), ("table", "table"), ("pref", "pref")):
                if key in r:
                    args += [kw, str(r[key])]
            if "onlink" in r.get("flags", []):
                args.append("onlink")
            saved.append((fam, args))
    return saved


# ---------------------------------------------------------------------------------------------
# ICMP echo helper, run inside a node by Node.ping(): `python3 lab.py ping ...`


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _ping_main(argv):
    ap = argparse.ArgumentParser(prog="lab.py ping")
    ap.add_argument("-c", type=int, default=1, dest="count")
    ap.add_argument("-i", type=float, default=0.2, dest="interval")
    ap.add_argument("-W", type=float, default=1.0, dest="timeout")
    ap.add_argument("-s", type=int, default=56, dest="size")
    ap.add_argument("-S", default=None, dest="source")
    ap.add_argument("dst")
    a = ap.parse_args(argv)
    dst = ipaddress.ip_address(a.dst)
    if dst.version == 4:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        req_type, rep_type = 8, 0
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        req_type, rep_type = 128, 129
    if a.source:
        sock.bind((a.source, 0))
    ident = os.getpid() & 0xFFFF
    sent_at = {}
    rtts = []
    seq = 0
    now = time.monotonic()
    next_send = now
    deadline = None
    pad = b"\xa5" * max(0, a.size)
    while True:
        now = time.monotonic()
        if seq < a.count and now >= next_send:
            hdr = struct.pack("!BBHHH", req_type, 0, 0, ident, seq)
            pkt = hdr + pad
            if dst.version == 4:
                pkt = struct.pack("!BBHHH", req_type, 0, _csum(pkt), ident, seq) + pad
            sent_at[seq] = now
            try:
                sock.sendto(pkt, (str(dst), 0))
            except OSError:
                pass  # no route / unreachable counts as a loss, like ping does
            seq += 1
            next_send += a.interval
            if seq == a.count:
                deadline = now + a.timeout
        if deadline is not None and (now >= deadline or len(rtts) == a.count):
            break
        wake = next_send if seq < a.count else deadline
        r, _, _ = select.select([sock], [], [], max(0.0, wake - time.monotonic()))
        if not r:
            continue
        data, addr = sock.recvfrom(65535)
        t = time.monotonic()
        if dst.version == 4:
            data = data[(data[0] & 0x0F) * 4:]
        if len(data) < 8 or ipaddress.ip_address(addr[0].split("%")[0]) != dst:
            continue
        typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
        if typ == rep_type and rid == ident and rseq in sent_at:
            rtts.append((t - sent_at.pop(rseq)) * 1000.0)
    print(json.dumps({"sent": seq, "received": len(rtts), "rtts_ms": rtts}))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ping"]:
        return _ping_main(argv[1:])
    if argv[:1] == ["sweep"]:
        removed = sweep()
        print("\n".join(removed) if removed else "nothing to sweep")
        return 0
    sys.stderr.write("usage: lab.py sweep | lab.py ping [-c N] [-i S] [-W S] [-s N] [-S SRC] "
                     "DST\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
