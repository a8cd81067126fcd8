"""egress-server's API in a lab: the allowlist's entries, import and export, the audit log,
its configuration, and a kill -9 that loses nothing acknowledged.

    srv (a namespace of its own; the API on its loopback at 127.0.0.1:8091 and on a UNIX
         socket in the lab's run directory, the store a SQLite file beside it)

Over the UNIX socket root is an admin ("uid:0", from "unix"); over TCP a test makes API
tokens (read or admin) and acts as "token:NAME" from 127.0.0.1.
"""

import json
import subprocess
from pathlib import Path

import pytest

from egress_server import EgressServer

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture
def srv(lab, server_bin):
    s = EgressServer.start(lab.node("srv"), server_bin)
    yield s
    assert s.stop() == 0, s.proc.tail(30)
    s.assert_clean()


def add(api, value, **kw):
    r = api.post("/api/entries", dict(kw, value=value))
    assert r.status == 201, r
    return r.json()


def values(api, search=None):
    r = api.get("/api/entries" + ("?search=" + search if search else ""))
    assert r.status == 200, r
    return [e["value"] for e in r.json()["entries"]]


def audit(api, after=0):
    r = api.get("/api/audit?after=%d" % after)
    assert r.status == 200, r
    return r.json()["audit"]


def test_add_list_search_delete(srv):
    api = srv.api()
    assert values(api) == []
    ip = add(api, "93.184.216.7")
    assert ip["kind"] == "ip" and ip["id"] > 0 and ip["created_by"] == "uid:0"
    net = add(api, "2001:4860::/32", proto="tcp", ports="443", comment="search engine")
    assert net["kind"] == "cidr"
    dom = add(api, "Example.COM.", sources=["10.1.0.0/16"])
    assert dom["kind"] == "domain" and dom["value"] == "example.com"
    wild = add(api, "*.cdn.example.net")
    assert wild["kind"] == "wildcard"
    assert values(api) == ["93.184.216.7", "2001:4860::/32", "example.com", "*.cdn.example.net"]
    # search: in the value or the comment, case-insensitive; nothing found is an empty list
    assert values(api, "EXAMPLE") == ["example.com", "*.cdn.example.net"]
    assert values(api, "engine") == ["2001:4860::/32"]
    assert values(api, "nowhere") == []
    r = api.get("/api/entries/%d" % net["id"])
    assert r.status == 200 and r.json()["comment"] == "search engine", r
    # the same entry twice is a conflict, with other limits it is another entry
    r = api.post("/api/entries", {"value": "93.184.216.7"})
    assert r.status == 409 and r.json()["field"] == "value" and "93.184.216.7" in r.json()["error"]
    add(api, "93.184.216.7", proto="udp", ports="53")
    r = api.delete("/api/entries/%d" % dom["id"])
    assert r.status == 200, r
    assert "example.com" not in values(api)
    assert api.get("/api/entries/%d" % dom["id"]).status == 404
    assert api.delete("/api/entries/%d" % dom["id"]).status == 404
    r = api.get("/api/status")
    assert r.status == 200, r
    st = r.json()
    assert st["backend"] == "sqlite" and st["replica"] == "egress-server" and st["entries"] == 4
    assert st["version"] >= 6  # five adds and a delete, each a version
    assert st["resolver_status"]["leader"] is True  # SQLite: this replica resolves
    # a domain entry says what the resolver knows of it (here: nothing answers)
    r = api.get("/api/entries/%d" % add(api, "example.org")["id"])
    assert r.status == 200 and r.json()["resolver"]["name"] == "example.org", r
    assert "resolver" not in api.get("/api/entries/%d" % ip["id"]).json()
    assert "resolver" not in api.get("/api/entries/export").text
    # no gateway yet; the hub's route is on the API's listeners
    r = api.get("/api/gateways")
    assert r.status == 200 and r.json() == {"gateways": []}, r
    assert api.get("/ws").status == 401  # a gateway's token, not the socket's root


