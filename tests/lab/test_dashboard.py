"""Browser tests of egressd's dashboard (web/) against the demo's lab.

    client1 --+                        +-- isp1 (3) --+
              +-- gw (egressd + API) --+-- isp2 (2) --+-- inet
    client2 --+        ^               +-- isp3 (1) --+
                       |
    host 127.0.0.1:PORT -- webrelay.py -- headless chromium (selenium)

demo.Demo builds the lab, starts egressd with its API and the clients' traffic, and relays a
port of the host's loopback to the API, as `make demo` does; here in gateway mode (`make demo
DEMO_ARGS=--proxy`), where egressd also has the connection table, new connections per uplink
and the gateway switch to show.  One browser walks through what
an operator does: log in, see the three uplinks up, watch an ISP blackholed behind a live
link turn down (card and chart), drain an uplink and let commit-confirmed roll it back, and
get a config error beside its line.  Each step saves a screenshot under the build folder
(BUILD/screenshots/, BUILD being the one egressd was built in; EG_SCREENSHOTS=DIR elsewhere).

The steps share one lab and one browser (module scope) and run in file order; each logs in
if it finds the login form, so one can run alone with -k.
"""

import os
import re
import sys
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import lab as labmod
from lab import Lab, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import Demo, UPLINKS  # noqa: E402

pytestmark = [pytest.mark.requires_root]

WINDOW = (1280, 1000)
PHONE = (390, 844)
# How long the page may take to show a transition egressd has logged (issue: within 2 s of
# the transition through the event stream; 5 s from the blackhole in the lab).
SHOW_S = 5.0
CONFIRM_S = 15  # the shortest confirm window the page offers
DOM_ERRORS = (NoSuchElementException, StaleElementReferenceException)


def shots_dir(egressd_bin):
    if os.environ.get("EG_SCREENSHOTS"):
        d = Path(os.environ["EG_SCREENSHOTS"])
    else:
        build = Path(egressd_bin).resolve().parents[2]  # BUILD/src/cmd/egressd
        d = build / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


class Page:
    """The browser on the dashboard, with the few reads and actions the tests need."""

    def __init__(self, url, shots):
        opts = webdriver.ChromeOptions()
        opts.binary_location = labmod._tool("chromium")
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=%d,%d" % WINDOW, "--lang=en-US"):
            opts.add_argument(a)
        self.driver = webdriver.Chrome(service=Service(labmod._tool("chromedriver")),
                                       options=opts)
        self.url = url
        self.shots = shots

    def quit(self):
        self.driver.quit()

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def visible(self, css):
        try:
            return self.find(css).is_displayed()
        except DOM_ERRORS:
            return False

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def texts(self, css):
        """The rendered text of every element matching css, in one read: the page redraws
        parts (the editor's gutter at each check, the cards at each poll), and an element
        held across a redraw goes stale."""
        return self.js("return [...document.querySelectorAll(arguments[0])]"
                       ".map((e) => e.innerText)", css)

    def shot(self, name, full=True):
        """Save NAME.png: the whole page (the window stretched to its height) or the view."""
        path = self.shots / ("%s.png" % name)
        d = self.driver
        if full:
            w, h = d.get_window_size()["width"], d.get_window_size()["height"]
            height = self.js("return document.documentElement.scrollHeight")
            d.set_window_size(w, max(h, height + 120))
            d.save_screenshot(str(path))
            d.set_window_size(w, h)
        else:
            d.save_screenshot(str(path))
        return path

    def script_errors(self):
        """The page's JavaScript errors since the last call (not failed requests: a 401
        before the login is how the page learns it must ask for one)."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e.get("source") == "javascript"]

    def login(self, user, password):
        if self.visible("#app"):
            return
        self.driver.get(self.url)
        wait_for(lambda: self.visible("#login-form"), timeout=10, what="the login form")
        self.find("#login-user").clear()
        self.find("#login-user").send_keys(user)
        self.find("#login-password").send_keys(password + "\n")
        wait_for(lambda: self.visible("#app"), timeout=10, what="the dashboard after login")

    def card(self, name):
        return self.find('.card[data-name="%s"]' % name)

    def card_attr(self, name, attr):
        try:
            return self.card(name).get_attribute("data-" + attr)
        except DOM_ERRORS:
            return None

    def states(self):
        return {u: self.card_attr(u, "state") for u in UPLINKS}

    def series(self, canvas, uplink):
        """The (x, y) points of uplink's line in the chart on canvas id `canvas`."""
        return self.js("""
            const c = Chart.getChart(document.getElementById(arguments[0]));
            const d = c && c.data.datasets.find((s) => s.label === arguments[1]);
            return d ? d.data.map((p) => [p.x, p.y]) : [];""", canvas, uplink)


@pytest.fixture(scope="module")
def dash(egressd_bin):
    """The demo's lab with the dashboard served on the host, and a browser on it."""
    if not labmod.is_root():
        pytest.skip("needs root: creates network namespaces")
    lab = Lab()
    demo = page = None
    try:
        demo = Demo(lab, egressd_bin, proxy=True, web_port=0)
        assert demo.password, "egressd printed no admin password:\n" + demo.d.log()[-2000:]
        page = Page(demo.url, shots_dir(egressd_bin))
        yield demo, page
        demo.d.assert_clean()
    finally:
        if page is not None:
            page.quit()
        if demo is not None:
            demo.close()
        lab.close()


