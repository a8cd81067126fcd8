"""egressd devices and egressctl's device commands, started the way the dual-stack gateway was.

    dev:eth0 192.168.1.100/24 --- gw:lan0 192.168.1.1/24
                                  gw:wan0 10.1.2.1/24 --- up:eth0 10.1.2.2/24

No DHCP server upstream: the device is found on the LAN and stays acquiring, which is all
these tests need.  egressd runs in gw as `egressd devices -wan wan0 -lan lan0 -api-port
5050`; the tests check the reference's API port (the open health check, the rest
authenticated), `egressctl status` with the devices module's part, `egressctl devices`, and
`--direct` reading the store with egressd stopped (from --state-dir and from -c FILE), with a
missing store refused and not created.
"""

import json
import os
import subprocess

import pytest

from egressd import Egressd, api_paths
from lab import Lab, is_root, wait_for

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

SPEC = """
    dev:eth0 192.168.1.100/24 mac=02:00:5e:10:00:64 -- gw:lan0 192.168.1.1/24
    gw:wan0 10.1.2.1/24 -- up:eth0 10.1.2.2/24
    gw forward
"""
DEV_MAC = "02:00:5e:10:00:64"


@pytest.fixture(scope="module")
def egressctl(request):
    from conftest import egressd_path
    path = egressd_path(request.config).parent / "egressctl"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("egressctl binary not found at %s (build it)" % path, pytrace=False)
    return path


def ctl(binary, *args, timeout=20):
    env = dict(os.environ)
    env.pop("EGRESS_TOKEN", None)
    return subprocess.run([str(binary)] + [str(a) for a in args], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def gw(egressd_bin):
    """The lab and egressd devices in gw, its device found; stopped at the module's end."""
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    with Lab() as lab:
        lab.apply(SPEC)
        state = lab.dir / "devices.state"
        d = Egressd.command(lab["gw"], egressd_bin,
                            ["devices", "-wan", "wan0", "-lan", "lan0", "-api-port", "5050",
                             "-state-dir", state, "-grace", "1h"])
        lab["dev"].ping("192.168.1.1")
        yield lab, d, state
        d.stop()
        d.assert_clean()


def devices_of(egressctl, *args):
    r = ctl(egressctl, *args, "--json", "devices")
    assert r.returncode == 0, r
    return {x["mac_address"]: x for x in json.loads(r.stdout)["devices"]}


def test_api_port_5050(gw):
    lab, d, _ = gw
    r = lab["up"].curl("http://10.1.2.1:5050/health", "-s", check=False)
    assert json.loads(r.stdout)["status"] == "healthy"
    # the rest is authenticated, unlike the reference's
    r = lab["up"].curl("http://10.1.2.1:5050/devices", "-s", "-o", "/dev/null",
                       "-w", "%{http_code}", check=False)
    assert r.stdout == "401"


def test_status_and_devices(gw, egressctl):
    lab, d, _ = gw
    sock, _ = api_paths(lab["gw"])
    wait_for(lambda: DEV_MAC in devices_of(egressctl, "--socket", sock), timeout=15,
             what="the device in egressctl devices")
    dev = devices_of(egressctl, "--socket", sock)[DEV_MAC]
    assert dev["ipv4_address"] == "192.168.1.100"
    assert dev["status"] in ("discovered", "acquiring")
    r = ctl(egressctl, "--socket", sock, "status")
    assert r.returncode == 0, r
    assert "devices    running" in r.stdout
    assert "\ndevices:\n" in r.stdout and "wan:" in r.stdout
    r = ctl(egressctl, "--socket", sock, "devices", "active")
    assert r.returncode == 0, r
    assert DEV_MAC not in r.stdout  # acquiring, not active
    r = ctl(egressctl, "--socket", sock, "devices")
    assert DEV_MAC in r.stdout and "192.168.1.100" in r.stdout


def test_direct_with_egressd_stopped(gw, egressctl, tmp_path):
    lab, d, state = gw
    sock, _ = api_paths(lab["gw"])
    wait_for(lambda: DEV_MAC in devices_of(egressctl, "--socket", sock), timeout=15,
             what="the device in egressctl devices")
    assert d.stop() == 0
    r = ctl(egressctl, "--socket", sock, "devices")
    assert r.returncode == 3, r  # egressd is gone
    r = ctl(egressctl, "--direct", "--state-dir", state, "devices")
    assert r.returncode == 0, r
    assert r.stdout.startswith("read from the store %s/devices.db directly, not from egressd; "
                               "last written " % state)
    assert DEV_MAC in r.stdout and "192.168.1.100" in r.stdout
    doc = json.loads(ctl(egressctl, "--direct", "--state-dir", state, "--json",
                         "devices").stdout)
    assert doc["source"] == "store" and doc["written_at"]
    assert DEV_MAC in [x["mac_address"] for x in doc["devices"]]
    # the same store found from a configuration file's [devices] state_dir
    conf = tmp_path / "egress.conf"
    conf.write_text("[devices]\nwan = wan0\nlan = lan0\nstate_dir = %s\n" % state)
    r = ctl(egressctl, "--direct", "-c", conf, "status")
    assert r.returncode == 0, r
    assert "total_devices:" in r.stdout and "directly, not from egressd" in r.stdout
    assert "stopped_at" in r.stdout  # egressd's last words in the store


def test_direct_missing_store(egressctl, tmp_path):
    r = ctl(egressctl, "--direct", "--state-dir", tmp_path, "devices")
    assert r.returncode == 1, r
    assert "cannot read the devices' store %s/devices.db: no such file" % tmp_path in r.stderr
    assert not (tmp_path / "devices.db").exists()
    assert list(tmp_path.iterdir()) == []
