"""The private PostgreSQL cluster of the tests (pgcluster.py): made in a temporary folder
by an unprivileged user, reachable on its UNIX socket, restartable, and gone after."""

import os
import subprocess

import pytest

from pgcluster import PgCluster, PgClusterError


def _postgres_pids(folder):
    """Pids of processes whose command line names the folder."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if folder.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def test_cluster_lifecycle():
    with PgCluster() as pg:
        folder = pg.dir
        assert pg.psql("SELECT 40 + 2") == "42"
        assert pg.psql("SELECT current_user") == "egress"
        if os.geteuid() == 0:
            # initdb refuses root: the server runs as an unprivileged user.
            with open(os.path.join(pg.data, "postmaster.pid")) as f:
                pid = int(f.readline())
            assert os.stat("/proc/%d" % pid).st_uid != 0
            assert os.stat(pg.data).st_uid != 0
        pg.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
        pg.restart()
        assert pg.psql("SELECT v FROM t") == "7"
        pg.stop()
        with pytest.raises(PgClusterError):
            pg.psql("SELECT 1")
        pg.start()
        assert pg.psql("SELECT 1") == "1"
        assert _postgres_pids(folder)
    assert not os.path.exists(folder)
    assert not _postgres_pids(folder)


def test_run_wrapper():
    """pgcluster.py run -- CMD: CMD sees EGRESS_TEST_PG, its status is the wrapper's."""
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([os.path.join(here, "pgcluster.py"), "run", "--", "sh", "-c",
                        'psql -X -A -t "$EGRESS_TEST_PG" -c "SELECT 6 * 7" && exit 3'],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    assert p.stdout.strip() == "42"
