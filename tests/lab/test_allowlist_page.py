"""Browser tests of egress-server's page (web/allowlist.html), in headless Chromium.

    host 127.0.0.1:PORT -- egress-server (its API and page; a SQLite store in a temporary
                           folder) <-- headless chromium (selenium)

egress-server needs no namespace: it runs on the host's loopback only, at a free port,
serving the page from the source tree's web/.  One browser walks through what an operator
does: log in (a wrong password refused), add entries (a private address refused beside the
form, naming why), search, delete, meet a non-deletable entry and override it, import and
export, and read the audit.  Each step saves a screenshot as test_dashboard.py does.

The steps share one server and one browser (module scope) and run in file order; each logs
in if it finds the login form.
"""

import shutil
import tempfile
from pathlib import Path

import pytest

import lab as labmod
from egress_server import EgressServer
from lab import wait_for
from test_dashboard import Page, shots_dir

pytestmark = [pytest.mark.requires_root]

WEB = Path(__file__).resolve().parents[2] / "web"


@pytest.fixture(scope="module")
def page(server_bin):
    """egress-server on the host's loopback and a browser on its page."""
    if not labmod.is_root():
        pytest.skip("needs root: chromium runs as root with --no-sandbox")
    tmp = Path(tempfile.mkdtemp(prefix="egress-server-page-"))
    srv = browser = None
    try:
        srv = EgressServer.start_local(tmp, server_bin, settings={"api": {"web_root": WEB}})
        browser = Page(srv.url + "/", shots_dir(server_bin) / "allowlist")
        browser.shots.mkdir(exist_ok=True)
        browser.srv = srv
        yield browser
        assert srv.stop() == 0, srv.proc.tail(30)
        srv.assert_clean()
    finally:
        if browser is not None:
            browser.quit()
        if srv is not None:
            srv.node.lab.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_script_errors(page):
    """Every step ends without a JavaScript error in the page."""
    page.script_errors()
    yield
    assert page.script_errors() == []


def login(page):
    page.login("admin", page.srv.password)


def rows(page):
    """The entries' table in one read: [id, value, kind, limits, comment, added, button,
    what the resolver says] (the value as the row's data-value, without the last)."""
    return page.js("return [...document.querySelectorAll('#entries tbody tr')]"
                   ".map((tr) => [...tr.cells].map((td) => td.textContent)"
                   ".map((t, i) => i == 1 ? tr.dataset.value : t)"
                   ".concat([(tr.querySelector('.resolved') || {}).textContent]))")


def values(page):
    return [r[1] for r in rows(page)]


def add(page, value, comment="", nondel=False, ports=""):
    for css, text in (("#add-value", value), ("#add-ports", ports), ("#add-comment", comment)):
        page.find(css).clear()
        if text:
            page.find(css).send_keys(text)
    if page.find("#add-nondel").is_selected() != nondel:
        page.find("#add-nondel").click()
    page.find("#add-submit").click()


def test_login(page):
    page.driver.get(page.url)
    wait_for(lambda: page.visible("#login-form"), timeout=10, what="the login form")
    assert not page.visible("#app")
    assert page.driver.title == "Egress allowlist"
    page.find("#login-password").send_keys("not-" + page.srv.password + "\n")
    wait_for(lambda: page.find("#login-error").text, timeout=10, what="the login error")
    assert "Wrong" in page.find("#login-error").text and not page.visible("#app")
    login(page)
    assert page.find("#who").text == "admin"
    wait_for(lambda: "version 0" in page.find("#status").text, timeout=10,
             what="the status line")
    assert "sqlite" in page.find("#status").text
    wait_for(lambda: page.visible("#gateways-block"), timeout=10, what="the gateways' table")
    page.shot("01-empty")


