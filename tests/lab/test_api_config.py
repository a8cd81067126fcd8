"""The running configuration through the API: GET and POST /api/config (dry run, errors,
commit-confirmed), a change kept across a restart or lost with a kill, and the event log.

    gw:isp1 192.0.2.1/24 ------ isp1:eth0 192.0.2.2/24
    gw:isp2 198.51.100.1/24 --- isp2:eth0 198.51.100.2/24

egressd runs in gw with an uplink per ISP link; its route module keeps a default route via
isp2 in a table of its own.  The kernel state a change moves is that table: 4501 in the file,
4502 in the changed configuration.  Every request goes over egressd's UNIX socket as root
(an admin).
"""

import json
import signal

import pytest

from apiclient import ApiClient
from egressd import Egressd, api_args
from lab import wait_for

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

SPEC = """
    gw:isp1 192.0.2.1/24 -- isp1:eth0 192.0.2.2/24
    gw:isp2 198.51.100.1/24 -- isp2:eth0 198.51.100.2/24
"""

CONF = """\
# the file as the operator wrote it
[uplink isp1]
interface = isp1
gateway = 192.0.2.2

[uplink isp2]
interface = isp2
gateway = 198.51.100.2
weight = 2

[route]
gateway = 198.51.100.2
scheme = none
table = %d
"""

TEXT = "text/plain"


@pytest.fixture
def gw(lab):
    lab.apply(SPEC)
    return lab["gw"]


def table(gw, t):
    """The routes in table t, "" when there are none."""
    return gw.run(["ip", "-4", "route", "show", "table", str(t)], check=False).stdout.strip()


def wait_table(gw, t):
    wait_for(lambda: table(gw, t), what="the route module's default route in table %d" % t)


def start(gw, egressd_bin, conf=CONF % 4501, **kw):
    d = Egressd.start(gw, egressd_bin, conf, **kw)
    return d, ApiClient.unix(d)


def post_config(api, text, query=""):
    return api.post("/api/config" + query, raw=text, headers={"Content-Type": TEXT})


def running(api):
    r = api.get("/api/config")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def pending(api):
    r = api.get("/api/config/pending")
    assert r.status == 200, r
    return r.json()


def events(api, after=0, kind=None):
    q = "?after=%d" % after + ("&kind=" + kind if kind else "")
    r = api.get("/api/events" + q)
    assert r.status == 200, r
    return r.json()["events"]


def test_get_config_is_what_egressd_n_prints(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    n = gw.run([str(egressd_bin), "-n", "-c", str(d.conf_path)] + api_args(gw))
    assert running(api) == n.stdout
    r = api.get("/api/config?format=json")
    assert r.status == 200, r
    j = r.json()
    assert j["uplink"]["isp2"]["weight"] == "2"
    assert j["route"]["table"] == "4501"
    assert "198.51.100.2" not in j["uplink"]  # implied by [route], as egressd -n leaves it
    r = api.get("/api/config?format=yaml")
    assert r.status == 400 and r.json()["field"] == "format", r
    assert d.stop() == 0
    d.assert_clean()


PROXY = """
[proxy]
address = 127.0.0.1
port = 1080
username = op
password = s3cret
"""


def proxy_status(gw, password):
    """The HTTP status egressd's proxy answers a request authenticated with password."""
    r = gw.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
                "-x", "http://op:%s@127.0.0.1:1080" % password, "http://192.0.2.2:8080/"],
               check=False)
    return r.stdout.strip()


def test_a_secret_posted_back_masked_keeps_its_value(gw, egressd_bin):
    gw.lab["isp1"].http_server(8080)
    d, api = start(gw, egressd_bin, conf=CONF % 4501 + PROXY)
    text = running(api)
    assert "password = ********\n" in text and "s3cret" not in text
    assert proxy_status(gw, "wrong") == "407"
    assert proxy_status(gw, "s3cret") != "407"
    # posted back with a change elsewhere: the mask stands for the running password
    r = post_config(api, text.replace("table = 4501", "table = 4502"))
    assert r.status == 200, r
    wait_table(gw, 4502)
    assert proxy_status(gw, "s3cret") != "407"
    assert proxy_status(gw, "********") == "407"
    # a new section's secret cannot be a mask: refused, naming the key, nothing changed
    r = post_config(api, text + "\n[ddns]\nprovider = dynudns\nhostname = gw.example.net\n"
                    "password = ********\n")
    assert r.status == 400, r
    assert r.json()["field"] == "ddns.password", r.json()
    assert table(gw, 4502)
    assert d.stop() == 0