def test_non_deletable_needs_an_admin_override(srv):
    api = srv.api()
    e = add(api, "151.101.0.0/16", non_deletable=True, comment="CDN")
    r = api.delete("/api/entries/%d" % e["id"])
    assert r.status == 409, r
    err = r.json()
    assert err["field"] == "override" and "151.101.0.0/16" in err["error"] \
        and "non_deletable" in err["error"], err
    assert values(api) == ["151.101.0.0/16"]
    # a read token may not override; an admin token may, from its address, audited
    reader = srv.tcp(token=srv.token("viewer", "read"))
    assert reader.get("/api/entries").status == 200
    assert reader.delete("/api/entries/%d?override=1" % e["id"]).status == 403
    assert reader.post("/api/entries", {"value": "93.184.216.9"}).status == 403
    admin = srv.tcp(token=srv.token("ops", "admin"))
    r = admin.delete("/api/entries/%d?override=maybe" % e["id"])
    assert r.status == 400 and r.json()["field"] == "override", r
    r = admin.delete("/api/entries/%d?override=1" % e["id"])
    assert r.status == 200 and r.json()["override"] is True, r
    assert values(api) == []
    rec = [a for a in audit(api) if a["entry"] == e["id"]]
    assert [a["action"] for a in rec] == ["add", "delete-override"], rec
    assert rec[1]["who"] == "token:ops" and rec[1]["from"] == "127.0.0.1", rec


@pytest.mark.parametrize("value,why", [
    ("10.20.30.40", "private"),
    ("192.168.0.0/16", "private"),
    ("172.16.5.0/24", "private"),
    ("127.0.0.1", "loopback"),
    ("169.254.10.1", "link-local"),
    ("224.0.0.251", "multicast"),
    ("198.51.100.7", "documentation"),
    ("0.0.0.0/0", ""),
    ("100.64.1.1", ""),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fd00::1", ""),
    ("2001:db8::/32", "documentation"),
    ("ff02::1", "multicast"),
])
def test_reserved_destinations_refused(srv, value, why):
    api = srv.api()
    r = api.post("/api/entries", {"value": value})
    assert r.status == 400, r
    err = r.json()
    assert err["field"] == "value", err
    assert value.split("/")[0] in err["error"] and why in err["error"], err
    assert values(api) == []
    assert audit(api) == []
    # the same in an import: all or nothing
    r = api.post("/api/entries/import", raw="93.184.216.10\n%s\n" % value,
                 headers={"Content-Type": "text/plain"})
    assert r.status == 400 and r.json()["line"] == 2, r
    assert values(api) == []


def test_import_export_round_trip(lab, srv, server_bin):
    api = srv.api()
    body = [
        {"value": "93.184.216.20"},
        {"value": "185.199.108.0/22",
         "proto": "tcp", "ports": "80,443,8000-8100", "comment": "GitHub pages"},
        {"value": "example.org", "sources": ["10.1.0.0/16", "10.2.0.0/16"],
         "non_deletable": True},
        {"value": "*.example.net", "proto": "udp", "ports": "53"},
        {"value": "2a00:1450:4001::/48", "comment": "with # and \"quotes\""},
    ]
    r = api.post("/api/entries/import", body)
    assert r.status == 200 and r.json() == {"imported": 5, "skipped": 0}, r
    # an import of what is there already skips it
    r = api.post("/api/entries/import", body[:2])
    assert r.status == 200 and r.json() == {"imported": 0, "skipped": 2}, r
    as_json = api.get("/api/entries/export?format=json")
    assert as_json.status == 200, as_json
    exported = as_json.json()
    assert [e["value"] for e in exported] == [b["value"] for b in body]
    as_text = api.get("/api/entries/export?format=text")
    assert as_text.status == 200 and as_text.headers["content-type"].startswith("text/plain")
    assert len(as_text.text.splitlines()) == 5, as_text.text
    assert api.get("/api/entries/export").json() == exported  # json by default

    def same(a, b):
        drop = ("id", "created", "created_by")
        return [{k: v for k, v in e.items() if k not in drop} for e in a] == \
            [{k: v for k, v in e.items() if k not in drop} for e in b]

    # both forms read back to the same entries on another server
    for n, (raw, ctype) in enumerate([(as_text.text, "text/plain"),
                                      (as_json.text, "application/json")]):
        other = EgressServer.start(lab.node("srv%d" % n), server_bin)
        o = other.api()
        r = o.post("/api/entries/import", raw=raw, headers={"Content-Type": ctype})
        assert r.status == 200 and r.json()["imported"] == 5, r
        assert same(o.get("/api/entries/export").json(), exported)
        assert o.get("/api/entries/export?format=text").text == as_text.text
        rec = audit(o)
        assert rec[-1]["action"] == "import" and rec[-1]["who"] == "uid:0", rec
        assert other.stop() == 0
        other.assert_clean()


