"""The ddns module: each healthy gateway's public address, published under one name.

                                  +-- g1 (10.0.0.10: health :9999, public address :8000) --+
    gw (egressd route) -- br0 ----+-- g2 ... g5 (10.0.0.11 .. 10.0.0.14)                  +-- inet
           10.0.0.1/24                                                                      BIND 11.0.0.53
                                                                                            fake Dynu 11.0.0.54:8080

Each gateway gi masquerades towards inet from 172.16.i.1, and its public address service
answers that address: g1 as plain text, g2..g5 as JSON under public_ip, ip_address, ip_addr
and ip.  egressd asks each gateway's own check address (no -public-ip-service-hostname), as
gateway-route-manager does with gluetun.  BIND serves ddns.test and takes updates signed
with the TSIG key; the fake Dynu implements the calls egressd makes, with Dynu's errors.
One topology for the module; each test runs its own egressd and stops it.
"""

import base64
import json
import re
import sys

import pytest

from authdns import AuthDNS
from egressd import Egressd, api_args
from lab import Lab, is_root, wait_for

from routelab import HERE, NAT

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

GWS = ["10.0.0.1%d" % i for i in range(5)]
PUBLIC = ["172.16.%d.1" % (i + 1) for i in range(5)]
MODES = ["plain", "public_ip", "ip_address", "ip_addr", "ip"]
BIND = "11.0.0.53"
DYNU = "11.0.0.54"
ZONE = "ddns.test"
SECRET = base64.b64encode(b"egress lab tsig secret 32 bytes!").decode()
WRONG = base64.b64encode(b"not the secret that named knows!").decode()
API_KEY = "dynu-lab-key-4711"
VRRP = "10.0.0.99"


@pytest.fixture(scope="module")
def dlab():
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    with Lab() as lab:
        spec = "".join("gw:p%d -- g%d:eth0 %s/24\n" % (i + 1, i + 1, GWS[i]) for i in range(5))
        spec += "".join("g%d:eth1 %s/24 -- inet:g%d 172.16.%d.2/24\ng%d forward\n"
                        % (i + 1, PUBLIC[i], i + 1, i + 1, i + 1) for i in range(5))
        lab.apply(spec)
        gw, inet = lab["gw"], lab["inet"]
        gw.ip_batch(["link add br0 type bridge", "link set br0 up"] +
                    ["link set p%d master br0" % (i + 1) for i in range(5)] +
                    ["addr add 10.0.0.1/24 dev br0", "route add default via 10.0.0.10"])
        inet.ip("addr", "add", BIND + "/32", "dev", "lo")
        inet.ip("addr", "add", DYNU + "/32", "dev", "lo")
        health = {}
        for i in range(5):
            g = lab["g%d" % (i + 1)]
            g.ip("route", "add", "11.0.0.0/24", "via", "172.16.%d.2" % (i + 1))
            g.run(["nft", "-f", "-"], input=NAT % "ip")
            health[i] = g.http_server(9999, name="g%d" % (i + 1))
            g.spawn_daemon([sys.executable, str(HERE / "pubipsrv.py"), "8000", PUBLIC[i],
                            MODES[i]], name="pubip", port=8000)
        dns = AuthDNS.start(inet, {ZONE: []}, keys={"egress-key": ("hmac-sha256", SECRET)},
                            updates={ZONE: "egress-key"})
        inet.spawn_daemon([sys.executable, str(HERE / "fakedynu.py"), "8080", API_KEY, ZONE],
                          name="fakedynu", port=8080)
        yield lab, dns, health


def start(lab, name, *flags, env=None):
    gw = lab["gw"]
    key = lab.dir / ("%s.key" % name)
    key.write_text(SECRET + "\n")
    argv = [str(pytest.egressd_bin), "route", "-d", "-start-ip", GWS[0], "-end-ip", GWS[4],
            "-check-period", "1s", "-timeout", "300ms", "-metrics-port", "9090",
            "-public-ip-service-scheme", "http", "-public-ip-service-port", "8000",
            "-public-ip-service-path", "/ip", "-ddns-record-ttl", "30s"] + \
        [str(f) for f in flags] + api_args(gw, name)
    kw = {"env": env} if env else {}
    proc = gw.spawn_daemon(argv, name=name, log_match=r"egressd \S+ ready: ", timeout=10, **kw)
    return Egressd(gw, pytest.egressd_bin, None, proc)


def rfc2136_flags(lab, name, host, secret=SECRET):
    key = lab.dir / ("%s.tsig" % name)
    key.write_text(secret + "\n")
    return ["-ddns-provider", "rfc2136", "-ddns-hostname", host, "-ddns-server", BIND,
            "-ddns-tsig-key-name", "egress-key", "-ddns-tsig-secret-file", key]


def metric(gw, name, labels=""):
    text = gw.curl("http://127.0.0.1:9090/metrics").stdout
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def records(dns, name, rtype="A"):
    return sorted(dns.query(name, rtype).split())


def serial(dns):
    return dns.query(ZONE, "SOA").split()[2]


