"""egressd's life cycle in a lab: start, ready, link state, reload, stop.

    gw:isp1 192.0.2.1/24 ------ isp1:eth0 192.0.2.2/24
    gw:isp2 198.51.100.1/24 --- isp2:eth0 198.51.100.2/24

egressd runs in gw with one uplink per ISP link.  Every test also checks that
egressd leaves the namespace's routes, rules, links and nftables as it found
them, and that a sanitizer build reported nothing.
"""

import signal
import socket

import pytest

from egressd import Egressd
from lab import wait_for

pytestmark = [pytest.mark.daemon, pytest.mark.requires_root]

SPEC = """
    gw:isp1 192.0.2.1/24 2001:db8:1::1/64 -- isp1:eth0 192.0.2.2/24 2001:db8:1::2/64
    gw:isp2 198.51.100.1/24 -- isp2:eth0 198.51.100.2/24
"""

CONF = """
[global]
log_level = info

[uplink isp1]
interface = isp1
gateway = 192.0.2.2

[uplink isp2]
interface = isp2
gateway = 198.51.100.2
weight = 2
"""

# CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13)
KEPT_CAPS = (1 << 10) | (1 << 12) | (1 << 13)


def snapshot(node):
    """What egressd must leave as it found it."""
    return {
        "links": node.run(["ip", "-br", "link"]).stdout,
        "addrs": node.run(["ip", "-br", "addr"]).stdout,
        "rules4": node.run(["ip", "-4", "rule"]).stdout,
        "rules6": node.run(["ip", "-6", "rule"]).stdout,
        "routes4": node.run(["ip", "-4", "route", "show", "table", "all"]).stdout,
        "routes6": node.run(["ip", "-6", "route", "show", "table", "all"]).stdout,
        "nft": node.run(["nft", "list", "ruleset"]).stdout,
    }


@pytest.fixture
def gw(lab):
    lab.apply(SPEC)
    return lab["gw"]


def test_start_ready_stop(lab, gw, egressd_bin):
    before = snapshot(gw)
    d = Egressd.start(gw, egressd_bin, CONF)
    line = d.wait_log(r"egressd \S+ ready: .*")
    assert "2 uplinks, 2 up (isp1 up, isp2 up)" in line.group(0)
    assert "uplink isp1: init -> up (link isp1 is up)" in d.log()

    # least privilege: only the network capabilities are left, in every set
    assert int(d.status("CapEff"), 16) == KEPT_CAPS
    assert int(d.status("CapPrm"), 16) == KEPT_CAPS
    assert int(d.status("CapBnd"), 16) == KEPT_CAPS
    assert int(open("/proc/self/status").read().split("CapEff:")[1].split()[0], 16) != KEPT_CAPS

    assert d.stop() == 0
    assert "stopped" in d.lines()[-1]
    assert "Terminated: stopping" in d.log()  # strsignal(SIGTERM)
    d.assert_clean()
    assert snapshot(gw) == before
    assert gw.pids() == []  # nothing left behind


def test_sigint_stops_too(gw, egressd_bin):
    d = Egressd.start(gw, egressd_bin, CONF)
    d.signal(signal.SIGINT)
    d.proc.wait(10)
    assert d.proc.returncode == 0
    d.assert_clean()


def test_link_state_is_followed(lab, gw, egressd_bin):
    d = Egressd.start(gw, egressd_bin, CONF)
    d.set_mark()
    lab.cut(gw, "isp1")
    d.wait_log(r"uplink isp1: up -> down \(link isp1 is down\)")
    assert "uplink isp2" not in d.since_mark()

    d.set_mark()
    lab.restore(gw, "isp1")
    d.wait_log(r"uplink isp1: down -> up \(link isp1 is up\)")
    assert "uplink isp2" not in d.since_mark()

    # a link that is administratively down counts as down too
    d.set_mark()
    gw.ip("link", "set", "dev", "isp2", "down")
    d.wait_log(r"uplink isp2: up -> down \(link isp2 is down\)")
    gw.ip("link", "set", "dev", "isp2", "up")
    d.wait_log(r"uplink isp2: down -> up")
    assert d.stop() == 0
    d.assert_clean()