def test_add_and_refusals(page):
    login(page)
    add(page, "example.com", comment="the example", ports="443")
    wait_for(lambda: values(page) == ["example.com"], timeout=10, what="the new entry's row")
    row = rows(page)[0]
    assert row[2] == "domain" and "443" in row[3] and row[4] == "the example", row
    # nothing answers the test's resolver: the row says so, whatever the resolver's error
    wait_for(lambda: rows(page)[0][7] and "resolving" not in rows(page)[0][7], timeout=10,
             what="what the resolver says of example.com")
    assert "Added example.com" in page.find("#flash").text
    # a private address: refused beside the form, naming it and why; nothing added
    add(page, "10.1.2.3")
    wait_for(lambda: "private" in page.find("#add-error").text, timeout=10,
             what="the refusal beside the form")
    assert "10.1.2.3" in page.find("#add-error").text
    assert page.find("#add-value").get_attribute("aria-invalid") == "true"
    assert values(page) == ["example.com"]
    page.shot("02-refused")
    add(page, "151.101.0.0/16", comment="CDN", nondel=True)
    wait_for(lambda: len(values(page)) == 2, timeout=10, what="the second row")
    assert page.find("#add-error").text == ""
    assert page.find("#add-value").get_attribute("aria-invalid") is None


def test_search(page):
    login(page)
    page.find("#search").send_keys("cdn")
    wait_for(lambda: values(page) == ["151.101.0.0/16"], timeout=10, what="the search")
    assert "1 found" in page.find("#entry-count").text
    page.find("#search").clear()
    page.find("#search").send_keys(" ")  # an input event; blank searches all
    wait_for(lambda: len(values(page)) == 2, timeout=10, what="every entry again")


def button_of(page, value):
    """The text of value's button (in one read: the table is redrawn as the list moves)."""
    return page.js("const b = document.querySelector(arguments[0]); return b && b.textContent",
                   '#entries tr[data-value="%s"] button' % value)


def click_button_of(page, value):
    page.js("document.querySelector(arguments[0]).click()",
            '#entries tr[data-value="%s"] button' % value)


def test_delete_and_override(page):
    login(page)
    click_button_of(page, "example.com")
    wait_for(lambda: values(page) == ["151.101.0.0/16"], timeout=10, what="the row gone")
    # non-deletable: refused with the reason, then deleted by an explicit override
    click_button_of(page, "151.101.0.0/16")
    wait_for(lambda: "non_deletable" in page.find("#flash").text, timeout=10,
             what="the refusal")
    assert button_of(page, "151.101.0.0/16") == "Delete anyway"
    assert values(page) == ["151.101.0.0/16"]
    page.shot("03-non-deletable")
    click_button_of(page, "151.101.0.0/16")
    wait_for(lambda: values(page) == [], timeout=10, what="the overridden delete")
    assert "override" in page.find("#flash").text
    wait_for(lambda: "delete-override" in page.find("#audit").text, timeout=10,
             what="the override in the audit")


def test_import_export(page):
    login(page)
    page.find("#import-text").send_keys("93.184.216.34 proto=tcp ports=80,443 # web\n"
                                        "2606:4700::/32\n")
    page.find("#import-submit").click()
    wait_for(lambda: "2 imported" in page.find("#import-status").text, timeout=10,
             what="the import")
    wait_for(lambda: values(page) == ["93.184.216.34", "2606:4700::/32"], timeout=10,
             what="the imported rows")
    # all or nothing: a bad line names itself, nothing goes in
    page.find("#import-text").send_keys("1.1.1.1\n192.168.1.1\n")
    page.find("#import-submit").click()
    wait_for(lambda: "line 2" in page.find("#import-status").text, timeout=10,
             what="the import's error")
    assert "Nothing imported" in page.find("#import-status").text
    assert len(values(page)) == 2
    href = page.find("#export-text").get_attribute("href")
    assert href.endswith("/api/entries/export?format=text")
    text = page.js("return fetch(arguments[0]).then((r) => r.text())", href)
    assert text.splitlines()[0].startswith("93.184.216.34"), text
    page.shot("04-imported")


def test_audit(page):
    login(page)
    wait_for(lambda: "import" in page.find("#audit").text, timeout=10, what="the import")
    items = page.js("return [...document.querySelectorAll('#audit li')]"
                    ".map((li) => [li.querySelector('.kind').textContent, li.textContent])")
    kinds = [k for k, _ in items]
    # newest first: the import, the override, the delete, two adds, the login
    assert kinds[:5] == ["import", "delete-override", "delete", "add", "add"], kinds
    assert "by admin" in items[0][1]
    # the poll and an action's refresh may ask at once for the same records: each shows once
    ids = page.js("state.auditLast = 0; state.audit = [];"
                  "return Promise.all([refreshAudit(), refreshAudit()])"
                  ".then(() => state.audit.map((a) => a.id))")
    assert ids and len(ids) == len(set(ids)), ids
    page.shot("05-audit")