def test_bad_config_is_refused_with_line_and_key(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_table(gw, 4501)
    before, file_before = running(api), d.conf_path.read_text()
    bad = CONF % 4502
    bad = bad.replace("weight = 2", "weight = 0")  # line 9
    r = post_config(api, bad)
    assert r.status == 400, r
    e = r.json()
    assert e["line"] == 9 and e["key"] == "weight", e
    assert e["field"] == "uplink.isp2.weight"
    assert e["expected"] == "an integer from 1 to 256" and e["seen"] == "0"
    assert "weight: expected an integer from 1 to 256, got \"0\"" in e["error"]
    assert len(e["errors"]) == 1
    # an unknown key and a syntax error, both reported at their lines
    r = post_config(api, CONF % 4502 + "bogus = 1\nnot a line\n")
    assert r.status == 400, r
    assert [(x["line"], x.get("key")) for x in r.json()["errors"]] == [(15, "bogus"), (16, None)]
    # nothing changed: the running configuration, the file, the kernel, nothing awaits
    assert running(api) == before
    assert d.conf_path.read_text() == file_before
    assert table(gw, 4501) and not table(gw, 4502)
    assert pending(api) == {"pending": False}
    # the same with a dry run
    r = post_config(api, bad, "?dry_run=1")
    assert r.status == 400 and r.json()["line"] == 9, r
    assert d.stop() == 0
    d.assert_clean()


def test_dry_run_gives_the_diff_and_changes_nothing(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_table(gw, 4501)
    before = running(api)
    r = post_config(api, CONF % 4502, "?dry_run=1")
    assert r.status == 200, r
    j = r.json()
    assert j["valid"] and j["changes"]
    assert "-table = 4501\n+table = 4502\n" in j["diff"], j["diff"]
    assert j["diff"].startswith("--- running\n+++ posted\n@@ ")
    assert running(api) == before
    assert table(gw, 4501) and not table(gw, 4502)
    # the running configuration itself: valid, no difference
    r = post_config(api, CONF % 4501, "?dry_run=1")
    assert r.status == 200 and r.json()["diff"] == "" and not r.json()["changes"], r
    r = post_config(api, CONF % 4502, "?dry_run=maybe")
    assert r.status == 400 and r.json()["field"] == "dry_run", r
    assert d.stop() == 0
    d.assert_clean()


def test_unconfirmed_change_rolls_back(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_table(gw, 4501)
    before, file_before = running(api), d.conf_path.read_text()
    last = events(api)[-1]["id"] if events(api) else 0

    r = post_config(api, CONF % 4502, "?confirm=3s")
    assert r.status == 200, r
    assert r.json()["applied"] and r.json()["pending"]["pending"]
    assert 0 < r.json()["seconds_left"] <= 3
    # applied: the kernel and GET /api/config have it; the file does not, yet
    wait_table(gw, 4502)
    assert "table = 4502" in running(api)
    assert d.conf_path.read_text() == file_before
    p = pending(api)
    assert p["pending"] and p["who"] == "uid:0" and 0 <= p["seconds_left"] <= 3, p
    assert p["what"] == "configuration posted"
    # another change meanwhile: 409, naming what awaits
    r = post_config(api, CONF % 4503)
    assert r.status == 409 and "awaits its confirmation" in r.json()["error"], r

    # nobody confirms: back by itself, in the kernel and in GET /api/config
    wait_for(lambda: not pending(api)["pending"], timeout=15, what="the rollback")
    wait_table(gw, 4501)
    wait_for(lambda: not table(gw, 4502), what="table 4502 emptied")
    assert running(api) == before
    assert d.conf_path.read_text() == file_before
    r = api.post("/api/config/confirm")
    assert r.status == 409, r  # nothing awaits any more
    ev = [e for e in events(api, last, "config")]
    assert [e["data"]["action"] for e in ev] == ["config", "rollback"], ev
    assert ev[0]["who"] == "uid:0" and "rolls back in 3s" in ev[0]["message"]
    assert "not confirmed in time" in ev[1]["message"]
    assert d.stop() == 0
    d.assert_clean()


def test_cancel_rolls_back_now(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_table(gw, 4501)
    assert api.post("/api/config/cancel").status == 409
    r = post_config(api, CONF % 4502, "?confirm=60s")
    assert r.status == 200, r
    wait_table(gw, 4502)
    r = api.post("/api/config/cancel")
    assert r.status == 200, r
    assert not pending(api)["pending"]
    wait_table(gw, 4501)
    assert "table = 4501" in running(api)
    assert d.stop() == 0
    d.assert_clean()


def test_confirmed_change_stays_and_survives_a_restart(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_table(gw, 4501)
    file_before = d.conf_path.read_text()
    new = CONF % 4502
    r = post_config(api, new, "?confirm=60s")
    assert r.status == 200, r
    wait_table(gw, 4502)
    r = api.post("/api/config/confirm")
    assert r.status == 200, r
    assert not pending(api)["pending"]
    # the file is the posted text; the old one is kept beside it
    assert d.conf_path.read_text() == new
    assert d.conf_path.with_name(d.conf_path.name + ".bak").read_text() == file_before
    assert api.post("/api/config/confirm").status == 409
    conf_events = events(api, kind="config")
    assert conf_events[-1]["data"]["action"] == "confirm"
    assert conf_events[-1]["who"] == "uid:0"
    assert d.stop() == 0

    # a restart runs what was confirmed
    d2, api2 = start(gw, egressd_bin, conf=d.conf_path.read_text())
    wait_table(gw, 4502)
    assert "table = 4502" in running(api2)
    assert d2.stop() == 0
    d2.assert_clean()


def test_change_without_confirm_is_written_at_once(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_table(gw, 4501)
    r = post_config(api, CONF % 4502)
    assert r.status == 200 and "pending" not in r.json(), r
    wait_table(gw, 4502)
    assert d.conf_path.read_text() == CONF % 4502
    assert not pending(api)["pending"]
    assert d.stop() == 0
    d.assert_clean()


def test_kill_during_pending_confirm_comes_back_with_the_old_config(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_table(gw, 4501)
    file_before = d.conf_path.read_text()
    r = post_config(api, CONF % 4502, "?confirm=60s")
    assert r.status == 200, r
    wait_table(gw, 4502)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=10)
    assert d.conf_path.read_text() == file_before

    d2, api2 = start(gw, egressd_bin, conf=file_before)
    wait_table(gw, 4501)
    assert "table = 4501" in running(api2)
    assert not pending(api2)["pending"]
    assert d2.stop() == 0


def test_event_stream_delivers_a_transition(lab, gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_for(lambda: any(e["kind"] == "transition" and e["data"]["uplink"] == "isp1" and
                         e["data"]["to"] == "up" for e in events(api)),
             what="isp1 up in the event log")
    last = events(api)[-1]["id"]
    # ?after: an event that comes before the stream is set up is sent first, not lost
    with api.stream("/api/events/stream?kind=transition&after=%d" % last) as s:
        lab.cut(gw, "isp1")
        ev = s.next_event(timeout=10)
    assert ev["event"] == "transition", ev
    data = json.loads(ev["data"])
    assert int(ev["id"]) == data["id"] and data["id"] > last
    assert data["data"] == {"uplink": "isp1", "from": "up", "to": "down",
                            "reason": data["data"]["reason"]}
    assert data["who"] == "egressd"
    assert data["message"].startswith("uplink isp1: up -> down")

    # a client that comes back with Last-Event-ID gets what it missed first
    lab.restore(gw, "isp1")
    wait_for(lambda: events(api, data["id"], "transition"), what="isp1 back up")
    with api.stream("/api/events/stream", headers={"Last-Event-ID": str(data["id"])}) as s:
        again = s.next_event(timeout=10)
    assert int(again["id"]) > data["id"]
    assert json.loads(again["data"])["id"] == int(again["id"])
    # an id from an earlier run of egressd (ids start again at 1): all that is kept is new
    with api.stream("/api/events/stream", headers={"Last-Event-ID": "999999"}) as s:
        first = s.next_event(timeout=10)
    assert int(first["id"]) == events(api, 0)[0]["id"], first
    assert d.stop() == 0
    d.assert_clean()


def test_events_and_modules(gw, egressd_bin):
    d, api = start(gw, egressd_bin)
    wait_table(gw, 4501)
    r = api.get("/api/events?limit=1")
    assert r.status == 200, r
    j = r.json()
    assert len(j["events"]) == 1 and j["events"][0]["id"] == j["last_id"]
    for bad in ("?limit=-1", "?after=x", "?kind=nonsense"):
        r = api.get("/api/events" + bad)
        assert r.status == 400, (bad, r)
    # an error line of the log is an event
    d.write_conf("[uplink isp1]\nweight = 0\n")
    d.reload()
    d.wait_log(r"reload failed")
    wait_for(lambda: any("reload failed" in e["message"] for e in events(api, kind="error")),
             what="the error line in the event log")
    r = api.get("/api/modules")
    assert r.status == 200, r
    mods = {m["name"]: m for m in r.json()["modules"]}
    assert mods["route"]["wanted"] and mods["route"]["running"]
    assert not mods["policy"]["wanted"] and not mods["policy"]["running"]
    assert mods["policy"]["status"] is None
    assert d.stop() == 0
    d.assert_clean()