def test_interface_that_appears_later(lab, gw, egressd_bin):
    conf = CONF + "\n[uplink isp3]\ninterface = isp3\ngateway = 203.0.113.2\n"
    d = Egressd.start(gw, egressd_bin, conf)
    ready = d.wait_log(r"ready: .*").group(0)
    assert "3 uplinks, 2 up" in ready and "isp3 down" in ready
    assert "uplink isp3: init -> down (interface isp3 does not exist)" in d.log()

    d.set_mark()
    isp3 = lab.node("isp3")
    lab.link(gw, isp3, addrs=["203.0.113.1/24", "203.0.113.2/24"], ifnames=("isp3", "eth0"))
    d.wait_log(r"uplink isp3: down -> up \(link isp3 is up\)")

    d.set_mark()
    gw.ip("link", "del", "dev", "isp3")
    # the kernel says "down" and then "deleted": one transition, whichever comes first
    d.wait_log(r"uplink isp3: up -> down \((link isp3 is down|interface isp3 does not exist)\)")
    assert d.stop() == 0
    d.assert_clean()


def test_reload_applies_the_difference(lab, gw, egressd_bin):
    before = snapshot(gw)
    d = Egressd.start(gw, egressd_bin, CONF)
    pid = d.proc.pid

    d.write_conf("""
[uplink isp2]
interface = isp2
gateway = 198.51.100.2
weight = 5

[uplink vpn]
gateway = 192.0.2.50
""")
    d.reload()
    d.wait_log(r"reload 1: 3 changes")
    out = d.since_mark()
    assert "uplink isp1: removed" in out
    assert "uplink isp2: changed: weight 2 -> 5" in out
    assert "uplink vpn: added" in out
    assert "ready" not in out.split("reload 1")[0]
    d.wait_log(r"egressd \S+ reloaded: 2 uplinks, 2 up \(isp2 up, vpn up\)")
    assert d.proc.pid == pid and d.alive()

    # the removed uplink's link is no longer followed; the kept one still is
    d.set_mark()
    lab.cut(gw, "isp1")
    lab.cut(gw, "isp2")
    d.wait_log(r"uplink isp2: up -> down")
    assert "isp1" not in d.since_mark()

    # the same file again: nothing to do
    d.reload()
    d.wait_log(r"reload 2: 0 changes")
    assert d.stop() == 0
    d.assert_clean()
    lab.restore(gw, "isp1")
    lab.restore(gw, "isp2")
    assert snapshot(gw) == before


def test_bad_reload_keeps_running_config(lab, gw, egressd_bin):
    d = Egressd.start(gw, egressd_bin, CONF)
    d.write_conf(CONF.replace("weight = 2", "weight = 0") + "bogus = 1\n")
    d.reload()
    d.wait_log(r"reload failed, keeping the running configuration")
    path = str(d.conf_path)
    d.wait_log(r"%s:12: \[uplink isp2\] weight: expected an integer from 1 to 256, got \"0\""
               % path.replace(".", r"\."))
    d.wait_log(r"%s:13: \[uplink isp2\]: unknown key 'bogus'" % path.replace(".", r"\."))
    assert d.alive()
    assert "changed" not in d.since_mark()

    # the old configuration is still the one in force: its uplinks still follow their links
    d.set_mark()
    lab.cut(gw, "isp1")
    d.wait_log(r"uplink isp1: up -> down")

    # and a fixed file is taken
    d.write_conf(CONF.replace("weight = 2", "weight = 3"))
    d.reload()
    d.wait_log(r"uplink isp2: changed: weight 2 -> 3")
    assert d.stop() == 0
    d.assert_clean()


RANGES_CONF = """
[uplink isp1]
interface = isp1
gateway = 192.0.2.2
source = 192.0.2.1

[route]
gateway = 198.51.100.2
scheme = none
table = %s

[proxy]
port = 1080
table_base = %s
"""


