"""An authoritative DNS server (BIND's named) in a lab node, whose zones a test changes.

    dns = AuthDNS.start(lab["dns"], {"allow.test": [("www", 60, "A", "93.184.216.34"),
                                                    ("alias", 60, "CNAME", "www")]})
    dns.set_zone("allow.test", [...])      # new serial, SIGHUP: named reloads it
    dns.query("www.allow.test", "A")       # what it answers now (dig in the node)

named runs in the foreground as root inside the node, with its own configuration, zone files,
pid and key files in the lab's run directory (<node>.named.d): it reads nothing of the host's
/etc/bind, has no control channel and does no recursion (it answers for its zones only; a
CNAME chain inside a zone comes whole in the answer, as a recursive resolver would give it).
It listens on port 53 of every address of the node.

What it must not do: listen outside its node or touch the host's BIND.
"""

import os
import signal

from lab import wait_for

SOA = "@ 60 IN SOA ns.{zone}. hostmaster.{zone}. {serial} 60 60 600 5\n@ 60 IN NS ns.{zone}.\n"

CONF = """\
// written by the Egress lab; the lab stops this named at close
options {{
	directory "{dir}";
	pid-file "{dir}/named.pid";
	session-keyfile "{dir}/session.key";
	managed-keys-directory "{dir}";
	listen-on port {port} {{ any; }};
	listen-on-v6 port {port} {{ any; }};
	recursion no;
	dnssec-validation no;
	notify no;
}};
controls {{ }};
{keys}{zones}
"""

ZONE = 'zone "{zone}" {{ type primary; file "{dir}/{zone}.zone";{update} }};\n'
KEY = 'key "{name}" {{ algorithm {alg}; secret "{secret}"; }};\n'


class AuthDNS:
    def __init__(self, node, zones, port, proc, folder):
        self.node = node
        self.zones = {z: list(r) for z, r in zones.items()}
        self.port = port
        self.proc = proc
        self.dir = folder
        self.serial = 1

    @classmethod
    def start(cls, node, zones, port=53, timeout=15.0, keys=None, updates=None):
        """Write the zones ({name: [(owner, ttl, type, data), ...]}, owner relative to the
        zone or "@") and start named in node; wait until it answers.  keys: {name: (algorithm,
        base64 secret)} TSIG keys; updates: {zone: key name}, zones that take dynamic updates
        (RFC 2136) signed with that key (named keeps them in a journal beside the zone)."""
        keys, updates = keys or {}, updates or {}
        folder = node.lab.dir / ("%s.named.d" % node.name)
        folder.mkdir(exist_ok=True)
        self = cls(node, zones, port, None, folder)
        for z in zones:
            self._write_zone(z)
        (folder / "named.conf").write_text(CONF.format(
            dir=folder, port=port,
            keys="".join(KEY.format(name=n, alg=a, secret=sec) for n, (a, sec) in keys.items()),
            zones="".join(ZONE.format(zone=z, dir=folder, update=(
                ' allow-update { key "%s"; };' % updates[z]) if z in updates else "")
                for z in zones)))
        self.proc = node.spawn_daemon(["named", "-g", "-c", folder / "named.conf"],
                                      name="named", log_match=r"\brunning\b", timeout=timeout)
        return self

    def _write_zone(self, zone):
        text = SOA.format(zone=zone, serial=self.serial)
        text += "ns 60 IN A 192.0.2.53\n"
        for owner, ttl, rtype, data in self.zones[zone]:
            text += "%s %d IN %s %s\n" % (owner, ttl, rtype, data)
        path = self.dir / ("%s.zone" % zone)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def set_zone(self, zone, records, timeout=10.0):
        """Replace a zone's records and have named load them; returns once named serves the
        new serial."""
        self.zones[zone] = list(records)
        self.serial += 1
        self._write_zone(zone)
        os.kill(self.proc.pid, signal.SIGHUP)
        serial = str(self.serial)
        wait_for(lambda: any(w == serial for w in self.query(zone, "SOA").split()),
                 timeout=timeout, interval=0.1, what="named to serve %s serial %s"
                 % (zone, serial))

    def query(self, name, rtype="A"):
        """named's answer section for name, short form (dig +short), as text."""
        return self.node.run(["dig", "@127.0.0.1", "-p", str(self.port), "+short", "+norec",
                              "+time=1", "+tries=2", name, rtype]).stdout
