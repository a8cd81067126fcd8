"""An operator's settings (env.change) kept across a restart, and lost with a kill while they
await their confirmation: gateway mode switched off through the API.

    client (10.20.0.2) -- gw (egressd dispatch -gateway 192.0.2.1@3 192.0.2.9@2) --+-- isp1 --+-- inet
                                                                                     +-- isp2 --+

The topology is tests/lab/proxylab.py's.  The toggle is a setting on top of the command line
(`[gateway] enabled = no`), kept in the daemon's state directory; table inet egress_gateway
shows whether gateway mode runs.  Each test's egressd has a name of its own, so a state
directory of its own, which its restart finds again.
"""
import json
import signal

import pytest

import proxylab
from apiclient import ApiClient
from egressd import Egressd
from lab import Lab, wait_for

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]


@pytest.fixture(scope="module")
def plab():
    with Lab() as lab:
        proxylab.build(lab)
        yield lab


def start(lab, binary, name, backup):
    args = ["dispatch", "-resolver", proxylab.DNS, "-lhost", proxylab.GW_LAN, "-lport", "1080",
            "-gateway", "-gateway-ip", proxylab.GW_LAN, "-subnet", "10.20.0.0/24",
            "-auto-config", "-backup-file", str(backup),
            "%s@3" % proxylab.ADDR["isp1"], "%s@2" % proxylab.ADDR["isp2"]]
    d = Egressd.command(lab["gw"], binary, args, name=name)
    return d, ApiClient.unix(d)


def gw_table(gw):
    r = gw.run(["nft", "list", "table", "inet", "egress_gateway"], check=False)
    return r.stdout if r.returncode == 0 else None


def gateway_conf(api):
    """[gateway] of the running configuration."""
    r = api.get("/api/config?format=json")
    assert r.status == 200, r
    return r.json()["gateway"]


def settings(d):
    return json.loads((d.state_dir / "settings.json").read_text())["settings"]


def test_confirmed_setting_survives_a_restart(plab, egressd_bin):
    gw = plab["gw"]
    backup = gw.lab.dir / "settings-restart.nft"
    d, api = start(plab, egressd_bin, "egressd-settings1", backup)
    wait_for(lambda: gw_table(gw), what="gateway mode on")
    r = api.post("/api/gateway/toggle?confirm=60s", {"enabled": False})
    assert r.status == 200, r
    wait_for(lambda: gw_table(gw) is None, what="gateway mode off")
    p = api.get("/api/config/pending").json()
    assert p["pending"] and p["what"] == "gateway.enabled = false", p
    assert not (d.state_dir / "settings.json").exists()  # nothing kept before the confirmation
    r = api.post("/api/config/confirm")
    assert r.status == 200, r
    assert settings(d) == [{"section": "gateway", "key": "enabled", "value": "false"}]
    assert gateway_conf(api)["enabled"] == "false"
    assert d.stop() == 0
    d.assert_clean()

    # the restart runs the command line and the kept setting: gateway mode stays off
    d, api = start(plab, egressd_bin, "egressd-settings1", backup)
    d.wait_log(r"running with 1 operator setting")
    assert api.get("/api/gateway").json()["enabled"] is False
    assert gw_table(gw) is None
    # switched on again, and so kept
    r = api.post("/api/gateway/toggle", {"enabled": True})
    assert r.status == 200, r
    wait_for(lambda: gw_table(gw), what="gateway mode on again")
    assert gateway_conf(api)["enabled"] == "true"
    assert settings(d) == [{"section": "gateway", "key": "enabled", "value": "true"}]
    assert d.stop() == 0
    d.assert_clean()


def test_kill_while_a_setting_awaits_confirmation(plab, egressd_bin):
    gw = plab["gw"]
    backup = gw.lab.dir / "settings-kill.nft"
    d, api = start(plab, egressd_bin, "egressd-settings2", backup)
    wait_for(lambda: gw_table(gw), what="gateway mode on")
    r = api.post("/api/gateway/toggle?confirm=60s", {"enabled": False})
    assert r.status == 200, r
    wait_for(lambda: gw_table(gw) is None, what="gateway mode off")
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=10)

    d, api = start(plab, egressd_bin, "egressd-settings2", backup)
    assert "operator setting" not in d.log()
    wait_for(lambda: gw_table(gw), what="gateway mode on after the restart")
    assert api.get("/api/gateway").json()["enabled"] is True
    assert api.get("/api/config/pending").json() == {"pending": False}
    assert d.stop() == 0
