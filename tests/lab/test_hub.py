"""Lab tests of egress-server's hub (src/server/hub.c): simulated gateways (simgw.py, the real
protocol over python3-websockets) against the real egress-server, on loopback.

    simulated gateways (this process) --- ws://127.0.0.1:PORT/ws ---> egress-server
                                                                      (its own temp dir,
    admin API client (curl) ------------- http://127.0.0.1:PORT/api -->  SQLite store)

What they show: a snapshot on the first hello; deltas as entries are added and deleted; a
gateway back from an absence gets exactly the deletions (and additions) it missed; an
unknown or too old version gets a snapshot; acks show as version and lag on /api/gateways;
a silent gateway is dropped at the heartbeat timeout while one that answers pings stays;
a wrong token and a wrong client certificate are refused (and the refusals audited);
protocol errors are answered with an error, then the connection closes.
"""

import asyncio
import ssl
import subprocess
import time

import pytest
import websockets

from egress_server import EgressServer, server_path
from simgw import ProtocolError, SimGateway, silent_gateway

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

# long enough for a test that blocks its loop on an API call now and then; the heartbeat's
# own test has short ones and never blocks its loop
HUB = {"hub": {"ping": "2s", "timeout": "20s"}}


class Server:
    """One egress-server on loopback, with an admin client (its UNIX socket) and the hub's
    URLs."""

    def __init__(self, tmp, binary, settings=None):
        sections = {k: dict(v) for k, v in HUB.items()}
        for sec, keys in (settings or {}).items():
            sections.setdefault(sec, {}).update(keys)
        tmp.mkdir(parents=True, exist_ok=True)
        self.s = EgressServer.start_local(tmp, binary, settings=sections)
        self.api = self.s.api()
        host = self.s.url.split("://", 1)[1]
        self.ws_url = "ws://%s/ws" % host
        self.wss_url = "wss://%s/ws" % host

    def token(self, name="gateways"):
        return self.s.token(name, "read")

    def stop(self):
        assert self.s.stop() == 0, self.s.proc.tail(30)
        self.s.assert_clean()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def wait_for(what, fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def add(srv, value):
    r = srv.api.post("/api/entries", {"value": value})
    assert r.status == 201, r
    return r.json()["id"]


def delete(srv, entry):
    r = srv.api.delete("/api/entries/%d" % entry)
    assert r.status in (200, 204), r


def version(srv):
    r = srv.api.get("/api/status")
    assert r.status == 200, r
    return r.json()["version"]


def gateways(srv):
    r = srv.api.get("/api/gateways")
    assert r.status == 200, r
    j = r.json()
    return {g["name"]: g for g in (j["gateways"] if isinstance(j, dict) else j)}


def read_token(srv):
    return srv.token()


@pytest.fixture(scope="module")
def binary(request):
    path = server_path(request.config)
    if not path.is_file():
        pytest.fail("egress-server not found at %s (build it, or set EGRESS_SERVER)" % path,
                    pytrace=False)
    return path


@pytest.fixture
def srv(binary, tmp_path):
    s = Server(tmp_path, binary)
    yield s
    s.stop()


def gw(srv, name, token, **kw):
    return SimGateway(srv.ws_url, name, token=token, **kw)


def test_snapshot_then_deltas(srv):
    a = add(srv, "8.8.4.0/24")
    b = add(srv, "1.1.1.7")
    token = read_token(srv)

    async def scenario():
        g = gw(srv, "gw1", token)
        msg = await g.connect()
        assert msg["type"] == "snapshot"
        assert msg["version"] == version(srv)
        assert set(g.items) == {str(a), str(b)}
        assert g.items[str(a)]["dst"] == "8.8.4.0/24"
        await g.ack()

        c = add(srv, "9.9.9.0/24")
        msg = await g.recv()
        assert msg["type"] == "delta" and msg["from"] < msg["version"]
        assert [it["key"] for it in msg["set"]] == [str(c)] and msg["del"] == []
        await g.ack()

        delete(srv, b)
        msg = await g.recv()
        assert msg["type"] == "delta" and msg["set"] == [] and msg["del"] == [str(b)]
        assert set(g.items) == {str(a), str(c)}
        await g.ack()
        v = msg["version"]
        wait_for("gw1 at version %d" % v,
                 lambda: gateways(srv).get("gw1", {}).get("version") == v)
        await g.close()

    run(scenario())


def test_reconnect_gets_exactly_what_it_missed(srv):
    ids = [add(srv, "1.1.1.%d" % i) for i in (1, 2, 3, 4)]
    token = read_token(srv)

    async def scenario():
        g = gw(srv, "gw1", token)
        await g.connect()
        await g.ack()
        held = g.version
        await g.close()

        # away: two deletions and one addition
        delete(srv, ids[0])
        delete(srv, ids[2])
        new = add(srv, "8.8.4.0/24")

        msg = await g.connect()
        assert msg["type"] == "delta" and msg["from"] == held
        assert sorted(msg["del"]) == sorted([str(ids[0]), str(ids[2])])
        assert [it["key"] for it in msg["set"]] == [str(new)]
        assert set(g.items) == {str(ids[1]), str(ids[3]), str(new)}

        # holding the current version: an empty delta says it is up to date
        await g.ack()
        await g.close()
        msg = await g.connect()
        assert msg == {"type": "delta", "from": g.version, "version": g.version,
                       "set": [], "del": []}
        await g.close()

    run(scenario())


def test_unknown_or_too_old_version_gets_snapshot(binary, tmp_path):
    s = Server(tmp_path, binary, {"store": {"tombstone_max": 1}})
    try:
        ids = [add(s, "1.1.1.%d" % i) for i in (1, 2, 3)]
        token = read_token(s)

        async def scenario():
            g = gw(s, "gw1", token)
            msg = await g.connect(version=version(s) + 1000)
            assert msg["type"] == "snapshot"
            assert set(g.items) == {str(i) for i in ids}
            held = g.version
            await g.close()

            delete(s, ids[0])
            delete(s, ids[1])  # the first deletion's tombstone is gone (tombstone_max = 1)
            msg = await g.connect(version=held)
            assert msg["type"] == "snapshot"
            assert set(g.items) == {str(ids[2])}
            await g.close()

            # within what the tombstones cover: a delta
            g2 = gw(s, "gw2", token)
            await g2.connect()
            held = g2.version
            await g2.close()
            delete(s, ids[2])
            msg = await g2.connect(version=held)
            assert msg["type"] == "delta" and msg["del"] == [str(ids[2])]
            await g2.close()

        run(scenario())
    finally:
        s.stop()


def test_acks_show_as_version_and_lag(srv):
    add(srv, "1.1.1.1")
    token = read_token(srv)

    async def scenario():
        g = gw(srv, "gw1", token)
        await g.connect()
        await g.ack()
        v0 = g.version
        wait_for("gw1 listed", lambda: gateways(srv).get("gw1", {}).get("version") == v0)
        add(srv, "1.1.1.2")
        add(srv, "1.1.1.3")
        await g.recv()
        await g.recv()
        # not acknowledged yet: two versions behind
        info = wait_for("gw1 lagging", lambda: (lambda x: x if x.get("lag") == 2 else None)(
            gateways(srv).get("gw1", {})))
        assert info["version"] == v0 and info["connected"] is True
        assert info["last_seen"]
        await g.ack()
        info = wait_for("gw1 caught up", lambda: (lambda x: x if x.get("lag") == 0 else None)(
            gateways(srv).get("gw1", {})))
        assert info["version"] == g.version == version(srv)

        # acknowledging what was never sent is a protocol error
        await g.ack(g.version + 5)
        msg = await g.recv_raw()
        assert msg["type"] == "error" and "ack of version" in msg["error"]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(g.ws.recv(), 5)
        wait_for("gw1 disconnected", lambda: gateways(srv)["gw1"]["connected"] is False)

    run(scenario())


def test_heartbeat_timeout_drops_a_silent_gateway(binary, tmp_path):
    s = Server(tmp_path, binary, {"hub": {"ping": "300ms", "timeout": "1500ms"}})
    add(s, "1.1.1.8")  # at version 0 every answer is a snapshot
    token = read_token(s)

    async def listed(name):
        """Its record on /api/gateways (the call off the loop: pings are answered)."""
        return (await asyncio.to_thread(gateways, s)).get(name)

    async def scenario():
        alive = gw(s, "alive", token)
        await alive.connect()
        sock = silent_gateway(s.ws_url, "silent", token)
        try:
            deadline = time.monotonic() + 15
            while not (await listed("silent") or {}).get("connected") is False:
                assert time.monotonic() < deadline, "silent gateway never dropped"
                await asyncio.sleep(0.1)
            assert (await listed("alive"))["connected"] is True
            # and it still gets changes
            await asyncio.to_thread(add, s, "1.1.1.9")
            msg = await alive.recv()
            assert msg["type"] == "delta"
        finally:
            sock.close()
        await alive.close()

    try:
        run(scenario())
    finally:
        s.stop()


def test_an_idle_gateway_outlives_the_api_timeout(binary, tmp_path):
    """Nothing to send for longer than [api] timeout: the heartbeat keeps it connected."""
    s = Server(tmp_path, binary, {"api": {"timeout": "1s"},
                                  "hub": {"ping": "300ms", "timeout": "3s"}})
    try:
        add(s, "1.1.1.8")
        token = read_token(s)

        async def scenario():
            g = gw(s, "idle", token)
            await g.connect()
            await g.ack()
            await asyncio.sleep(4)  # four [api] timeouts, answering only pings
            assert gateways(s)["idle"]["connected"] is True
            add(s, "1.1.1.9")
            msg = await g.recv()
            assert msg["type"] == "delta"
            await g.close()

        run(scenario())
    finally:
        s.stop()


def test_protocol_errors_close(srv):
    token = read_token(srv)

    async def expect_error(first, words):
        g = gw(srv, "gw1", token)
        await g.open()
        await g.send(first)
        msg = await g.recv_raw()
        assert msg["type"] == "error" and words in msg["error"], msg
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(g.ws.recv(), 5)
        assert g.ws.close_code == 1008

    async def scenario():
        await expect_error("not json", "bad message")
        await expect_error({"type": "hello", "protocol": 2, "gateway": "gw1", "version": 0},
                           "protocol 2")
        await expect_error({"type": "ack", "version": 0}, "ack before hello")
        await expect_error({"type": "snapshot", "version": 1, "items": []},
                           "does not send a snapshot")

    run(scenario())


def audit_actions(srv, action):
    r = srv.api.get("/api/audit")
    assert r.status == 200, r
    return [a for a in r.json()["audit"] if a["action"] == action]


def test_wrong_token_refused(srv):
    token = read_token(srv)

    async def scenario():
        for bad in ("not-a-token", None):
            g = gw(srv, "gw1", bad)
            with pytest.raises(websockets.InvalidStatusCode) as e:
                await g.open()
            assert e.value.status_code == 401
        # the right one is let in
        g = gw(srv, "gw1", token)
        msg = await g.connect()
        assert msg["type"] == "snapshot"
        await g.close()

    run(scenario())
    refused = audit_actions(srv, "gateway-refused")
    assert [a["detail"]["reason"] for a in refused] == [
        "unknown token", "authentication required: a bearer token or a client certificate"]
    assert all(a["from"] == "127.0.0.1" for a in refused)
    assert "gw1" in gateways(srv) and len(gateways(srv)) == 1


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / (name + ".key")), "-out", str(d / (name + ".pem")),
            "-days", "2", "-subj", "/CN=" + name)