@pytest.fixture(autouse=True)
def _egressd_bin(egressd_bin):
    pytest.egressd_bin = egressd_bin


def test_rfc2136_follows_uplinks_and_skips_unchanged(dlab):
    lab, dns, health = dlab
    gw = lab["gw"]
    d = start(lab, "egressd", *rfc2136_flags(lab, "egressd", "gw." + ZONE),
              "-public-ip-interval", "1s")
    try:
        wait_for(lambda: records(dns, "gw." + ZONE) == sorted(PUBLIC), timeout=15,
                 what="BIND to hold every gateway's public address")
        # each gateway's address on the API (every reply format was read)
        out = gw.run(["curl", "-sf", "--unix-socket", str(d.api_socket),
                      "http://egressd/api/uplinks"]).stdout
        ups = {u["name"]: u for u in json.loads(out)["uplinks"]}
        assert [ups[g]["public_ip"] for g in GWS] == PUBLIC
        assert metric(gw, "unique_public_ips_count") == 5
        assert metric(gw, "public_ip_fetch_total", '{gateway_ip="10.0.0.12",status="success"}') >= 1

        # a gateway down: its address leaves the name; back up: it returns
        health[1].stop()
        wait_for(lambda: records(dns, "gw." + ZONE) == sorted(PUBLIC[:1] + PUBLIC[2:]),
                 timeout=15, what="g2's address to leave the name")
        health[1] = lab["g2"].http_server(9999, name="g2")
        wait_for(lambda: records(dns, "gw." + ZONE) == sorted(PUBLIC), timeout=15,
                 what="g2's address to come back")

        # nothing changes: no update goes out, each refetch counts as skipped
        wait_for(lambda: metric(gw, "ddns_updates_skipped_total", '{reason="unchanged"}') >= 1,
                 timeout=10, what="a skipped update")
        sent = metric(gw, "ddns_updates_total", '{provider="rfc2136",status="success"}')
        skipped = metric(gw, "ddns_updates_skipped_total", '{reason="unchanged"}')
        before = serial(dns)
        wait_for(lambda: metric(gw, "ddns_updates_skipped_total", '{reason="unchanged"}')
                 >= skipped + 3, timeout=15, what="three more skipped updates")
        assert metric(gw, "ddns_updates_total", '{provider="rfc2136",status="success"}') == sent
        assert serial(dns) == before
        assert SECRET not in d.log()
    finally:
        assert d.stop() == 0
    d.assert_clean()


def test_rfc2136_wrong_key_refused(dlab):
    lab, dns, health = dlab
    gw = lab["gw"]
    d = start(lab, "egressd-bad", *rfc2136_flags(lab, "egressd-bad", "bad." + ZONE, WRONG))
    try:
        d.wait_log(r"ddns: bad\.ddns\.test: rfc2136 update failed: the server answered "
                   r"NOTAUTH \(TSIG BAD(SIG|KEY)\)", timeout=15)
        assert metric(gw, "ddns_updates_total", '{provider="rfc2136",status="failure"}') >= 1
        assert metric(gw, "ddns_updates_total", '{provider="rfc2136",status="success"}') == 0
        assert records(dns, "bad." + ZONE) == []
        assert WRONG not in d.log()
    finally:
        assert d.stop() == 0
    d.assert_clean()


def test_require_ip_address_gate(dlab):
    lab, dns, health = dlab
    gw = lab["gw"]
    d = start(lab, "egressd-vrrp", *rfc2136_flags(lab, "egressd-vrrp", "vrrp." + ZONE),
              "-ddns-require-ip-address", VRRP)
    try:
        wait_for(lambda: (metric(gw, "ddns_updates_skipped_total",
                                 '{reason="require_ip_address"}') or 0) >= 1,
                 timeout=15, what="an update held back by the gate")
        assert records(dns, "vrrp." + ZONE) == []
        gw.ip("addr", "add", VRRP + "/32", "dev", "br0")
        wait_for(lambda: records(dns, "vrrp." + ZONE) == sorted(PUBLIC), timeout=15,
                 what="the master to publish")
        gw.ip("addr", "del", VRRP + "/32", "dev", "br0")
        d.wait_log(r"ddns: 10\.0\.0\.99 is on no local interface", timeout=5)
        held = metric(gw, "ddns_updates_skipped_total", '{reason="require_ip_address"}')
        health[4].stop()
        wait_for(lambda: metric(gw, "ddns_updates_skipped_total",
                                '{reason="require_ip_address"}') > held,
                 timeout=15, what="g5's departure held back")
        assert records(dns, "vrrp." + ZONE) == sorted(PUBLIC)
        gw.ip("addr", "add", VRRP + "/32", "dev", "br0")
        wait_for(lambda: records(dns, "vrrp." + ZONE) == sorted(PUBLIC[:4]), timeout=15,
                 what="the master again to publish without g5")
    finally:
        gw.ip("addr", "del", VRRP + "/32", "dev", "br0", check=False)
        health[4] = lab["g5"].http_server(9999, name="g5")
        assert d.stop() == 0
    d.assert_clean()