def test_import_all_or_nothing(srv):
    api = srv.api()
    text = "# allowed hosts\n93.184.216.30\n\nexample.com proto=tcp ports=443\n" \
        "93.184.216.31 ports=99999\n"
    r = api.post("/api/entries/import", raw=text, headers={"Content-Type": "text/plain"})
    assert r.status == 400, r
    err = r.json()
    assert err["line"] == 5 and err["field"].startswith("ports") \
        and err["error"].startswith("line 5: ports"), err
    r = api.post("/api/entries/import", [{"value": "93.184.216.30"},
                                         {"value": "93.184.216.31", "ports": "0"}])
    assert r.status == 400 and r.json()["field"].startswith("[1].ports"), r
    r = api.post("/api/entries/import", [{"value": "93.184.216.30"}, "93.184.216.31"])
    assert r.status == 400 and r.json()["field"].startswith("[1]"), r
    r = api.post("/api/entries/import", {"value": "93.184.216.30"})
    assert r.status == 400 and "array" in r.json()["error"], r
    r = api.post("/api/entries/import", raw="93.184.216.30", headers={"Content-Type": "text/csv"})
    assert r.status == 400 and "Content-Type" in r.json()["error"], r
    assert values(api) == []
    assert audit(api) == []
    # the good part alone goes in, blank lines and comments aside
    r = api.post("/api/entries/import", raw="\n".join(text.splitlines()[:4]) + "\n",
                 headers={"Content-Type": "text/plain"})
    assert r.status == 200 and r.json()["imported"] == 2, r


@pytest.mark.parametrize("body,field", [
    ({}, "value"),
    ({"value": 42}, "value"),
    ({"value": "exa mple.com"}, "value"),
    ({"value": "93.184.216.0/16"}, "value"),
    ({"value": "93.184.216.7", "color": "red"}, "color"),
    ({"value": "93.184.216.7", "proto": "icmp"}, "proto"),
    ({"value": "93.184.216.7", "ports": "70000"}, "ports[0]"),
    ({"value": "93.184.216.7", "ports": "443,70000"}, "ports[1]"),
    ({"value": "93.184.216.7", "sources": 42}, "sources"),
    ({"value": "93.184.216.7", "sources": ["10.0.0.0/8", "nope"]}, "sources[1]"),
    ({"value": "93.184.216.7", "non_deletable": "yes"}, "non_deletable"),
    ({"value": "93.184.216.7", "comment": "x" * 600}, "comment"),
])
def test_bad_bodies_name_the_field(srv, body, field):
    api = srv.api()
    r = api.post("/api/entries", body)
    assert r.status == 400, r
    assert r.json()["field"] == field, r
    assert values(api) == []


