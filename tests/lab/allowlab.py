"""The allowlist's lab: egress-server, two gateways running egressd's [allowlist] agent, their
clients, and an "internet" with a DNS server and web servers.  Shared by test_allowlist.py
and the other allowlist tests (server, resolver, replicas) and bench/allowlist.py.

     c1 10.1.0.2 fd01::2 --lan0-- gw1 (egressd) --wan0-- g1 +
                                                             +-- inet: web 11.0.0.1-20,
     c2 10.2.0.2 fd02::2 --lan0-- gw2 (egressd) --wan0-- g2 +   2a00:1::1-20 (namesrv :80 and
                                                             |   :8080), net 11.0.3.0/24, DNS
                            srv (egress-server) 172.16.9.2 -srv   dnsmasq on 11.0.0.53
                                                                  (zone in a hosts file)

The web servers answer with their name ("web" on :80, "alt" on :8080) and the client's
address; the gateways masquerade, so inet sees the gateway's address.  Every address the
tests allow is a public one (11.0.0.0/8, 2a00:1::/64): documentation and private ranges are
refused by the server and skipped by the agents.  Clients use their gateway's DNS forwarder
([dns] on the LAN address), which learns the addresses of allowed names.

    with Lab() as lab:
        al = AllowLab(lab, egressd_bin, server)   # server: an egress_server.EgressServer
        al.zone({"www.allowed.test": ["11.0.0.1", "2a00:1::1"]})
        al.start_gateways(token)
        assert al.fetch("c1", "11.0.0.1") == "web"

What it must not do: anything outside its namespaces.
"""

import json
from pathlib import Path

from egressd import Egressd
from lab import wait_for

HERE = Path(__file__).resolve().parent
DNS = "11.0.0.53"
SERVER_ADDR = "172.16.9.2"
WEB = ["11.0.0.%d" % i for i in range(1, 21)]
WEB6 = ["2a00:1::%x" % i for i in range(1, 21)]
NET = "11.0.3.0/24"
METRICS_PORT = 9109
GATEWAYS = {"gw1": ("c1", "10.1.0", "fd01"), "gw2": ("c2", "10.2.0", "fd02")}

SPEC = """
    c1:eth0 10.1.0.2/24 fd01::2/64 -- gw1:lan0 10.1.0.1/24 fd01::1/64
    c2:eth0 10.2.0.2/24 fd02::2/64 -- gw2:lan0 10.2.0.1/24 fd02::1/64
    gw1:wan0 172.16.1.1/24 2a00:f1::1/64 -- inet:g1 172.16.1.2/24 2a00:f1::2/64
    gw2:wan0 172.16.2.1/24 2a00:f2::1/64 -- inet:g2 172.16.2.2/24 2a00:f2::2/64
    srv:eth0 172.16.9.2/24 -- inet:srv 172.16.9.1/24
    inet forward
    c1 default via 10.1.0.1
    c1 default via fd01::1
    c2 default via 10.2.0.1
    c2 default via fd02::1
    gw1 default via 172.16.1.2
    gw1 default via 2a00:f1::2
    gw2 default via 172.16.2.2
    gw2 default via 2a00:f2::2
    srv default via 172.16.9.1
    inet route 10.1.0.0/24 via 172.16.1.1
    inet route 10.2.0.0/24 via 172.16.2.1
"""


def gateway_conf(gw, state_dir, server_url, token=None, extra=""):
    """egress.conf of gateway gw: the DNS forwarder on its LAN, the agent for its client
    subnet, its list kept in state_dir, metrics on loopback.  server_url None: no server
    (the kept list only).  extra: more [allowlist] keys."""
    _, v4, v6 = GATEWAYS[gw]
    lines = ["[global]", "metrics_port = %d" % METRICS_PORT, "metrics_address = 127.0.0.1", "",
             "[dns]", "address = %s.1" % v4, "port = 53", "upstream = %s" % DNS,
             "allow = %s.0/24" % v4, "allow = %s::/64" % v6, "cache_size = 0", "",
             "[allowlist]", "clients = %s.0/24" % v4, "clients = %s::/64" % v6,
             "name = %s" % gw, "reconnect_min = 200ms", "reconnect_max = 2s",
             "ping = 1s", "timeout = 3s", "dns_ttl_min = 5s", "state_dir = %s" % state_dir]
    if server_url:
        lines.append("server = %s" % server_url)
    if token:
        lines.append("token = %s" % token)
    return "\n".join(lines) + "\n" + extra


# egress-server in srv: its API (and the hub) where the gateways reach it, heartbeats fast
SERVER_SETTINGS = {"api": {"listen": "0.0.0.0:8091"}, "hub": {"ping": "1s", "timeout": "3s"}}


