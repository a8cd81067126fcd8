"""`make demo` keeps working: run it for a short while and check what it shows."""

import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from lab import LOCK_DIR, list_namespaces

pytestmark = [pytest.mark.requires_root]

DEMO = Path(__file__).resolve().parent / "demo.py"


def run_demo(egressd_bin, *args):
    """Run demo.py for 17 s in a lab of its own run id; return its output once it has checked
    that the demo left none of that run's namespaces (nor its lock) behind.  Only the run's
    own namespaces count: other labs may come and go on the machine meanwhile."""
    run = "demo" + secrets.token_hex(4)
    r = subprocess.run([sys.executable, str(DEMO), "--egressd", str(egressd_bin),
                        "--duration", "17", "--plain", "--run", run, "--web-port", "0",
                        *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "demo: lab %s, namespaces eg-%s-*" % (run, run) in r.stdout
    left = [ns for ns in list_namespaces() if ns.startswith("eg-%s-" % run)]
    assert not left, "the demo left namespaces behind: %s" % left
    assert not (LOCK_DIR / ("%s.lock" % run)).exists()
    # the dashboard was served on the host's loopback, with the admin login to use
    assert re.search(r"^demo: dashboard at http://127\.0\.0\.1:\d+/ \(", r.stdout, re.M), r.stdout
    return r.stdout


def test_demo_runs_and_cleans_up(egressd_bin):
    out = run_demo(egressd_bin)
    assert "ready: 3 uplinks" in out
    for isp in ("isp1", "isp2", "isp3"):
        assert "uplink %s: init -> up (first round passed)" % isp in out
    assert "policy: balancing 2 LAN interfaces over 3 uplinks" in out
    # the blackhole behind a live link is found by the health checks alone, and only the
    # failed ISP's connections are moved
    assert "demo: isp2 blackholed behind a live link" in out
    assert "uplink isp2: up -> down (3 of 3 rounds failed: timeout)" in out
    assert re.search(r"policy: uplink isp2: \d+ connections? deleted", out)
    assert "uplink isp1: up -> down" not in out
    # traffic flowed through all three
    m = re.search(r"new connections of the last 10 s: isp1 (\d+)%, isp2 (\d+)%, isp3 (\d+)%",
                  out)
    assert m and int(m.group(1)) > 0 and int(m.group(3)) > 0, out
    assert "egressd stopped (exit 0)" in out


def test_demo_proxy_runs_and_cleans_up(egressd_bin):
    """`make demo DEMO_ARGS=--proxy`: gateway mode over the same ISPs; a blackholed ISP is
    found by its checks and the other two carry on.  (A flow whose exchange was in flight
    through the ISP when it went dark may fail: test_proxy.py's blackhole test is where no
    new connection may.)"""
    out = run_demo(egressd_bin, "--proxy")
    assert "ready: 3 uplinks" in out
    assert "gateway: intercepting 2 subnets" in out
    assert "demo: isp2 blackholed behind a live link" in out
    assert "uplink isp2: up -> down (3 of 3 rounds failed: timeout)" in out
    assert "uplink isp1: up -> down" not in out
    m = re.search(r"new connections of the last 10 s: isp1 (\d+)%, isp2 (\d+)%, isp3 (\d+)%; "
                  r"failed: (\d+)", out)
    assert m and int(m.group(1)) > 0 and int(m.group(3)) > 0, out
    assert "gateway: removed table inet egress_gateway" in out
    assert "egressd stopped (exit 0)" in out