def test_bad_requests(srv):
    api = srv.api()
    r = api.post("/api/entries", raw="{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and "JSON" in r.json()["error"], r
    r = api.post("/api/entries", ["93.184.216.7"])
    assert r.status == 400, r
    assert api.get("/api/entries/abc").status == 404
    assert api.get("/api/entries/0").status == 404
    r = api.get("/api/entries/export?format=xml")
    assert r.status == 400 and r.json()["field"] == "format", r
    r = api.get("/api/audit?after=-1")
    assert r.status == 400 and r.json()["field"] == "after", r
    r = api.get("/api/audit?limit=100000")
    assert r.status == 400 and r.json()["field"] == "limit", r
    r = api.put("/api/entries", {"value": "93.184.216.7"})
    assert r.status == 405, r
    # nobody in particular over TCP: who are you?
    anon = srv.tcp()
    assert anon.get("/api/entries").status == 401
    assert anon.post("/api/entries", {"value": "93.184.216.7"}).status == 401
    assert anon.get("/healthz").status == 200
    assert values(api) == []


def test_audit_who_when_what_from(srv):
    api = srv.api()
    a = add(api, "93.184.216.40")
    ci = srv.tcp(token=srv.token("ci", "admin"))
    r = ci.post("/api/entries", {"value": "example.com", "comment": "by ci"})
    assert r.status == 201, r
    b = r.json()
    assert b["created_by"] == "token:ci"
    assert ci.delete("/api/entries/%d" % a["id"]).status == 200
    recs = audit(api)
    mine = [x for x in recs if x["action"] in ("add", "delete")]
    assert [(x["action"], x["entry"], x["who"], x["from"]) for x in mine] == [
        ("add", a["id"], "uid:0", "unix"),
        ("add", b["id"], "token:ci", "127.0.0.1"),
        ("delete", a["id"], "token:ci", "127.0.0.1"),
    ], recs
    for x in mine:
        assert x["time"].endswith("Z") and x["time"][:2] == "20", x
    # the token made through the API is audited too
    assert any(x["who"] == "uid:0" and "ci" in json.dumps(x["detail"]) for x in recs
               if x["action"] == "api"), recs
    # ?after= pages on
    last = recs[-1]["id"]
    assert audit(api, last) == []
    assert [x["id"] for x in audit(api, recs[0]["id"])] == [x["id"] for x in recs[1:]]


def test_kill9_after_an_acknowledged_add(srv):
    api = srv.api()
    for i in range(5):
        add(api, "93.184.216.%d" % (50 + i))
    version = api.get("/api/status").json()["version"]
    e = add(api, "example.com", non_deletable=True)
    srv.kill9()  # at once after the 201
    srv2 = srv.restart()
    try:
        api = srv2.api()
        assert values(api)[-1] == "example.com"
        assert len(values(api)) == 6
        assert api.get("/api/entries/%d" % e["id"]).json()["non_deletable"] is True
        assert api.get("/api/status").json()["version"] == version + 1
        assert [x["action"] for x in audit(api)].count("add") == 6
    finally:
        srv.proc = srv2.proc  # the fixture stops this one


def test_reload_keeps_the_old_configuration_on_error(srv):
    api = srv.api()
    srv.reload({"server": {"name": "replica-b"}})
    srv.wait_log(r"reload 1: replica replica-b")
    assert api.get("/api/status").json()["replica"] == "replica-b"
    srv.reload({"server": {"colour": "blue"}})
    srv.wait_log(r"reload failed, keeping the running configuration")
    srv.wait_log(r"colour")
    assert srv.alive()
    assert api.get("/api/status").json()["replica"] == "replica-b"
    add(api, "93.184.216.60")


CHECK_CONF = """\
# what -n prints for this is tests/lab/golden/egress-server.out
[server]
name=replica-a

[resolver]
nameservers = 9.9.9.9, [2620:fe::fe]:53
grace=90s

[api]
listen = 127.0.0.1:9443 [::1]:9443
metrics = yes
"""


def check(server_bin, path, *args):
    return subprocess.run([str(server_bin), "-n", "-server-conf-path", str(path)] + list(args),
                          capture_output=True, text=True, timeout=30)


def test_check_prints_the_normalised_configuration(lab, server_bin):
    conf = lab.dir / "check.conf"
    conf.write_text(CHECK_CONF)
    r = check(server_bin, conf)
    assert r.returncode == 0, r.stderr
    golden = GOLDEN / "egress-server.out"
    assert r.stdout == golden.read_text(), r.stdout
    # the output reads back to itself; -c is the same flag
    again = lab.dir / "again.conf"
    again.write_text(r.stdout)
    r2 = subprocess.run([str(server_bin), "-n", "-c", str(again)], capture_output=True,
                        text=True, timeout=30)
    assert r2.returncode == 0 and r2.stdout == r.stdout, r2.stderr
    # a flag writes through the same table
    r3 = check(server_bin, conf, "-log-level", "debug")
    assert "log_level = debug" in r3.stdout


def test_store_folder_made_when_missing(tmp_path, server_bin):
    """[store] path in a folder that does not exist yet (a fresh /var/lib/egress-server):
    egress-server makes the folder, 0700, and starts."""
    db = tmp_path / "fresh" / "allowlist.db"
    srv = EgressServer.start_local(tmp_path, server_bin,
                                   settings={"store": {"path": str(db)}})
    try:
        r = srv.api().post("/api/entries", {"value": "192.0.2.0/24"})
        assert r.status == 400, r  # documentation range: refused, but the API answers
        r = srv.api().post("/api/entries", {"value": "1.1.1.1"})
        assert r.status == 201, r
        assert db.is_file()
        assert (db.parent.stat().st_mode & 0o777) == 0o700
    finally:
        srv.stop()


def test_defaults_do_not_take_egressds_port(lab, server_bin):
    """Without [api] listen, egress-server listens on 127.0.0.1:8091 only, not also on
    egressd's 8090 (a command's default replaces the key's, lists included)."""
    conf = lab.dir / "empty.conf"
    conf.write_text("")
    r = check(server_bin, conf)
    assert r.returncode == 0, r.stderr
    listens = [line for line in r.stdout.splitlines() if line.startswith("listen")]
    assert listens == ["listen = 127.0.0.1:8091"], listens


@pytest.mark.parametrize("text,where", [
    ("[server]\ncolour = blue\n", "bad.conf:2"),
    ("[server]\nname =\n", "name"),
    ("[server]\nlog_level = loud\n", "log_level"),
    ("[api]\nlisten = 127.0.0.1:99999\n", "listen"),
    ("[uplink isp1]\ninterface = eth0\n", "uplink"),
    ("[resolver]\nnameservers = dns.example\n", "nameservers"),
    ("[resolver]\nnameservers = 9.9.9.9:0\n", "nameservers"),
    ("[resolver]\nttl_min = 2h\n", "ttl_min"),
])
def test_bad_configuration_refused(lab, server_bin, text, where):
    conf = lab.dir / "bad.conf"
    conf.write_text(text)
    r = check(server_bin, conf)
    assert r.returncode == 1 and r.stdout == "", r
    assert "bad.conf" in r.stderr and where in r.stderr, r.stderr
    # and it does not start either
    node = lab.node("bad")
    p = node.popen([str(server_bin), "-d", "-server-conf-path", str(conf)], name="bad")
    assert p.wait(10) == 1
    assert where in p.log()


def test_page_healthz_and_metrics(lab, server_bin):
    web = Path(__file__).resolve().parents[2] / "web"
    s = EgressServer.start(lab.node("srv"), server_bin,
                           settings={"api": {"metrics": "yes", "web_root": web}})
    anon = s.tcp()
    r = anon.get("/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}, r
    # "/" is the allowlist's page, not egressd's dashboard; its assets beside it
    r = anon.get("/")
    assert r.status == 200 and "<title>Egress allowlist</title>" in r.text, r
    assert anon.get("/allowlist.js").status == 200
    assert anon.get("/session.js").status == 200
    assert anon.get("/metrics").status == 401
    r = s.api().get("/metrics")
    assert r.status == 200 and 'egress_api_requests_total{route="/healthz"' in r.text, r.text
    assert s.stop() == 0
    s.assert_clean()
