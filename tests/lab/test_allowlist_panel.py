"""The dashboard's allowlist panel in headless Chromium (selenium), with gw1 of allowlab.py
connected to the real egress-server:

    c1 -- gw1 (egressd: [allowlist], API) -- inet -- srv (egress-server, hub on /ws)
              ^
    host 127.0.0.1:PORT -- webrelay.py -- headless chromium

The panel shows the server connected, the version held and acknowledged, the entries with
their packets and bytes rising after c1's traffic, a filter over them, c1's drops rising
after a destination the list does not allow, and the connection no longer connected once
the server is stopped.  Screenshots go to BUILD/screenshots/ (allowlist-connected.png,
allowlist-server-stopped.png).
"""

import subprocess
import sys
from pathlib import Path

import pytest

import lab as labmod
from allowlab import SERVER_ADDR, AllowLab
from demo import API_CONF, API_PORT, PASSWORD, WEB_ROOT
from egress_server import DEFAULT_PORT, EgressServer
from lab import wait_for
from test_dashboard import Page, shots_dir

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

HERE = Path(__file__).resolve().parent
# the panel polls every 5 s: a change shows within two polls
SHOW_S = 15.0


def relay(gw):
    p = subprocess.Popen([sys.executable, str(HERE / "webrelay.py"), "--listen",
                          "127.0.0.1:0", "--netns", gw.ns, "--to", "127.0.0.1:%d" % API_PORT],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("webrelay: listening on "), line
    return p, "http://%s/" % line.split()[-1]


def entries(page):
    """The entries table: [[entry, destination, limits, packets, bytes], ...]."""
    return page.js("return [...document.querySelectorAll('#al-entries tbody tr')]"
                   ".map((tr) => [...tr.cells].map((td) => td.textContent));")


def packets(page, dst):
    """The packets shown for destination dst, or None while it has no row with a count."""
    for row in entries(page):
        if len(row) == 5 and row[1] == dst and row[3]:
            return int(row[3])
    return None


def drops(page, client):
    for tr in page.js("return [...document.querySelectorAll('#al-drops tbody tr')]"
                      ".map((tr) => [...tr.cells].map((td) => td.textContent));"):
        if tr[0] == client:
            return int(tr[1])
    return 0


def state(page):
    return page.find("#al-state").get_attribute("data-state")


def test_allowlist_panel_with_server(lab, egressd_bin, server_bin):
    if not labmod.is_root():
        pytest.skip("needs root")
    al = AllowLab(lab, egressd_bin)
    srv = al.server = EgressServer.start(
        lab["srv"], server_bin, settings={"api": {"listen": "0.0.0.0:%d" % DEFAULT_PORT},
                                          "hub": {"ping": "1s", "timeout": "3s"}})
    token = srv.token("gateways", "read")
    for value in ("11.0.0.1", "11.0.0.4"):
        assert srv.api().post("/api/entries", {"value": value}).status == 201
    url = "ws://%s:%d/ws" % (SERVER_ADDR, DEFAULT_PORT)
    d = al.start_gateway("gw1", token, url=url,
                         extra=API_CONF % {"port": API_PORT, "web": WEB_ROOT})
    user, password = PASSWORD.search(d.log()).groups()
    rel, page_url = relay(lab["gw1"])
    page = Page(page_url, shots_dir(egressd_bin))
    try:
        page.login(user, password)
        wait_for(lambda: page.visible("#allowlist"), timeout=10, what="the allowlist panel")
        wait_for(lambda: state(page) == "connected", timeout=SHOW_S,
                 what="the server connected in the panel")
        assert page.find("#al-state").text == "connected"
        assert page.find("#al-server").text == url
        wait_for(lambda: page.find("#al-versions").text == "acknowledged 2", timeout=SHOW_S,
                 what="version 2 acknowledged")
        assert "version 2 · 2 items" in page.find("#al-summary").text  # held
        assert "last contact" in page.find("#al-contact").text

        # c1's traffic to an entry: its packets rise in its row
        wait_for(lambda: packets(page, "11.0.0.1") is not None, timeout=SHOW_S,
                 what="11.0.0.1's row with its counters")
        before = packets(page, "11.0.0.1")
        assert al.fetch("c1", "11.0.0.1") == "web"
        wait_for(lambda: packets(page, "11.0.0.1") > before, timeout=SHOW_S,
                 what="11.0.0.1's packets rising after c1's traffic")
        row = next(r for r in entries(page) if r[1] == "11.0.0.1")
        assert row[0] == "11.0.0.1" and row[4].endswith("B")

        # a destination the list does not allow: c1's drops rise
        dropped = drops(page, "10.1.0.2")
        assert al.fetch("c1", "11.0.0.9") is None
        wait_for(lambda: drops(page, "10.1.0.2") > dropped, timeout=SHOW_S,
                 what="c1's drops rising after a refused destination")

        # the filter asks the gateway for the matching entries only
        page.find("#al-filter").send_keys("11.0.0.4")
        wait_for(lambda: [r[1] for r in entries(page)] == ["11.0.0.4"], timeout=SHOW_S,
                 what="the filter keeping 11.0.0.4 only")
        page.find("#al-filter").clear()
        page.js("document.getElementById('al-filter').dispatchEvent(new Event('input'))")
        wait_for(lambda: len(entries(page)) == 2, timeout=SHOW_S, what="both entries again")
        page.shot("allowlist-connected")

        # the server stopped: no longer connected, the list still enforced
        assert srv.stop() == 0
        wait_for(lambda: state(page) not in ("connected", None), timeout=SHOW_S,
                 what="the panel to show the server not connected")
        assert "down" in page.find("#al-state").get_attribute("class")
        assert page.find("#al-state").text.split(",")[0] in ("connecting", "backoff")
        assert al.fetch("c1", "11.0.0.1") == "web"
        page.shot("allowlist-server-stopped")
        assert page.script_errors() == []
    finally:
        page.quit()
        rel.terminate()
        rel.wait(5)
    d.assert_clean()
