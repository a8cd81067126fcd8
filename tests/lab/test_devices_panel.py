"""The dashboard's devices panel in headless Chromium (selenium), on devlab.py's gateway:

    d01 d02 d03 -- lan0 [gw] (egressd: [devices], API) wan0 -- [fw] -- [isp] dnsmasq
                              ^
    host 127.0.0.1:PORT -- webrelay.py -- headless chromium

d01 and d02 are registered with the firewall, d03 is not.  The panel shows a row per
device: d01 and d02 active with their LAN address, their WAN IPv4 and IPv6 as the API gives
them, when their leases end and the default forwards; d03 without WAN addresses and not
active.  A forward added on the API appears in d01's row.  The panel is hidden while egressd
runs without the module.  Screenshot: BUILD/screenshots/devices-panel.png.
"""

import subprocess
import sys
from pathlib import Path

import pytest

import lab as labmod
from demo import API_CONF, API_PORT, PASSWORD, WEB_ROOT
from devlab import DevLab, lan_of, mac_of
from egressd import Egressd
from lab import wait_for
from test_dashboard import Page, shots_dir

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

HERE = Path(__file__).resolve().parent

# the panel polls every 5 s: a change shows within two polls
SHOW_S = 15.0


def relay(gw):
    """webrelay.py from the host's loopback to the gateway's API: (process, page URL)."""
    p = subprocess.Popen([sys.executable, str(HERE / "webrelay.py"), "--listen",
                          "127.0.0.1:0", "--netns", gw.ns, "--to", "127.0.0.1:%d" % API_PORT],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("webrelay: listening on "), line
    return p, "http://%s/" % line.split()[-1]


def rows(page):
    """{mac: {column: text}} of the devices table."""
    heads = page.js("return [...document.querySelectorAll('#dev-table thead th')]"
                    ".map((th) => th.textContent);")
    out = {}
    for tr in page.js("return [...document.querySelectorAll('#dev-table tbody tr')]"
                      ".map((tr) => [...tr.cells].map((td) => td.textContent));"):
        if len(tr) == len(heads):
            out[tr[1]] = dict(zip(heads, tr))
    return out


def test_devices_panel(lab, egressd_bin):
    if not labmod.is_root():
        pytest.skip("needs root")
    dl = DevLab(lab, n=3, registered=(1, 2))
    dl.lan_up()
    d = dl.start_egressd(egressd_bin,
                         extra=API_CONF % {"port": API_PORT, "web": WEB_ROOT})
    user, password = PASSWORD.search(d.log()).groups()
    recs = dl.wait_active((1, 2))
    rel, page_url = relay(dl.gw)
    page = Page(page_url, shots_dir(egressd_bin))
    try:
        page.login(user, password)
        wait_for(lambda: page.visible("#devices"), timeout=10, what="the devices panel")
        wait_for(lambda: all(mac_of(i) in rows(page) and
                             rows(page)[mac_of(i)]["Status"] == "active" for i in (1, 2)),
                 timeout=SHOW_S, what="d01 and d02 active in the panel")
        shown = rows(page)
        for i in (1, 2):
            row, rec = shown[mac_of(i)], recs[i]
            assert row["LAN IPv4"] == lan_of(i)
            assert row["WAN IPv4"] == rec["ipv4_wan_address"]
            assert row["WAN IPv6"] == rec["ipv6_address"]
            assert row["WAN IPv4"].startswith("10.64.")
            assert row["WAN IPv6"].startswith("2001:db8:64:")
            assert "v4 in " in row["Lease expires"], row
            assert "8080→80" in row["Forwards"] and "2323→23" in row["Forwards"], row
        # d03 is not registered: seen, but with nothing upstream
        wait_for(lambda: mac_of(3) in rows(page), timeout=SHOW_S, what="d03 in the panel")
        row = rows(page)[mac_of(3)]
        assert row["Status"] != "active" and row["WAN IPv4"] == "" and row["WAN IPv6"] == ""
        assert row["Lease expires"] == ""
        assert "3 devices" in page.find("#dev-summary").text
        assert "2 active" in page.find("#dev-summary").text

        # a forward added by hand shows in d01's row
        r = dl.api().post("/api/devices/port-forwards",
                          {"gateway_port": 8022, "device_port": 22, "device": mac_of(1)})
        assert r.status == 201, r
        wait_for(lambda: "8022→22" in rows(page)[mac_of(1)]["Forwards"], timeout=SHOW_S,
                 what="the new forward in d01's row")
        assert "8022→22" not in rows(page)[mac_of(2)]["Forwards"]
        page.shot("devices-panel")
        assert page.script_errors() == []
    finally:
        page.quit()
        rel.terminate()
        rel.wait(5)
    assert d.stop() == 0
    d.assert_clean()

    # without the module (the same state_dir: the same password) the panel stays hidden
    d = Egressd.start(dl.gw, egressd_bin, API_CONF % {"port": API_PORT, "web": WEB_ROOT})
    rel, page_url = relay(dl.gw)
    page = Page(page_url, shots_dir(egressd_bin))
    try:
        page.login(user, password)
        assert dl.api(d).get("/api/devices").status == 503
        # one refresh of the panel, to its end (a panel hidden from the start proves nothing)
        page.driver.execute_async_script(
            "document.getElementById('devices').hidden = false;"
            "refreshDevices().then(arguments[arguments.length - 1]);")
        assert page.js("return document.getElementById('devices').hidden;")
        assert page.script_errors() == []
    finally:
        page.quit()
        rel.terminate()
        rel.wait(5)
    assert d.stop() == 0
