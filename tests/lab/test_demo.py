"""`make demo` keeps working: run it for a short while and check what it shows."""

import subprocess
import sys
from pathlib import Path

import pytest

from lab import list_namespaces

pytestmark = [pytest.mark.requires_root]

DEMO = Path(__file__).resolve().parent / "demo.py"


def test_demo_runs_and_cleans_up(egressd_bin):
    before = set(list_namespaces())
    r = subprocess.run([sys.executable, str(DEMO), "--egressd", str(egressd_bin),
                        "--duration", "21", "--plain"],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "ready: 3 uplinks" in out
    for isp in ("isp1", "isp2", "isp3"):
        assert "uplink %s: init -> up (first round passed)" % isp in out
    assert "demo: cut isp2 (carrier lost)" in out
    assert "uplink isp2: up -> down (link isp2 is down)" in out
    assert "uplink isp1: up -> down" not in out  # only what was broken goes down
    # a blackhole behind a live link is found by the health check alone
    assert "demo: blackholed isp3 behind a live link" in out
    assert "uplink isp3: up -> down (3 of 3 rounds failed" in out
    assert "egressd stopped (exit 0)" in out
    assert set(list_namespaces()) <= before
