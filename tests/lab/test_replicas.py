"""Lab test: two egress-server replicas on one PostgreSQL (a private cluster, pgcluster.py),
gateways connected to different replicas.

    gateway gw-a --- ws://127.0.0.1:PA/ws ---> replica a --+
                                                            +--- PostgreSQL (UNIX socket in
    gateway gw-b --- ws://127.0.0.1:PB/ws ---> replica b --+     the cluster's temp folder)
    admin client --- each replica's UNIX socket (root is an admin there)

The gateways are simulated (simgw.py: the real protocol over python3-websockets), the
servers and the database real.  What it shows: a change made on either replica reaches the
gateways of both (LISTEN/NOTIFY), their acknowledgements show on both replicas' API; the
database restarting loses nothing and changes flow again once the replicas reconnect; one
replica runs the resolver, and killing it (kill -9) moves the resolver to the other, which
keeps it when the first comes back.

Then the same with real gateways (egressd's agent, allowlab.py's topology: both replicas in
its srv node, gw1 connected to replica a, gw2 to b): what the clients behind either gateway
may reach follows the entries added and deleted on either replica.
"""

import asyncio
import time

import pytest

from allowlab import SERVER_ADDR, AllowLab
from egress_server import EgressServer, server_path
from pgcluster import PgCluster
from simgw import SimGateway

pytestmark = [pytest.mark.requires_root, pytest.mark.daemon]

HANG = 30.0  # a wait this long failed: a deadline against a hang, not a speed target


@pytest.fixture(scope="module")
def binary(request):
    path = server_path(request.config)
    if not path.is_file():
        pytest.fail("egress-server not found at %s (build it, or set EGRESS_SERVER)" % path,
                    pytrace=False)
    return path


@pytest.fixture
def pg():
    with PgCluster() as cluster:
        yield cluster


class Replica:
    def __init__(self, tmp, binary, name, pg):
        self.name = name
        (tmp / name).mkdir(parents=True, exist_ok=True)
        self.s = EgressServer.start_local(
            tmp / name, binary, name=name,
            settings={"server": {"name": name},
                      "store": {"backend": "postgresql", "conninfo": pg.conninfo,
                                "path": None},
                      "hub": {"ping": "500ms", "timeout": "5s"}})
        self.api = self.s.api()
        self.ws_url = "ws://%s/ws" % self.s.url.split("://", 1)[1]

    def token(self):
        return self.s.token("gateways-" + self.name, "read")

    def status(self):
        r = self.api.get("/api/status")
        assert r.status == 200, r
        return r.json()

    def leads(self):
        """Does this replica run the resolver now (its status says so)?"""
        rs = self.status().get("resolver_status") or {}
        return bool(rs.get("leader"))

    def add(self, value):
        r = self.api.post("/api/entries", {"value": value})
        assert r.status == 201, r
        return r.json()["id"]

    def delete(self, entry):
        r = self.api.delete("/api/entries/%d" % entry)
        assert r.status in (200, 204), r

    def gateways(self):
        r = self.api.get("/api/gateways")
        assert r.status == 200, r
        j = r.json()
        return {g["name"]: g for g in (j["gateways"] if isinstance(j, dict) else j)}

    def stop(self):
        if self.s.alive():
            assert self.s.stop() == 0, self.s.proc.tail(30)
        self.s.assert_clean()


@pytest.fixture
def replicas(tmp_path, binary, pg):
    a = Replica(tmp_path, binary, "a", pg)
    b = Replica(tmp_path, binary, "b", pg)
    yield a, b
    for r in (a, b):
        r.stop()


def wait_for(what, fn, timeout=HANG):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("still waiting after %ds for %s" % (timeout, what))
        time.sleep(0.05)


async def until(gw, what, pred):
    """Read (and apply) the gateway's messages until pred(gw) holds; acknowledge."""
    deadline = time.monotonic() + HANG
    while not pred(gw):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("%s still waiting for %s (holds version %d: %s)"
                                 % (gw.name, what, gw.version, sorted(gw.items)))
        try:
            await gw.recv(timeout=left)
        except asyncio.TimeoutError:
            continue
    await gw.ack()


def holds(key):
    return lambda gw: key in gw.items


def lacks(key):
    return lambda gw: key not in gw.items


