"""Run the real egress-server in a lab node (or on the host's loopback) and talk to it.

    srv = EgressServer.start(lab["srv"], server_bin)        # waits for its ready line
    api = srv.api()                                         # ApiClient over its UNIX socket:
    r = api.post("/api/entries", {"value": "example.com"})  # root there is an admin ("uid:0")
    tok = srv.token("ci", "admin")                          # a token made through the API
    web = srv.tcp(token=tok)                                # ApiClient over TCP, as ci
    srv.kill9(); srv = srv.restart()                        # same files, nothing lost
    srv.password                                            # the admin's first-start password

Each server gets its own folder in the lab's run directory (<node>.<name>.d): its
configuration, its store (SQLite), the API's state directory and UNIX socket, so parallel
servers never share anything and none touches the host's /var/lib/egress-server.  Its
resolver asks 127.0.0.1:9, where nothing answers, unless settings name a DNS server of the
test's own: no query ever leaves the node or the host's loopback.  settings
add to or replace keys of its configuration, section by section:

    EgressServer.start(node, server_bin, settings={"hub": {"ping": "1s"}, "api": {...}})

EgressServer.start_local(tmp_dir, server_bin) runs one on the host (no namespace), its API on
127.0.0.1 at a free port: for tests that need no lab.  The binary: env EGRESS_SERVER, else
egress-server beside the egressd under test (so EGRESSD=build-asan/... tests the ASan one).

What it must not do: listen anywhere but inside its node or on the host's loopback.
"""

import os
import re
import signal
import socket
from pathlib import Path

from apiclient import ApiClient
from egressd import Egressd
from lab import Node

READY = r"egress-server \S+ ready: "
FIRST = r"api: first start: the password for admin is (\S+)"
DEFAULT_PORT = 8091


def server_path(config):
    """EGRESS_SERVER, else egress-server beside the egressd under test (--egressd, EGRESSD,
    or the default build folder)."""
    if os.environ.get("EGRESS_SERVER"):
        return Path(os.environ["EGRESS_SERVER"])
    egressd = config.getoption("--egressd", default=None) or os.environ.get("EGRESSD") or \
        Path(__file__).resolve().parents[2] / "build" / "src" / "cmd" / "egressd"
    return Path(egressd).with_name("egress-server")


def render(sections):
    """{"server": {"name": "a"}, ...} as INI text, sections and keys in the given order."""
    out = []
    for sec, keys in sections.items():
        out.append("[%s]" % sec)
        out += ["%s = %s" % (k, v) for k, v in keys.items() if v is not None]
        out.append("")
    return "\n".join(out)


class _HostLab:
    """What a Node needs of its lab, for a node that is the host itself."""

    def __init__(self, path):
        self.dir = Path(path)
        self._procs = []

    def _check_open(self):
        pass

    def close(self):
        for p in self._procs:
            p.stop()


class HostNode(Node):
    """The host's own namespace, for a server on its loopback only: runs argv as it is."""

    def __init__(self, path):
        super().__init__(_HostLab(path), "host", None)

    def _argv(self, args):
        return [str(a) for a in args]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EgressServer(Egressd):
    """Egressd's log, wait_log(), signal(), stop() and assert_clean() on egress-server."""

    def __init__(self, node, binary, name, sections, args, env, proc):
        self.node = node
        self.binary = binary
        self.name = name
        self.sections = sections
        self.args = list(args)
        self.env = env
        self.proc = proc
        self.mark = 0
        self.dir = self.folder(node, name)
        self.conf_path = self.dir / "egress-server.conf"
        self.api_socket = Path(sections["api"]["socket"])
        self.db = self.dir / "allowlist.db"
        self._password = None

    @staticmethod
    def folder(node, name):
        return node.lab.dir / ("%s.%s.d" % (node.name, name))

    @classmethod
    def defaults(cls, node, name, port):
        d = cls.folder(node, name)
        return {
            "server": {"name": name},
            "store": {"path": d / "allowlist.db"},
            # nothing answers there: a test that wants answers gives its own DNS server
            "resolver": {"nameservers": "127.0.0.1:9", "timeout": "500ms"},
            "api": {"listen": "127.0.0.1:%d" % port, "socket": d / "api.sock",
                    "state_dir": d / "state"},
        }

    @classmethod
    def start(cls, node, binary, settings=None, name="egress-server", port=DEFAULT_PORT,
              args=(), ready=True, env=None, timeout=10.0):
        """Write the configuration (defaults, then settings) into the server's folder and
        start `egress-server -d -server-conf-path FILE ARGS` in node; wait for the ready
        line if ready."""
        sections = cls.defaults(node, name, port)
        for sec, keys in (settings or {}).items():
            sections.setdefault(sec, {}).update(keys)
        d = cls.folder(node, name)
        d.mkdir(exist_ok=True)
        (d / "egress-server.conf").write_text(render(sections))
        proc = cls._spawn(node, binary, d / "egress-server.conf", name, args, env, ready,
                          timeout)
        return cls(node, binary, name, sections, args, env, proc)

    @classmethod
    def start_local(cls, path, binary, **kw):
        """A server on the host's loopback (a free port), its files under path."""
        return cls.start(HostNode(path), binary, port=free_port(), **kw)

    @staticmethod
    def _spawn(node, binary, conf_path, name, args, env, ready, timeout):
        argv = [str(binary), "-d", "-server-conf-path", str(conf_path)] + [str(a) for a in args]
        kw = {"env": dict(os.environ, **env)} if env else {}
        if ready:
            return node.spawn_daemon(argv, name=name, log_match=READY, timeout=timeout, **kw)
        return node.popen(argv, name=name, **kw)

    # -- its API

    @property
    def url(self):
        return "http://" + self.sections["api"]["listen"].split()[0]

    def api(self, **kw):
        """An ApiClient over the UNIX socket: root there is an admin, "uid:0" in the audit."""
        return ApiClient.unix(self, **kw)

    def tcp(self, **kw):
        """An ApiClient over TCP (the first listen address), from inside the node."""
        return ApiClient.tcp(self.node, self.url, **kw)

    def token(self, name, access="admin"):
        """Make an API token (read or admin) through the socket; return its secret."""
        r = self.api().post("/api/tokens", {"name": name, "access": access})
        assert r.status == 201, r
        return r.json()["token"]

    @property
    def password(self):
        """The admin's password, as the first start logged it."""
        if self._password is None:
            m = re.search(FIRST, self.log())
            assert m, "no first-start password in the log:\n%s" % self.log()[-2000:]
            self._password = m.group(1)
        return self._password

    # -- its process (the rest is Egressd's)

    def reload(self, settings=None):
        """Rewrite the configuration with settings merged in (if any) and SIGHUP."""
        for sec, keys in (settings or {}).items():
            self.sections.setdefault(sec, {}).update(keys)
        self.conf_path.write_text(render(self.sections))
        super().reload()

    def kill9(self):
        """SIGKILL, as a crash or a power cut would, and reap it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def restart(self, ready=True, timeout=10.0):
        """Start again with the same folder and configuration; returns the new server."""
        proc = self._spawn(self.node, self.binary, self.conf_path, self.name, self.args,
                           self.env, ready, timeout)
        s = EgressServer(self.node, self.binary, self.name, self.sections, self.args,
                         self.env, proc)
        s._password = self._password
        return s
