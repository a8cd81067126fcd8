"""The device gateway's lab: LAN devices behind egressd's [devices] module, a firewall that
admits only registered MACs, an upstream router with dnsmasq, and an internet server.
Shared by test_devlab.py (the topology alone), test_devices*.py and bench/devices.py.

  d01..dNN ---- lan0 [gw] wan0 ---- p_gw [fw] p_isp ---- eth0 [isp] eth1 ---- eth0 [inet]
  MAC 02:de:00:00:HH:LL  (bridge)     (no        (bridge,       10.64.0.1/16          198.51.100.10
  192.168.H.L by DHCP    192.168.0.1  address)   nft: MACs      2001:db8:64::1/64     2001:db8:ff::10
  (dnsmasq in gw; its    egressd                  registered)   dnsmasq: DHCPv4,      namesrv :80
  leases file is         [devices]                              DHCPv6, RA            "inet <client>"
  egressd's leases_file)

Device i has MAC mac_of(i) (02:de:00:00:00:01 for device 1) and, by a dnsmasq reservation,
LAN address lan_of(i) (192.168.1.101 for device 1) in 192.168.0.0/16; its default route is
the gateway.  egressd gives it a macvlan on wan0 with that MAC, whose leases come from the
upstream's dnsmasq through the firewall namespace: a Linux bridge whose nftables (bridge
family, table `bridge fw`) drops every frame from the gateway's side whose source MAC is not
in the set `registered` (register() and unregister() change it).  The gateway's own wan0 has
no address and is not registered: only the devices' identities exist upstream.

The upstream (isp) has modes "dual" (DHCPv4, DHCPv6 IA_NA and router advertisements with the
M flag), "v4" (DHCPv4 alone) and "v6" (DHCPv6 and RAs alone), each on plan "a" (10.64.0.0/16,
2001:db8:64::/64) or plan "b" (10.65.0.0/16, 2001:db8:65::/64): upstream(mode, plan)
restarts dnsmasq that way (renumbering: plan a -> b; dnsmasq is authoritative, so it refuses
the old plan's addresses).  DHCPv4 leases last 2 minutes (dnsmasq's least) with T1 = 10 s
and T2 = 20 s, so a lease renews within a test.  The internet server answers with the
address it saw, so a test tells which WAN address each device's traffic left by.

    with Lab() as lab:
        dl = DevLab(lab, registered=range(1, 18))
        dl.lan_up()                             # every device gets its LAN address
        d = dl.start_egressd(egressd_bin)
        dl.wait_active(range(1, 18))            # each holds its leases (GET /devices)
        assert dl.fetch(3) == dl.device(3)["ipv4_wan_address"]

What it must not do: anything outside its lab's namespaces.
"""

import ipaddress
import json
import re
import sys
import time
from pathlib import Path

from egressd import Egressd
from lab import LabError, wait_for

HERE = Path(__file__).resolve().parent
DHCPC = HERE / "dhcpc.py"

LAN_GW = "192.168.0.1"
INET4 = "198.51.100.10"
INET6 = "2001:db8:ff::10"
PLANS = {
    "a": {"v4": "10.64.", "v6": "2001:db8:64::"},
    "b": {"v4": "10.65.", "v6": "2001:db8:65::"},
}
MODES = ("dual", "v4", "v6")
T1, T2 = 10, 20


def mac_of(i):
    """Device i's MAC."""
    return "02:de:00:00:%02x:%02x" % (i >> 8, i & 0xff)