def make_cert(d, ca, name, server=False):
    key, csr, pem = (d / (name + ext) for ext in (".key", ".csr", ".pem"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", "/CN=" + name)
    ext = d / (name + ".ext")
    ext.write_text("subjectAltName=IP:127.0.0.1\n" if server else
                   "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(d / (ca + ".pem")), "-CAkey",
            str(d / (ca + ".key")), "-CAcreateserial", "-out", str(pem), "-days", "2",
            "-extfile", str(ext))
    return str(pem), str(key)


def test_client_certificate(binary, tmp_path):
    pki = tmp_path / "pki"
    pki.mkdir()
    make_ca(pki, "ca")
    make_ca(pki, "otherca")
    scert, skey = make_cert(pki, "ca", "server", server=True)
    good = make_cert(pki, "ca", "gw-cert")
    wrong = make_cert(pki, "otherca", "gw-wrong")
    s = Server(tmp_path / "srv", binary, {"api": {
        "tls_cert": scert, "tls_key": skey, "tls_client_ca": pki / "ca.pem"}})

    def ctx(cert):
        c = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        if cert:
            c.load_cert_chain(*cert)
        return c

    async def scenario():
        g = SimGateway(s.wss_url, "gw-a", ssl=ctx(good))
        msg = await g.connect()
        assert msg["type"] == "snapshot"
        await g.close()
        # a certificate of another CA names nobody: refused like none at all
        for cert in (wrong, None):
            g = SimGateway(s.wss_url, "gw-b", ssl=ctx(cert))
            with pytest.raises(websockets.InvalidStatusCode) as e:
                await g.connect()
            assert e.value.status_code == 401
        return True

    try:
        assert run(scenario())
        gws = gateways(s)
        assert "gw-a" in gws and "gw-b" not in gws
        refused = audit_actions(s, "gateway-refused")
        assert [a["detail"]["status"] for a in refused] == [401, 401]
    finally:
        s.stop()


def test_delta_from_wrong_version_is_caught_by_the_gateway():
    """The simulated gateway's own check (used by every test above) can fail."""
    g = SimGateway("ws://127.0.0.1:1/ws", "x", version=5)
    with pytest.raises(ProtocolError):
        g.apply({"type": "delta", "from": 4, "version": 6, "set": [], "del": []})