def test_gateways_on_both_replicas_get_every_change(replicas, pg):
    a, b = replicas

    async def scenario():
        gws = [SimGateway(a.ws_url, "gw-a", token=a.token()),
               SimGateway(b.ws_url, "gw-b", token=b.token())]
        for gw in gws:
            first = await gw.connect()
            assert first["type"] == "snapshot", first
            await gw.ack()

        e1 = str(a.add("1.1.1.1"))   # on a
        e2 = str(b.add("2.2.2.2"))   # on b
        for gw in gws:
            await until(gw, "both entries", lambda g: e1 in g.items and e2 in g.items)
        assert gws[0].items[e2]["dst"] == "2.2.2.2/32"
        assert gws[1].items[e1]["dst"] == "1.1.1.1/32"

        b.delete(int(e1))              # a's entry deleted on b
        for gw in gws:
            await until(gw, "entry %s deleted" % e1, lacks(e1))
            assert e2 in gw.items
        version = max(gw.version for gw in gws)
        assert all(gw.version == version for gw in gws)
        assert a.status()["version"] == b.status()["version"] == version

        # Each replica shows both gateways, with the version they acknowledged.  The waits
        # run in a thread: the loop must go on answering the replicas' pings meanwhile (a
        # gateway silent for [hub] timeout is dropped, and a wait under load may be longer).
        for r in (a, b):
            await asyncio.to_thread(
                wait_for, "replica %s to show both gateways at version %d" % (r.name, version),
                lambda: all(g in r.gateways() and r.gateways()[g]["version"] == version
                            for g in ("gw-a", "gw-b")))
        assert a.gateways()["gw-a"]["replica"] == "a"
        assert a.gateways()["gw-b"]["replica"] == "b"

        # The database restarts: nothing is lost; once the replicas are back, changes flow
        # again to the gateways (which stayed connected to their replicas).
        # While it is down, the API says so with 503 and Retry-After (not 500).
        def restart_database():
            pg.stop()
            r = wait_for("replica a to answer 503 while the database is down",
                         lambda: (lambda x: x if x.status == 503 else None)(
                             a.api.post("/api/entries", {"value": "4.4.4.4"})))
            assert "not reachable" in r.json()["error"], r
            assert r.headers.get("retry-after") == "1", r.headers
            pg.start()
            return wait_for("replica a to take an entry after the restart",
                            lambda: _try_add(a))
        e3 = await asyncio.to_thread(restart_database)
        for gw in gws:
            await until(gw, "entry %s added after the database restarted" % e3, holds(e3))
            assert e2 in gw.items and e1 not in gw.items
        for gw in gws:
            await gw.close()

    asyncio.run(asyncio.wait_for(scenario(), 4 * HANG))


def _try_add(replica):
    """Add an entry; None while the store is still reconnecting (the API answers 5xx)."""
    r = replica.api.post("/api/entries", {"value": "3.3.3.3"})
    if r.status >= 500:
        return None
    assert r.status == 201, r
    return str(r.json()["id"])


def test_killing_the_resolver_replica_moves_the_resolver(replicas):
    """One replica runs the resolver (/api/status resolver_status.leader); kill -9 it and
    the other takes over; the killed one, restarted, does not take it back."""
    a, b = replicas
    leader = wait_for("one replica to run the resolver",
                      lambda: [r for r in (a, b) if r.leads()])
    assert len(leader) == 1, "both replicas run the resolver"
    dead, other = (a, b) if leader[0] is a else (b, a)
    assert not other.leads()

    dead.s.kill9()
    wait_for("replica %s to take the resolver over" % other.name, other.leads)

    # The killed one comes back: it does not take the resolver back while the other lives.
    dead.s = dead.s.restart()
    dead.api = dead.s.api()
    assert not dead.leads()
    assert other.leads()
    # And the survivor still serves: a change made there shows on the one that came back.
    e = other.add("4.4.4.4")
    wait_for("replica %s to list entry %d" % (dead.name, e),
             lambda: dead.api.get("/api/entries/%d" % e).status == 200)


def test_real_gateways_on_two_replicas(lab, egressd_bin, binary, pg):
    """The same with egressd's agent on two gateways of allowlab.py, each connected to
    another replica: what a client behind either gateway may reach follows the changes
    made on either replica."""
    al = AllowLab(lab, egressd_bin)
    reps = {}
    for name, port in (("a", 8091), ("b", 8092)):
        reps[name] = EgressServer.start(
            lab["srv"], binary, name=name, port=port,
            settings={"server": {"name": name},
                      "store": {"backend": "postgresql", "conninfo": pg.conninfo,
                                "path": None},
                      "api": {"listen": "%s:%d" % (SERVER_ADDR, port)}})
    al.start_gateway("gw1", token=reps["a"].token("gw1", "read"),
                     url="ws://%s:8091/ws" % SERVER_ADDR)
    al.start_gateway("gw2", token=reps["b"].token("gw2", "read"),
                     url="ws://%s:8092/ws" % SERVER_ADDR)

    def add(rep, value):
        r = reps[rep].api().post("/api/entries", {"value": value})
        assert r.status == 201, r
        return r.json()["id"]

    one = add("a", "11.0.0.1")
    add("b", "11.0.0.2")
    for client in ("c1", "c2"):
        al.wait_reachable(client, "11.0.0.1", timeout=HANG)
        al.wait_reachable(client, "11.0.0.2", timeout=HANG)
        assert al.fetch(client, "11.0.0.3") is None  # never added

    r = reps["b"].api().delete("/api/entries/%d" % one)  # a's entry, deleted on b
    assert r.status in (200, 204), r
    for client in ("c1", "c2"):
        al.wait_blocked(client, "11.0.0.1", timeout=HANG)
        assert al.fetch(client, "11.0.0.2") == "web"
    for d in list(al.gw.values()) + list(reps.values()):
        assert d.stop() == 0, d.proc.tail(30)
        d.assert_clean()