def lan_of(i):
    """Device i's LAN address (dnsmasq's reservation): 192.168.1.101 for device 1."""
    return "192.168.%d.%d" % (1 + i // 100, 100 + i % 100)


def name_of(i):
    return "d%02d" % i


def devices_conf(state_dir, leases_file, extra=""):
    """egress.conf with the [devices] section of this lab's gateway: fast retries and a short
    grace period, so that the tests need no long waits.  extra: more [devices] keys."""
    return ("[devices]\n"
            "wan = wan0\n"
            "lan = lan0\n"
            "leases_file = %s\n"
            "state_dir = %s\n"
            "grace = 4s\n"
            "dhcp4_retry_min = 500ms\n"
            "dhcp4_retry_max = 3s\n"
            "dhcp6_retry_max = 3s\n" % (leases_file, state_dir)) + extra


class DevLab:
    def __init__(self, lab, n=20, registered=(), mode="dual", plan="a", web=(), renew=(T1, T2),
                 rp_filter=None, gw_wan=None):
        """Build the topology in lab with n devices, the MACs of device numbers `registered`
        in the firewall's set, the upstream in `mode` on `plan`, a web server (namesrv on
        :80, named after the device) in each device of `web`.  renew: the DHCPv4 leases'
        (T1, T2) in seconds, or None for dnsmasq's own (half and 7/8 of 2 minutes).

        The gateway host's own conditions, as users have them:
        rp_filter: net.ipv4.conf.{all,default}.rp_filter in the gateway, set before egressd
        starts (1: strict, as many distributions ship; links made later, the devices'
        macvlans among them, inherit the default).
        gw_wan: None, the gateway's wan0 has no address and main no default route; "dhcp",
        wan0 is registered upstream and holds its own address like a host whose DHCP client
        owns the WAN (dhcpc.py's lease from the upstream's dnsmasq, the default route via
        the upstream router in main, protocol dhcp) and, where the upstream offers IPv6, its
        own SLAAC address and default route from the router advertisements (accept_ra=2)."""
        self.lab = lab
        self.renew = renew
        self.n = n
        self.mode = None
        self.plan = None
        self.isp_dnsmasq = None
        self.egressd = None
        gw, fw, isp, inet = (lab.node(r) for r in ("gw", "fw", "isp", "inet"))
        isp.forward()
        # the LAN: a bridge in the gateway, one port per device
        gw.ip_batch(["link add lan0 type bridge mcast_snooping 0",
                     "link set lan0 up", "addr add %s/16 dev lan0" % LAN_GW])
        links = []
        for i in range(1, n + 1):
            links.append(lab.link(name_of(i), gw, ifnames=("eth0", "l%s" % name_of(i)),
                                   mac=(mac_of(i), None), wait=False))
        gw.ip_batch(["link set l%s master lan0" % name_of(i) for i in range(1, n + 1)])
        # WAN: gateway - firewall (a bridge) - upstream router - internet
        links.append(lab.link(gw, fw, ifnames=("wan0", "p_gw"), wait=False))
        links.append(lab.link(fw, isp, ifnames=("p_isp", "eth0"), wait=False))
        links.append(lab.link(isp, inet, ifnames=("eth1", "eth0"),
                              addrs=(["198.51.100.1/24", "2001:db8:ff::1/64"],
                                     ["%s/24" % INET4, "%s/64" % INET6]), wait=False))
        fw.ip_batch(["link add br0 type bridge mcast_snooping 0",
                     "link set p_gw master br0", "link set p_isp master br0",
                     "link set br0 up"])
        fw.run(["nft", "-f", "-"], input=(
            "table bridge fw {\n"
            "  set registered { type ether_addr; }\n"
            "  chain forward {\n"
            "    type filter hook forward priority 0; policy accept;\n"
            '    iifname "p_gw" ether saddr != @registered counter drop\n'
            "  }\n"
            "}\n"))
        lab.wait_links(links)
        inet.route("default", "via", "198.51.100.1")
        inet.route("default", "via", "2001:db8:ff::1")
        self.inet_http = inet.http_server(80, name="inet", bind="::")
        # the LAN's DHCP server: fixed addresses by MAC, its leases file for egressd
        hosts = ["--dhcp-host=%s,%s,%s" % (mac_of(i), lan_of(i), name_of(i))
                 for i in range(1, n + 1)]
        self.lan_dnsmasq = gw.dnsmasq("--interface=lan0", "--bind-interfaces",
                                      "--dhcp-range=192.168.1.0,192.168.9.255,255.255.0.0,12h",
                                      "--dhcp-authoritative", "--no-ping", *hosts, port=0,
                                      name="dnsmasq-lan")
        self.lan_leases_path = Path(_leasefile(self.lan_dnsmasq))
        self.lan = {}  # device number -> its LAN lease (dhcpc.py's JSON)
        if registered:
            self.register(*registered)
        for i in web:
            lab[name_of(i)].http_server(80, name=name_of(i))
        self.upstream(mode, plan)
        self.gw_wan = None
        if gw_wan in ("dhcp", "dhcp4"):
            self.gw_wan_up(v6=gw_wan == "dhcp")
        elif gw_wan is not None:
            raise ValueError("gw_wan must be None, \"dhcp\" or \"dhcp4\"")
        if rp_filter is not None:  # after dhcpc.py, whose UDP socket strict mode would starve
            gw.sysctl(**{"net.ipv4.conf.all.rp_filter": rp_filter,
                         "net.ipv4.conf.default.rp_filter": rp_filter})

    # -- the gateway's own WAN

    def gw_wan_up(self, v6=True, timeout=20):
        """The gateway host's own WAN address, the way its DHCP client would hold it: wan0's
        MAC registered, a DHCPv4 lease from the upstream (when it offers IPv4) as wan0's
        address with the default route via its router in main (protocol dhcp), and an IPv6
        address with the default route from the router advertisements (when it offers IPv6;
        without v6, the default route alone).  Returns and keeps {"v4": address or None, "v6": address or None}."""
        gw = self.gw
        self.lab["fw"].run(["nft", "add", "element", "bridge", "fw", "registered",
                            "{ %s }" % gw.mac("wan0")])
        gw.sysctl(**{"net.ipv6.conf.wan0.accept_ra": 2, "net.ipv6.conf.wan0.autoconf": 1})
        got = {"v4": None, "v6": None}
        if self.mode in ("dual", "v4"):
            r = gw.run([sys.executable, str(DHCPC), "acquire", "wan0", "--timeout", timeout],
                       timeout=timeout + 10)
            lease = json.loads(r.stdout)
            gw.ip_batch(["addr replace %s/%d dev wan0" % (lease["address"], lease["prefixlen"]),
                         "route replace default via %s dev wan0 proto dhcp" % lease["router"]])
            got["v4"] = lease["address"]
        if self.mode in ("dual", "v6"):
            wait_for(lambda: self.gw_routes(6), timeout=timeout,
                     what="wan0's IPv6 default route from the router advertisements")
        if v6 and self.mode in ("dual", "v6"):
            # the upstream's prefix has no A flag (addresses by DHCPv6): the host's own
            # DHCPv6 client would hold one, outside dnsmasq's range; the default route
            # comes from the router advertisements
            got["v6"] = PLANS[self.plan]["v6"] + "f00"
            gw.ip("addr", "replace", got["v6"] + "/64", "dev", "wan0", "nodad")
        self.gw_wan = got
        return got

    def gw_routes(self, family=4):
        """The gateway's default routes in main: [(gateway, dev, protocol)]."""
        r = self.gw.json(["ip", "-j", "-%d" % family, "route", "show", "default"]) or []
        return sorted((x.get("gateway"), x.get("dev"), x.get("protocol")) for x in r)

    def gw_fetch(self, family=4, timeout=2):
        """The gateway host's own fetch of the internet server's page, unbound, as any
        program of the host: the address the server saw, or None."""
        url = "http://%s/" % INET4 if family == 4 else "http://[%s]/" % INET6
        r = self.gw.run(["curl", "-s", "-m", str(timeout), url], check=False,
                        timeout=timeout + 5)
        f = r.stdout.split()
        return f[1] if r.returncode == 0 and len(f) == 2 and f[0] == "inet" else None

    # -- nodes and names

    def node(self, i):
        return self.lab[name_of(i)]

    @property
    def gw(self):
        return self.lab["gw"]

    @property
    def isp(self):
        return self.lab["isp"]

    @property
    def inet(self):
        return self.lab["inet"]

    def state_dir(self):
        return self.lab.dir / "gw.devices"

    # -- the firewall

    def register(self, *idx):
        """Admit the MACs of these devices through the firewall."""
        self._set("add", idx)

    def unregister(self, *idx):
        self._set("delete", idx)

    def _set(self, op, idx):
        if idx:
            self.lab["fw"].run(["nft", op, "element", "bridge", "fw", "registered",
                                "{ %s }" % ", ".join(mac_of(i) for i in idx)])

    def registered(self):
        """The MACs in the firewall's set."""
        r = self.lab["fw"].json(["nft", "-j", "list", "set", "bridge", "fw", "registered"])
        for item in r["nftables"]:
            if "set" in item:
                return sorted(e if isinstance(e, str) else e["elem"]["val"]
                              for e in item["set"].get("elem", []))
        return []

    def dropped(self):
        """Frames the firewall dropped so far."""
        out = self.lab["fw"].run(["nft", "list", "chain", "bridge", "fw", "forward"]).stdout
        m = re.search(r"counter packets (\d+)", out)
        return int(m.group(1)) if m else 0

    # -- the upstream

    def upstream(self, mode="dual", plan="a"):
        """(Re)start the upstream's DHCP and RA server in mode ("dual", "v4", "v6") with the
        addresses of plan ("a", "b"); the router's own addresses follow the plan."""
        if mode not in MODES or plan not in PLANS:
            raise ValueError("mode must be one of %s and plan one of %s" % (MODES, list(PLANS)))
        isp = self.isp
        if self.isp_dnsmasq is not None:
            self.isp_dnsmasq.stop()
        if plan != self.plan:
            lines = []
            if self.plan is not None:
                old = PLANS[self.plan]
                lines += ["addr del %s0.1/16 dev eth0" % old["v4"],
                          "addr del %s1/64 dev eth0" % old["v6"]]
            p = PLANS[plan]
            lines += ["addr add %s0.1/16 dev eth0" % p["v4"],
                      "addr add %s1/64 dev eth0 nodad" % p["v6"]]
            isp.ip_batch(lines)
        p = PLANS[plan]
        args = ["--interface=eth0", "--bind-interfaces", "--dhcp-authoritative", "--no-ping",
                "--log-dhcp"]
        if mode in ("dual", "v4"):
            args += ["--dhcp-range=%s1.1,%s3.254,255.255.0.0,2m" % (p["v4"], p["v4"]),
                     "--dhcp-option=option:router,%s0.1" % p["v4"]]
            if self.renew:
                args += ["--dhcp-option=option:T1,%d" % self.renew[0],
                         "--dhcp-option=option:T2,%d" % self.renew[1]]
        if mode in ("dual", "v6"):
            args += ["--enable-ra", "--ra-param=eth0,4,60",
                     "--dhcp-range=%s1000,%s1fff,64,2m" % (p["v6"], p["v6"])]
        self.isp_dnsmasq = isp.dnsmasq(*args, port=0, name="dnsmasq-isp")
        self.isp_leases_path = Path(_leasefile(self.isp_dnsmasq))
        self.mode, self.plan = mode, plan

    def subnet(self, family=4, plan=None):
        p = PLANS[plan or self.plan]
        return ipaddress.ip_network(p["v4"] + "0.0/16" if family == 4 else p["v6"] + "/64")

    def upstream_leases(self):
        """What the upstream's dnsmasq has leased now: ({mac: IPv4}, {mac: IPv6}); an IPv6
        lease's MAC is read from the client's DUID-LL (00:03:00:01:MAC), else its DUID."""
        v4, v6 = {}, {}
        for line in read_leases(self.isp_leases_path).splitlines():
            f = line.split()
            if len(f) < 5 or f[0] == "duid":
                continue
            if ":" in f[2]:
                duid = f[4].lower()
                mac = duid[12:] if duid.startswith("00:03:00:01:") else duid
                v6[mac] = f[2]
            else:
                v4[f[1].lower()] = f[2]
        return v4, v6

    def upstream_log(self):
        return self.isp_dnsmasq.log()

    def dhcp_seen(self, kind, mac, since=0):
        """How many DHCPv4 messages of kind (DHCPDISCOVER, DHCPREQUEST, DHCPRELEASE, ...) from
        mac the upstream logged after offset `since` of its log."""
        rx = re.compile(r"%s\(eth0\)[^\n]*\b%s\b" % (kind, re.escape(mac)))
        return len(rx.findall(self.upstream_log()[since:]))

    # -- the LAN

    def lan_up(self, idx=None, timeout=15, wave=25):
        """Devices idx (default all) ask the gateway's dnsmasq for their LAN address, `wave`
        at a time, and take it with the gateway as default route."""
        idx = list(range(1, self.n + 1)) if idx is None else list(idx)
        for k in range(0, len(idx), wave):
            procs = {i: self.node(i).popen([sys.executable, str(DHCPC), "acquire", "eth0",
                                            "--hostname", name_of(i), "--timeout", timeout],
                                           name="dhcpc", stdout=-1, stderr=-1)
                     for i in idx[k:k + wave]}
            for i, p in procs.items():
                out, err = p.communicate(timeout=timeout + 10)
                if p.returncode != 0:
                    raise LabError("%s: no LAN lease: %s" % (name_of(i), err.decode()))
                lease = json.loads(out)
                self.node(i).ip_batch(["addr replace %s/%d dev eth0" % (lease["address"],
                                                                        lease["prefixlen"]),
                                       "route replace default via %s" % lease["router"]])
                self.lan[i] = lease

    def lan_leave(self, i):
        """Device i leaves: releases its LAN lease and unplugs (its link goes down)."""
        lease = self.lan.pop(i)
        self.node(i).run([sys.executable, str(DHCPC), "release", "eth0", "--address",
                          lease["address"], "--server", lease["server"]])
        self.node(i).ip("link", "set", "eth0", "down")

    def lan_leases(self):
        """{mac: address} of the gateway's LAN dnsmasq's leases file."""
        lines = read_leases(self.lan_leases_path).splitlines()
        return {f[1].lower(): f[2] for f in (ln.split() for ln in lines) if len(f) >= 3}

    # -- egressd

    def conf(self, extra=""):
        return devices_conf(self.state_dir(), self.lan_leases_path, extra)

    def start_egressd(self, binary, extra="", args=(), name="egressd", timeout=15.0):
        self.egressd = Egressd.start(self.gw, binary, self.conf(extra), args=args, name=name,
                                     timeout=timeout)
        return self.egressd

    def api(self, daemon=None):
        """An ApiClient on the running egressd's UNIX socket (root: an admin)."""
        from apiclient import ApiClient
        return ApiClient.unix(daemon or self.egressd)

    def devices(self, status=None, daemon=None):
        """{mac: record} from GET /devices[?status=...]."""
        r = self.api(daemon).get("/devices" + ("?status=%s" % status if status else ""))
        if r.status != 200:
            raise LabError("GET /devices: %r" % r)
        return {d["mac_address"]: d for d in r.json()["devices"]}

    def device(self, i, daemon=None):
        r = self.api(daemon).get("/devices/%s" % mac_of(i))
        if r.status != 200:
            raise LabError("GET /devices/%s: %r" % (mac_of(i), r))
        return r.json()

    def snat_addrs(self):
        """The WAN IPv4 addresses egressd's nftables table SNATs devices to, as committed."""
        r = self.gw.run(["nft", "list", "chain", "inet", "egress_devices", "postrouting"],
                        check=False)
        return set(re.findall(r"snat ip to ([0-9.]+)", r.stdout))

    def wait_active(self, idx, v4=None, v6=None, timeout=30.0, plan=None, daemon=None,
                    nat_first=False, interval=0.3):
        """Until every device of idx is active with a WAN IPv4 (v4) and IPv6 (v6) in the
        current plan's subnets (v4 and v6 default to what the upstream's mode offers);
        returns {device number: record}.  nat_first: at each look, every device listed
        active with a WAN IPv4 must already have its SNAT in the table (egressd says
        `active` only once it is)."""
        v4 = self.mode in ("dual", "v4") if v4 is None else v4
        v6 = self.mode in ("dual", "v6") if v6 is None else v6
        net4, net6 = self.subnet(4, plan), self.subnet(6, plan)

        def ok(rec):
            if rec is None or rec.get("status") != "active":
                return False
            for want, key, net in ((v4, "ipv4_wan_address", net4),
                                   (v6, "ipv6_address", net6)):
                a = rec.get(key)
                if want and not (a and ipaddress.ip_address(a) in net):
                    return False
            return True

        def all_active():
            devs = self.devices(daemon=daemon)
            got = {i: devs.get(mac_of(i)) for i in idx}
            if nat_first:
                listed = {r["ipv4_wan_address"] for r in devs.values()
                          if r.get("status") == "active" and r.get("ipv4_wan_address")}
                missing = listed - self.snat_addrs()
                assert not missing, "listed active before their SNAT: %s" % sorted(missing)
            return got if all(ok(r) for r in got.values()) else None
        try:
            return wait_for(all_active, timeout=timeout, interval=interval,
                            what="devices %s active" % _ranges(idx))
        except AssertionError as e:
            devs = self.devices(daemon=daemon)
            late = {name_of(i): {k: devs.get(mac_of(i), {}).get(k) for k in
                                 ("status", "ipv4_wan_address", "ipv6_address")}
                    for i in idx if not ok(devs.get(mac_of(i)))}
            raise AssertionError("%s\nnot there yet: %s" % (str(e)[:300], late)) from None

    # -- traffic

    def fetch(self, i, family=4, timeout=2):
        """Device i fetches the internet server's page: the address the server saw, or None."""
        url = "http://%s/" % INET4 if family == 4 else "http://[%s]/" % INET6
        r = self.node(i).run(["curl", "-s", "-m", str(timeout), url], check=False,
                             timeout=timeout + 5)
        f = r.stdout.split()
        return f[1] if r.returncode == 0 and len(f) == 2 and f[0] == "inet" else None

    def fetch_from_inet(self, addr, port, timeout=2):
        """The internet server's host fetches http://addr:port/: the answer's words (a device's
        namesrv says its name and the client it saw), or None."""
        host = "[%s]" % addr if ":" in addr else addr
        r = self.inet.run(["curl", "-s", "-m", str(timeout), "http://%s:%d/" % (host, port)],
                          check=False, timeout=timeout + 5)
        return r.stdout.split() if r.returncode == 0 and r.stdout else None

    def fetch_bound(self, src, timeout=2, mark=None):
        """From the gateway, bound to src (a device's WAN address), fetch the internet
        server's page: the address it saw, or None.  mark: the socket's SO_MARK (egressd's
        relay marks its sockets with [devices] mark, DEVICES_MARK by default: only so does
        the host's traffic leave by a device's IPv6 identity)."""
        if mark is not None:
            r = self.gw.run([sys.executable, "-c", _MARKED_FETCH, src, INET6 if ":" in src
                             else INET4, str(mark), str(timeout)], check=False,
                            timeout=timeout + 5)
        else:
            url = "http://%s/" % (INET4 if ":" not in src else "[%s]" % INET6)
            r = self.gw.run(["curl", "-s", "-m", str(timeout), "--interface", src, url],
                            check=False, timeout=timeout + 5)
        f = r.stdout.split()
        return f[1] if r.returncode == 0 and len(f) == 2 else None


DEVICES_MARK = 0x10000  # [devices] mark's default

# GET / from argv[1] to argv[2]:80 with SO_MARK argv[3]: the body on stdout.
_MARKED_FETCH = """
import socket, sys
src, dst, mark, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(timeout)
s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
s.bind((src, 0))
s.connect((dst, 80))
s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
sys.stdout.write(data.partition(b"\\r\\n\\r\\n")[2].decode())
"""


def _ranges(idx):
    idx = sorted(idx)
    return "%d..%d" % (idx[0], idx[-1]) if idx == list(range(idx[0], idx[-1] + 1)) else idx


def read_leases(path, tries=25):
    """A dnsmasq leases file's text, read whole: dnsmasq rewrites it in place (truncates,
    then writes), so a read may catch it empty or cut; this one waits until two reads 20 ms
    apart agree and the text ends a line.  "" if the file does not exist."""
    last = None
    for _ in range(tries):
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        if text == last and (not text or text.endswith("\n")):
            return text
        last = text
        time.sleep(0.02)
    return last or ""


def _leasefile(proc):
    """The --dhcp-leasefile a lab dnsmasq was started with."""
    for a in proc.args:
        if a.startswith("--dhcp-leasefile="):
            return a.split("=", 1)[1]
    raise LabError("dnsmasq started without a lease file")


def wait_upstream(dl, idx, family=4, timeout=30.0, plan=None):
    """Until the upstream has leased an address of `family` in plan's subnet to each of the
    devices idx; returns {device number: address}."""
    net = dl.subnet(family, plan)

    def leased():
        leases = dl.upstream_leases()[0 if family == 4 else 1]
        got = {i: leases.get(mac_of(i)) for i in idx}
        if all(a and ipaddress.ip_address(a) in net for a in got.values()):
            return got
        return None
    return wait_for(leased, timeout=timeout,
                    what="IPv%d leases in %s for devices %s" % (family, net, list(idx)))
