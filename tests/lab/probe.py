"""The compiled probe tools of tests/tools (dhcp4_probe, dhcp6_probe), driven from a test."""

import json
import threading

from lab import wait_for


class Probe:
    """A probe tool of tests/tools (dhcp4_probe, dhcp6_probe) in a node: its JSON lines
    collected by a thread, commands to its stdin."""

    def __init__(self, node, argv, name):
        self.name = name
        self.proc = node.popen(argv, name=name, stdin=-1, stdout=-1)
        self.events = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def mark(self):
        with self.lock:
            return len(self.events)

    def find(self, since=0, **match):
        with self.lock:
            for ev in self.events[since:]:
                if all(ev.get(k) == v for k, v in match.items()):
                    return ev
        return None

    def findall(self, since=0, **match):
        with self.lock:
            return [ev for ev in self.events[since:]
                    if all(ev.get(k) == v for k, v in match.items())]

    def wait(self, since=0, timeout=15, **match):
        return wait_for(lambda: self.find(since, **match), timeout=timeout,
                        what="%s event %r" % (self.name, match))

    def state(self, ifname):
        m = self.mark()
        self.send("state " + ifname)
        return self.wait(m, event="state", **{"if": ifname})

    def close(self):
        """End of input: the probe ends without releasing anything (as a kill would)."""
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0
        self.thread.join(timeout=5)
