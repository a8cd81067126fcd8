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
                        "--duration", "9", "--plain"],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "ready: 3 uplinks, 3 up" in out
    assert "demo: cut isp2 (carrier lost)" in out
    assert "uplink isp2: up -> down (link isp2 is down)" in out
    assert "uplink isp1: up -> down" not in out  # only what was cut goes down
    assert "egressd stopped (exit 0)" in out
    assert set(list_namespaces()) <= before