def dynu_state(lab):
    return json.loads(lab["inet"].run(["curl", "-sf", "http://%s:8080/state" % DYNU]).stdout)


def test_dynudns(dlab):
    lab, dns, health = dlab
    gw, inet = lab["gw"], lab["inet"]
    seed = [{"id": 1, "nodeName": "gw", "recordType": "A", "ipv4Address": "198.51.100.99",
             "ttl": 60, "state": True},
            {"id": 2, "nodeName": "other", "recordType": "A", "ipv4Address": "198.51.100.7",
             "ttl": 60, "state": True}]
    inet.run(["curl", "-sf", "-X", "POST", "--data", json.dumps(seed),
              "http://%s:8080/state" % DYNU])
    flags = ["-ddns-provider", "dynudns", "-ddns-hostname", "gw." + ZONE,
             "-ddns-dynu-url", "http://%s:8080/v2" % DYNU]

    def gw_records():
        return sorted(r["ipv4Address"] for r in dynu_state(lab)["records"]
                      if r["nodeName"] == "gw" and r["recordType"] == "A")

    d = start(lab, "egressd-dynu", *flags, env={"DDNS_PASSWORD": API_KEY})
    try:
        wait_for(lambda: gw_records() == sorted(PUBLIC), timeout=15,
                 what="the fake Dynu to hold every gateway's public address")
        assert any(r["nodeName"] == "other" for r in dynu_state(lab)["records"])
        health[2].stop()
        wait_for(lambda: gw_records() == sorted(PUBLIC[:2] + PUBLIC[3:]), timeout=15,
                 what="g3's record deleted")
        health[2] = lab["g3"].http_server(9999, name="g3")
        wait_for(lambda: gw_records() == sorted(PUBLIC), timeout=15, what="g3's record back")
        assert API_KEY not in d.log()
    finally:
        assert d.stop() == 0
    d.assert_clean()

    # a wrong key: Dynu's message is reported, the key is not
    d = start(lab, "egressd-dynu-bad", *flags, "-ddns-password", "not-the-key")
    try:
        d.wait_log(r"dynudns update failed: getroot: status 401: Invalid API credentials\.",
                   timeout=15)
        assert metric(gw, "ddns_updates_total", '{provider="dynudns",status="failure"}') >= 1
        assert "not-the-key" not in d.log()
    finally:
        assert d.stop() == 0
    d.assert_clean()


def test_reload_unchanged_and_service_credentials(dlab):
    """The public address service's basic-auth credentials reach every gateway's service
    (and stay out of the log); a reload that changes nothing asks the addresses again but
    sends no update: what was published is kept over the module's restart."""
    lab, dns, health = dlab
    gw = lab["gw"]
    password = "pub-ip-pass-0815"
    d = start(lab, "egressd-reload", *rfc2136_flags(lab, "egressd-reload", "reload." + ZONE),
              "-public-ip-service-username", "lab-user",
              "-public-ip-service-password", password)
    try:
        wait_for(lambda: records(dns, "reload." + ZONE) == sorted(PUBLIC), timeout=15,
                 what="BIND to hold every gateway's public address")
        want = "Basic " + base64.b64encode(("lab-user:" + password).encode()).decode()
        for i in range(5):
            seen = lab["g%d" % (i + 1)].run(["curl", "-sf", "http://127.0.0.1:8000/auth"]).stdout
            assert json.loads(seen) == want, (i, seen)
        assert password not in d.log()

        def fetched():
            text = gw.curl("http://127.0.0.1:9090/metrics").stdout
            return sum(float(v) for v in re.findall(
                r'^public_ip_fetch_total\{gateway_ip="[^"]+",status="success"\} (\S+)$',
                text, re.M))

        wait_for(lambda: (metric(gw, "ddns_updates_skipped_total", '{reason="unchanged"}')
                          or 0) >= 1, timeout=10, what="the skip that follows the update")
        sent = metric(gw, "ddns_updates_total", '{provider="rfc2136",status="success"}')
        skipped = metric(gw, "ddns_updates_skipped_total", '{reason="unchanged"}')
        asked, before = fetched(), serial(dns)
        d.reload()
        d.wait_log(r"reload 1: ", timeout=10)
        # every gateway asked again, then the set is compared: unchanged, no update
        wait_for(lambda: fetched() >= asked + 5, timeout=15, what="the addresses asked again")
        wait_for(lambda: metric(gw, "ddns_updates_skipped_total", '{reason="unchanged"}')
                 > skipped, timeout=10, what="the set found unchanged after the reload")
        assert metric(gw, "ddns_updates_total", '{provider="rfc2136",status="success"}') == sent
        assert metric(gw, "ddns_updates_total", '{provider="rfc2136",status="failure"}') == 0
        assert serial(dns) == before
        assert records(dns, "reload." + ZONE) == sorted(PUBLIC)
    finally:
        assert d.stop() == 0
    d.assert_clean()
