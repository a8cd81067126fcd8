#!/usr/bin/python3
"""A private PostgreSQL cluster for tests: initdb and pg_ctl from Debian's postgresql in a
temporary folder, removed after.

    with PgCluster() as pg:
        pg.conninfo            # "host=/tmp/egress-pg-XXXX/sock port=5432 dbname=egress user=egress"
        pg.psql("SELECT 1")    # a query through psql, its output
        pg.restart()           # stop (fast) and start again: clients lose their connections
        pg.stop(); pg.start()  # the same in two steps (the cluster is down in between)

As a wrapper (the store's unit tests in `make check`):

    pgcluster.py run -- PROGRAM ARGS...

starts a cluster, runs PROGRAM with EGRESS_TEST_PG=CONNINFO in its environment, stops and
removes the cluster, and exits with PROGRAM's status.

initdb refuses to run as root, so under root the cluster runs as the unprivileged user
`nobody` (the folder is handed to it); otherwise as the caller.  It listens only on a UNIX
socket inside the folder (no TCP port, nothing another test or the host's own PostgreSQL
could collide with); a UNIX socket also reaches it from any network namespace.  Trust
authentication: only processes of this machine that can reach the folder can connect.

What it must not do: touch a cluster it did not make (the host's own included), or leave
its folder or processes behind.
"""

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

RUN_AS = "nobody"
DB = "egress"
USER = "egress"
PORT = 5432


class PgClusterError(Exception):
    pass


def pg_bindir():
    """The newest /usr/lib/postgresql/VERSION/bin with initdb, or PgClusterError."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise PgClusterError("no initdb in /usr/lib/postgresql/*/bin (install Debian's "
                             "postgresql)")
    return os.path.dirname(found[-1])


class PgCluster:
    def __init__(self, settings=None):
        self.bindir = pg_bindir()
        self.settings = dict(settings or {})
        self.dir = None
        self.running = False
        self._user = None  # pwd entry to run as, or None: ourselves

    # --- paths ---
    @property
    def data(self):
        return os.path.join(self.dir, "data")

    @property
    def sockdir(self):
        return os.path.join(self.dir, "sock")

    @property
    def logfile(self):
        return os.path.join(self.dir, "postgres.log")

    @property
    def conninfo(self):
        return "host=%s port=%d dbname=%s user=%s" % (self.sockdir, PORT, DB, USER)

    # --- running tools ---
    def _run(self, args, check=True, timeout=60, input=None):
        kw = {}
        if self._user:
            kw = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        env = dict(os.environ, LC_ALL="C", PGTZ="UTC")
        env.pop("PGDATA", None)
        p = subprocess.run(args, cwd=self.dir, env=env, capture_output=True, text=True,
                           timeout=timeout, input=input, **kw)
        if check and p.returncode != 0:
            raise PgClusterError("%s failed (%d): %s%s" % (" ".join(args), p.returncode,
                                                            p.stdout, p.stderr))
        return p

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    # --- life cycle ---
    def create(self):
        self.dir = tempfile.mkdtemp(prefix="egress-pg-")
        os.makedirs(self.sockdir)
        if os.geteuid() == 0:
            self._user = pwd.getpwnam(RUN_AS)
            for d in (self.dir, self.sockdir):
                os.chown(d, self._user.pw_uid, self._user.pw_gid)
        # Others may pass through to the socket (the data folder stays 0700).
        os.chmod(self.dir, 0o711)
        self._run([self._bin("initdb"), "-D", self.data, "-U", USER, "--auth=trust",
                   "-E", "UTF8", "--locale=C", "--no-sync"], timeout=120)
        conf = {
            "listen_addresses": "''",
            "unix_socket_directories": "'%s'" % self.sockdir,
            "port": str(PORT),
            "fsync": "off",  # a test's cluster need not survive the machine's crash
            "full_page_writes": "off",
            "max_connections": "50",
            "shared_buffers": "16MB",
            "log_min_messages": "warning",
            "timezone": "'UTC'",
        }
        conf.update(self.settings)
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        self.start()
        self.psql("CREATE DATABASE %s" % DB, db="postgres")
        return self

    def start(self):
        self._run([self._bin("pg_ctl"), "-D", self.data, "-l", self.logfile, "-w", "-t", "60",
                   "start"], timeout=90)
        self.running = True

    def stop(self, mode="fast"):
        """Stop: fast (clients disconnected, clean) or immediate (like a crash)."""
        if not self.running:
            return
        self._run([self._bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60",
                   "stop"], timeout=90)
        self.running = False

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def destroy(self):
        if self.dir is None:
            return
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        try:
            return self.create()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc):
        self.destroy()

    # --- use ---
    def psql(self, sql, db=DB):
        """Run sql through psql (unaligned, tuples only); its output, stripped."""
        p = self._run([self._bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                       "-h", self.sockdir, "-p", str(PORT), "-U", USER, "-d", db, "-c", sql])
        return p.stdout.strip()

    def log_tail(self, lines=20):
        try:
            with open(self.logfile) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def wait_until(predicate, timeout=10.0, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(interval)


def main(argv):
    if len(argv) < 3 or argv[0] != "run" or argv[1] != "--":
        print("usage: pgcluster.py run -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    try:
        cluster = PgCluster()
        cluster.create()
    except (PgClusterError, OSError, subprocess.SubprocessError) as e:
        print("pgcluster: %s" % e, file=sys.stderr)
        if "cluster" in locals():
            cluster.destroy()
        return 1
    try:
        env = dict(os.environ, EGRESS_TEST_PG=cluster.conninfo)
        return subprocess.run(argv[2:], env=env).returncode
    finally:
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
