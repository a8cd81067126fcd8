"""Run the real egressd inside a lab node and watch what it says.

    d = Egressd.start(lab["gw"], egressd_bin, CONF)     # waits for the ready line
    d.wait_log(r"uplink isp1: up -> down")             # regex, only in lines logged from now
    d.write_conf(NEW); d.reload()                       # SIGHUP
    assert d.stop() == 0; d.assert_clean()              # SIGTERM, no sanitizer reports

Every egressd started here (or with api_args() by a test that builds its own command line)
gets its own API socket and state directory in the lab's run directory, named after its
node and name: parallel tests never share them, and egressd never touches the host's
/run/egress or /var/lib/egress.  apiclient.ApiClient.unix(d) talks to d's socket.

What it must not do: run egressd outside a lab node.
"""

import os
import re
import signal
import subprocess

from lab import LabError, wait_for

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:")


def api_paths(node, name="egressd"):
    """(socket, state_dir) of the egressd called name in node, in the lab's run directory."""
    base = node.lab.dir / ("%s.%s" % (node.name, name))
    return base.with_name(base.name + ".sock"), base.with_name(base.name + ".state")


def api_args(node, name="egressd"):
    """The flags that give an egressd its own API socket and state directory (api_paths)."""
    sock, state = api_paths(node, name)
    return ["--set", "api.socket=%s" % sock, "--set", "api.state_dir=%s" % state]


class Egressd:
    def __init__(self, node, binary, conf_path, proc):
        self.node = node
        self.binary = binary
        self.conf_path = conf_path
        self.proc = proc
        self.mark = 0  # log offset: wait_log() looks only past it
        # what api_args(node, proc.name) gave it
        self.api_socket, self.state_dir = api_paths(node, proc.name)

    @classmethod
    def start(cls, node, binary, conf_text, args=(), name="egressd", ready=True, env=None,
              timeout=10.0):
        """Write conf_text to the lab's run dir, start `egressd -d -c FILE ARGS` in node and,
        if ready, wait for its ready line."""
        conf_path = node.lab.dir / ("%s.%s.conf" % (node.name, name))
        conf_path.write_text(conf_text)
        argv = [str(binary), "-d", "-c", str(conf_path)] + api_args(node, name) + \
            [str(a) for a in args]  # last: a test's own --set api.socket=... wins
        kw = {}
        if env is not None:
            kw["env"] = dict(os.environ, **env)
        if ready:
            proc = node.spawn_daemon(argv, name=name, log_match=r"egressd \S+ ready: ",
                                     timeout=timeout, **kw)
        else:
            proc = node.popen(argv, name=name, **kw)
        return cls(node, binary, conf_path, proc)

    @classmethod
    def command(cls, node, binary, args, name="egressd", ready=True, timeout=10.0, env=None):
        """Start a subcommand without a file, e.g. args = ["dispatch", "-lport", "1080",
        "192.0.2.1@3"]: `egressd dispatch -d ...`; waits for the ready line if ready."""
        argv = [str(binary), str(args[0]), "-d"] + api_args(node, name) + \
            [str(a) for a in args[1:]]
        kw = {}
        if env is not None:
            kw["env"] = dict(os.environ, **env)
        if ready:
            proc = node.spawn_daemon(argv, name=name, log_match=r"egressd \S+ ready: ",
                                     timeout=timeout, **kw)
        else:
            proc = node.popen(argv, name=name, **kw)
        return cls(node, binary, None, proc)

    def log(self):
        return self.proc.log()

    def lines(self):
        return self.log().splitlines()

    def since_mark(self):
        return self.log()[self.mark:]

    def set_mark(self):
        """Later wait_log() calls look only at what is logged after this point."""
        self.mark = len(self.log())

    def wait_log(self, pattern, timeout=5.0):
        """Wait until a line logged since the mark matches the regex; return the match."""
        rx = re.compile(pattern)
        found = []

        def seen():
            if self.proc.poll() is not None:
                raise AssertionError("egressd exited with %s:\n%s"
                                     % (self.proc.returncode, self.proc.tail(30)))
            m = rx.search(self.since_mark())
            if m:
                found.append(m)
            return bool(m)
        try:
            wait_for(seen, timeout=timeout, what="egressd to log /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s\n--- egressd log since mark:\n%s"
                                 % (e, self.since_mark()[-3000:])) from None
        return found[0]

    def write_conf(self, text):
        self.conf_path.write_text(text)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def reload(self):
        self.set_mark()
        self.signal(signal.SIGHUP)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.stop()
                return None
        return self.proc.returncode

    def stop_clean(self, timeout=10.0):
        """stop(), and LabError with the log's tail unless egressd exited 0 (for benchmarks:
        a run whose egressd crashed or hung is not a measurement)."""
        rc = self.stop(timeout)
        if rc != 0:
            raise LabError("egressd exited with %s:\n%s" % (rc, self.proc.tail(20)))

    def assert_clean(self):
        """No sanitizer report in the log."""
        log = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in log, "sanitizer report in egressd's log:\n%s" % log[-4000:]

    def status(self, field):
        """A field of /proc/PID/status, e.g. CapEff."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
        return None