def test_reload_refuses_to_hand_a_range_to_another_module(lab, gw, egressd_bin):
    """Each module reconciles its own range in turn: a reload that gave the proxy's running
    tables to the route module (and the route's to the proxy) would let each flush the
    other's routes.  It is refused, and both keep theirs."""
    d = Egressd.start(gw, egressd_bin, RANGES_CONF % (4501, 5000))

    def tables():
        return {t: gw.run(["ip", "-4", "route", "show", "table", str(t)],
                          check=False).stdout.strip() for t in (4501, 5000)}

    wait_for(lambda: all(tables().values()), what="the route's and the proxy's tables")
    before = tables()
    d.set_mark()
    d.write_conf(RANGES_CONF % (5000, 4501))
    d.reload()
    d.wait_log(r"reload failed, keeping the running configuration")
    path = str(d.conf_path).replace(".", r"\.")
    d.wait_log(r"%s:10: \[route\] table: routing table 5000 overlaps those \[proxy\] table_base "
               r"\(5000-5001\) holds in the running configuration" % path)
    d.wait_log(r"%s:14: \[proxy\] table_base: routing tables 4501-4502 overlap those \[route\] "
               r"table \(4501\) holds in the running configuration" % path)
    assert tables() == before
    # in two reloads: the route module moves away, then the proxy takes its old table
    d.write_conf(RANGES_CONF % (6000, 5000))
    d.reload()
    d.wait_log(r"reload 1: ")
    d.write_conf(RANGES_CONF % (6000, 4501))
    d.reload()
    d.wait_log(r"reload 2: ")
    assert d.stop() == 0
    d.assert_clean()


def test_flags_win_over_the_file_on_reload(gw, egressd_bin):
    d = Egressd.start(gw, egressd_bin, CONF,
                      args=["--set", "uplink.isp2.weight=7", "-log-level", "debug"])
    assert "debug privileges: kept" in d.log()  # debug lines come from the flag
    d.write_conf(CONF.replace("weight = 2", "weight = 3"))
    d.reload()
    d.wait_log(r"reload 1: 0 changes")
    assert "weight" not in d.since_mark()
    assert d.stop() == 0
    d.assert_clean()


def test_sd_notify(lab, gw, egressd_bin):
    path = str(lab.dir / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        d = Egressd.start(gw, egressd_bin, CONF, env={"NOTIFY_SOCKET": path})
        msg = sock.recv(4096).decode()
        assert msg.startswith("READY=1\nSTATUS=2 uplinks, 2 up")
        d.reload()
        assert sock.recv(4096).decode() == "RELOADING=1"
        assert sock.recv(4096).decode().startswith("READY=1\n")
        d.signal(signal.SIGTERM)
        assert sock.recv(4096).decode() == "STOPPING=1"
        d.proc.wait(10)
        assert d.proc.returncode == 0
        d.assert_clean()
    finally:
        sock.close()


def test_bad_config_at_start(lab, gw, egressd_bin):
    conf = lab.dir / "bad.conf"
    conf.write_text("[uplink isp1]\ninterface = isp1\nweight = heavy\n")
    r = gw.run([str(egressd_bin), "-d", "-c", str(conf)], check=False, timeout=10)
    assert r.returncode == 1
    assert "bad.conf:3: [uplink isp1] weight: expected an integer from 1 to 256, got " \
        "\"heavy\"" in r.stderr
    assert "ready" not in r.stderr
    r = gw.run([str(egressd_bin), "-d", "-c", str(lab.dir / "missing.conf")], check=False)
    assert r.returncode == 1 and "No such file or directory" in r.stderr
    r = gw.run([str(egressd_bin), "-bogus"], check=False)
    assert r.returncode == 2 and "unknown option -bogus" in r.stderr


def test_check_mode_does_not_start(gw, egressd_bin, tmp_path):
    conf = tmp_path / "e.conf"
    conf.write_text(CONF)
    r = gw.run([str(egressd_bin), "-n", "-c", str(conf)], timeout=10)
    assert r.stdout.startswith("[global]\nlog_level = info\nmetrics_port = 0\n")
    assert "\n[uplink isp1]\ninterface = isp1\n" in r.stdout
    assert "ready" not in r.stderr
    # the normalised output is a valid configuration that prints the same
    again = tmp_path / "again.conf"
    again.write_text(r.stdout)
    assert gw.run([str(egressd_bin), "-n", "-c", str(again)]).stdout == r.stdout