@pytest.fixture(autouse=True)
def no_script_errors(dash):
    """Every step ends without a JavaScript error in the page."""
    dash[1].script_errors()
    yield
    assert dash[1].script_errors() == []


def test_login(dash):
    demo, page = dash
    page.driver.get(demo.url)
    wait_for(lambda: page.visible("#login-form"), timeout=10, what="the login form")
    assert not page.visible("#app")
    page.shot("01-login", full=False)
    # a wrong password is refused and says so; the dashboard stays hidden
    page.find("#login-password").send_keys("not-" + demo.password + "\n")
    wait_for(lambda: page.find("#login-error").text, timeout=10, what="the login error")
    assert "Wrong" in page.find("#login-error").text
    assert not page.visible("#app")
    page.shot("02-login-refused", full=False)
    page.login(demo.user, demo.password)
    assert page.find("#who").text == demo.user
    wait_for(lambda: page.find("#live").text == "live", timeout=10, what="the event stream")


def test_three_uplinks_up(dash):
    demo, page = dash
    page.login(demo.user, demo.password)
    wait_for(lambda: page.states() == {u: "up" for u in UPLINKS}, timeout=10,
             what="three uplink cards up")
    assert len(page.driver.find_elements(By.CSS_SELECTOR, ".card")) == 3
    # what each card shows comes from egressd: weights 3:2:1 of the demo's config
    weights = {u: page.card(u).find_element(By.CSS_SELECTOR, 'dd[data-key="weight"]').text
               for u in UPLINKS}
    assert [w.split()[0] for w in weights.values()] == ["3", "2", "1"], weights
    # the charts fill: every uplink carries the clients' downloads
    wait_for(lambda: all(any((y or 0) > 0.5 for _, y in page.series("chart-throughput", u))
                         for u in UPLINKS), timeout=20, what="throughput on every uplink")
    assert page.find("#gateway-toggle").is_enabled()
    assert page.find("#gateway-toggle").is_selected()
    page.shot("03-uplinks-up")


def test_connections_filter(dash):
    demo, page = dash
    page.login(demo.user, demo.password)

    def rows():  # in one read: the table is redrawn every few seconds
        return page.js("return [...document.querySelectorAll('#connections tbody tr')]"
                       ".map((tr) => [...tr.cells].map((td) => td.textContent))")
    # The table holds live connections: the downloads' short ones come and go, isp3
    # carries one in six, so a single redraw may show none of it.  Over a few redraws
    # every uplink appears.
    seen = set()

    def every_uplink_seen():
        seen.update(r[2] for r in rows() if len(r) == 6)
        return seen >= set(UPLINKS)
    wait_for(every_uplink_seen, timeout=30, what="connections over every uplink in the table")
    box = page.find("#conn-filter")
    box.send_keys("isp3")
    wait_for(lambda: rows() and all(len(r) == 6 and r[2] == "isp3" for r in rows()),
             timeout=30, what="only isp3's connections, one of them live")
    assert re.fullmatch(r"\d+ of \d+", page.find("#conn-count").text)
    page.shot("04-connections-isp3")
    box.clear()
    box.send_keys("no-such-thing")
    wait_for(lambda: rows() == [["No connection matches."]], timeout=SHOW_S,
             what="no row for a filter nothing matches")
    box.clear()
    box.send_keys(" ")  # an input event with an empty filter: every row again
    wait_for(lambda: re.fullmatch(r"\d+", page.find("#conn-count").text) and
             rows() != [["No connection matches."]], timeout=SHOW_S,
             what="every connection again")


def test_blackholed_isp_turns_down(dash):
    demo, page = dash
    page.login(demo.user, demo.password)
    wait_for(lambda: page.states()["isp2"] == "up", timeout=10, what="isp2 up")
    before = [y for _, y in page.series("chart-throughput", "isp2") if y is not None]
    assert max(before[-5:]) > 0.5, "isp2 carried nothing before the blackhole: %s" % before
    demo.d.set_mark()
    demo.lab.cut(demo.lab["isp2"], "eth1", mode="blackhole")
    try:
        demo.d.wait_log(r"uplink isp2: up -> down", timeout=15)
        logged = time.monotonic()
        wait_for(lambda: page.states()["isp2"] == "down", timeout=SHOW_S,
                 what="isp2's card to turn down")
        shown = time.monotonic() - logged
        print("isp2 card down %.2f s after egressd logged the transition" % shown)
        assert page.states() == {"isp1": "up", "isp2": "down", "isp3": "up"}
        assert "down" in page.card("isp2").find_element(By.CSS_SELECTOR, ".state").text.lower()
        wait_for(lambda: "isp2: up -> down" in page.find("#events").text, timeout=SHOW_S,
                 what="the transition in the event log")
        # isp2's throughput line drops while the others go on
        wait_for(lambda: (page.series("chart-throughput", "isp2")[-1][1] or 0) < 0.2,
                 timeout=10, what="isp2's throughput line to drop")
        # ... while isp1 goes on carrying.  Not the newest point alone: the downloads that
        # egressd put on isp2 before it saw the blackhole hang until their timeout (3 s),
        # and when every download is among them isp1 carries nothing for a poll or two
        wait_for(lambda: (page.series("chart-throughput", "isp1")[-1][1] or 0) > 0.5,
                 timeout=10, what="isp1's throughput line to carry on")
        assert page.states()["isp1"] == "up"
        page.shot("05-isp2-down")
    finally:
        demo.lab.restore(demo.lab["isp2"], "eth1")
    wait_for(lambda: page.states()["isp2"] == "up", timeout=15, what="isp2 up again")