class AllowLab:
    def __init__(self, lab, egressd_bin, server=None):
        """Build the topology in lab and start the internet's servers; server (an
        EgressServer, or None) is started by the caller in lab["srv"]."""
        self.lab = lab
        self.egressd_bin = egressd_bin
        self.server = server
        self.gw = {}
        lab.apply(SPEC)
        inet = lab["inet"]
        inet.ip_batch(["addr add %s/32 dev lo" % a for a in WEB + [DNS]] +
                      ["addr add %s/128 dev lo" % a for a in WEB6] +
                      ["route add local %s dev lo" % NET])
        inet.http_server(80, name="web", bind="::")
        inet.http_server(8080, name="alt", bind="::")
        self.hosts = lab.dir / "inet.hosts"
        self.hosts.write_text("")
        self.dns = inet.dnsmasq("--listen-address=%s" % DNS, "--bind-interfaces",
                                "--addn-hosts=%s" % self.hosts, "--local-ttl=30",
                                "--address=/cdn.test/11.0.0.15", "--address=/cdn.test/2a00:1::15")

    def zone(self, names):
        """The DNS server's records: {name: [addresses]} (A and AAAA), replacing the last."""
        lines = ["%s %s" % (a, n) for n, addrs in names.items() for a in addrs]
        self.hosts.write_text("\n".join(lines) + "\n")
        self.dns.send_signal(1)  # SIGHUP: dnsmasq reads its hosts files again

    def server_url(self):
        """ws://SERVER_ADDR:PORT/ws of the server's first API listener."""
        if not self.server:
            return None
        port = int(str(self.server.sections["api"]["listen"]).split()[0].rsplit(":", 1)[1])
        return "ws://%s:%d/ws" % (SERVER_ADDR, port)

    def wait_synced(self, gw, version=None, timeout=10.0):
        """Until gw's agent is in step with the server (at version, if given)."""
        def synced():
            st = self.status(gw).json()
            c = st.get("connection") or {}
            return c.get("state") == "synced" and (version is None or st["version"] == version)
        wait_for(synced, timeout=timeout, what="%s in step with the server" % gw)

    def state_dir(self, gw):
        """Where gw's agent keeps its list (in the lab's run directory)."""
        return self.lab.dir / ("%s.allowlist" % gw)

    def write_state(self, gw, version, items):
        """Put a kept list in gw's state_dir, as the agent writes it (a snapshot message)."""
        d = self.state_dir(gw)
        d.mkdir(mode=0o700, exist_ok=True)
        (d / "allowlist.json").write_text(json.dumps({"type": "snapshot", "version": version,
                                                       "items": items}))

    def start_gateway(self, gw, token=None, url=None, extra="", ready=True, server=True,
                      timeout=10.0):
        url = url if url is not None else self.server_url() if server else None
        conf = gateway_conf(gw, self.state_dir(gw), url, token, extra)
        d = Egressd.start(self.lab[gw], self.egressd_bin, conf, ready=ready, timeout=timeout)
        self.gw[gw] = d
        return d

    def start_gateways(self, token=None, **kw):
        return [self.start_gateway(g, token, **kw) for g in GATEWAYS]

    def fetch(self, client, addr, port=80, timeout=2):
        """GET http://addr:port/ from client: the server's name ("web", "alt"), or None when
        the connection fails (blocked)."""
        host = "[%s]" % addr if ":" in addr else addr
        r = self.lab[client].run(["curl", "-s", "-m", str(timeout), "-o", "-",
                                  "http://%s:%d/" % (host, port)], check=False,
                                 timeout=timeout + 5)
        return r.stdout.split()[0] if r.returncode == 0 and r.stdout else None

    def fetch_name(self, client, name, port=80, family=4, timeout=2):
        """Resolve name through the client's gateway's DNS forwarder, then fetch it: (name
        of the web server, address) or (None, address or None)."""
        addr = self.resolve(client, name, family)
        if not addr:
            return None, None
        return self.fetch(client, addr, port, timeout), addr

    def resolve(self, client, name, family=4):
        gw = next(g for g, (c, _, _) in GATEWAYS.items() if c == client)
        _, v4, _ = GATEWAYS[gw]
        r = self.lab[client].run(["dig", "+short", "+tries=1", "+time=2", "@%s.1" % v4, name,
                                  "A" if family == 4 else "AAAA"], check=False)
        addrs = [l for l in r.stdout.split() if l[0].isdigit() or ":" in l]
        return addrs[-1] if addrs else None

    def wait_reachable(self, client, addr, port=80, timeout=5.0):
        wait_for(lambda: self.fetch(client, addr, port, timeout=1) is not None,
                 timeout=timeout, what="%s to reach %s:%d" % (client, addr, port))

    def wait_blocked(self, client, addr, port=80, timeout=5.0):
        wait_for(lambda: self.fetch(client, addr, port, timeout=1) is None,
                 timeout=timeout, what="%s to be blocked from %s:%d" % (client, addr, port))

    def metrics(self, gw):
        """{(family, frozenset of labels): value} of gw's egress_allowlist_* samples."""
        import promtext
        r = self.lab[gw].run(["curl", "-s", "-m", "5", "http://127.0.0.1:%d/metrics"
                              % METRICS_PORT])
        out = {}
        for name, fam in promtext.parse(r.stdout).items():
            if name.startswith("egress_allowlist_"):
                for n, labels, v in fam.samples:
                    out[(n, frozenset(labels.items()))] = v
        return out

    def status(self, gw, query=""):
        """GET /api/allowlist of gw's egressd (its status and first items); query: "?..."."""
        from apiclient import ApiClient
        return ApiClient.unix(self.gw[gw]).get("/api/allowlist" + query)

    def set_json(self, gw, set_name):
        r = self.lab[gw].run(["nft", "-j", "list", "set", "inet", "egress_allowlist",
                              set_name])
        return json.loads(r.stdout)

    def elements(self, gw, set_name):
        """The element values of a set of gw's table, as nft prints them (text)."""
        r = self.lab[gw].run(["nft", "list", "set", "inet", "egress_allowlist", set_name])
        return r.stdout
