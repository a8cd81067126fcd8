"""The dashboard's allowlist panel in headless Chromium (selenium), against a gateway of
allowlab.py enforcing a kept list:

    c1 -- gw1 (egressd: [allowlist], API) -- inet
              ^
    host 127.0.0.1:PORT -- webrelay.py -- headless chromium

The panel shows the entries enforced, the server connection (none here: the kept list),
and the drops per client, which grow when c1 tries a destination the list does not allow.
A screenshot goes to BUILD/screenshots/allowlist-panel.png.
"""

import subprocess
import sys
from pathlib import Path

import pytest

import lab as labmod
from allowlab import AllowLab
from demo import API_CONF, API_PORT, PASSWORD, WEB_ROOT
from lab import wait_for
from test_dashboard import Page, shots_dir

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

HERE = Path(__file__).resolve().parent
ITEMS = [
    {"key": "1", "entry": 1, "label": "11.0.0.1", "dst": "11.0.0.1/32"},
    {"key": "2", "entry": 2, "label": "*.cdn.test", "name": "*.cdn.test"},
]


def relay(gw):
    p = subprocess.Popen([sys.executable, str(HERE / "webrelay.py"), "--listen",
                          "127.0.0.1:0", "--netns", gw.ns, "--to", "127.0.0.1:%d" % API_PORT],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("webrelay: listening on "), line
    return p, "http://%s/" % line.split()[-1]


def test_allowlist_panel(lab, egressd_bin):
    if not labmod.is_root():
        pytest.skip("needs root")
    al = AllowLab(lab, egressd_bin)
    al.write_state("gw1", 3, ITEMS)
    d = al.start_gateway("gw1", server=False,
                         extra=API_CONF % {"port": API_PORT, "web": WEB_ROOT})
    user, password = PASSWORD.search(d.log()).groups()
    assert al.fetch("c1", "11.0.0.9") is None  # a drop for the panel
    rel, url = relay(lab["gw1"])
    page = Page(url, shots_dir(egressd_bin))
    try:
        page.login(user, password)
        wait_for(lambda: page.visible("#allowlist"), timeout=10, what="the allowlist panel")
        wait_for(lambda: "version 3 · 2 items" in page.find("#al-summary").text, timeout=10,
                 what="the list's version and size")
        rows = [r.text for r in page.driver.find_elements("css selector", "#al-entries tbody tr")]
        assert any(r.startswith("11.0.0.1") for r in rows), rows
        assert any(r.startswith("*.cdn.test") for r in rows), rows
        assert "kept list" in page.find("#al-state").text
        wait_for(lambda: "10.1.0.2" in page.find("#al-drops").text, timeout=10,
                 what="c1's drops in the panel")
        page.shot("allowlist-panel")
        assert page.script_errors() == []
    finally:
        page.quit()
        rel.terminate()
        rel.wait(5)