def test_drain_rolls_back(dash):
    demo, page = dash
    page.login(demo.user, demo.password)
    wait_for(lambda: page.card_attr("isp3", "enabled") == "true", timeout=10,
             what="isp3 in service")
    Select(page.find("#confirm-secs")).select_by_value(str(CONFIRM_S))
    assert not page.visible("#pending")
    page.card("isp3").find_element(By.CSS_SELECTOR, "button.drain").click()
    wait_for(lambda: page.card_attr("isp3", "enabled") == "false", timeout=SHOW_S,
             what="isp3's card drained")
    assert page.card_attr("isp1", "enabled") == "true"
    assert page.card_attr("isp2", "enabled") == "true"
    # the countdown runs and offers Confirm
    wait_for(lambda: page.visible("#pending"), timeout=SHOW_S, what="the countdown")
    first = page.find("#pending-countdown").text
    assert re.fullmatch(r"0:(1[0-5]|0\d)", first), first
    assert page.visible("#pending-confirm")
    page.shot("06-drain-pending")
    wait_for(lambda: page.find("#pending-countdown").text != first, timeout=5,
             what="the countdown to move")
    # nobody confirms: egressd rolls the drain back and the page shows it
    wait_for(lambda: page.card_attr("isp3", "enabled") == "true", timeout=CONFIRM_S + 10,
             what="the drain rolled back")
    wait_for(lambda: not page.visible("#pending"), timeout=SHOW_S, what="the banner to go")
    assert "rolled" in page.find("#flash").text
    page.shot("07-drain-rolled-back")


def test_config_error_beside_its_line(dash):
    demo, page = dash
    page.login(demo.user, demo.password)
    wait_for(lambda: "[uplink isp2]" in page.find("#config-text").get_attribute("value"),
             timeout=10, what="the configuration in the editor")
    text = page.find("#config-text").get_attribute("value")
    lines = text.split("\n")
    at = lines.index("[uplink isp2]")
    bad = next(i for i in range(at, len(lines)) if lines[i].startswith("weight"))
    lines[bad] = "weight = 0"
    page.js("const t = document.getElementById('config-text'); t.value = arguments[0];"
            "t.dispatchEvent(new Event('input'));", "\n".join(lines))
    page.find("#config-check").click()
    marked = '#config-back div.bad[data-line="%d"]' % (bad + 1)
    wait_for(lambda: page.visible(marked), timeout=SHOW_S, what="the error beside its line")
    # the click's check and the one the edit schedules both redraw the editor: read each
    # part in one go
    msg = page.texts(marked + " .msg")
    assert len(msg) == 1 and "weight" in msg[0] and "0" in msg[0], msg
    assert len(page.texts("#config-back div.bad")) == 1
    assert page.texts("#config-gutter div.bad") == [str(bad + 1)]
    page.js("document.getElementById('config-text').scrollIntoView()")
    page.shot("08-config-error")
    # the dry run changed nothing: egressd still has weight 2
    weight = page.texts('.card[data-name="isp2"] dd[data-key="weight"]')
    assert len(weight) == 1 and weight[0].split()[0] == "2", weight
    # fixed, the same text checks clean
    lines[bad] = "weight = 5"
    page.js("const t = document.getElementById('config-text'); t.value = arguments[0];"
            "t.dispatchEvent(new Event('input'));", "\n".join(lines))
    page.find("#config-check").click()
    wait_for(lambda: page.find("#config-status").text.startswith("Valid"), timeout=SHOW_S,
             what="the fixed config to check clean")
    assert not page.driver.find_elements(By.CSS_SELECTOR, "#config-back div.bad")
    page.find("#config-reload").click()


def test_readable_on_a_phone(dash):
    demo, page = dash
    page.login(demo.user, demo.password)
    page.driver.set_window_size(*PHONE)
    try:
        wait_for(lambda: page.js("return document.documentElement.scrollWidth") <= PHONE[0],
                 timeout=5, what="the page to fit a phone's width")
        # the cards stack: one column
        xs = {page.card(u).location["x"] for u in UPLINKS}
        assert len(xs) == 1, xs
        page.js("window.scrollTo(0, 0)")
        page.shot("09-phone")
    finally:
        page.driver.set_window_size(*WINDOW)
