"""Tests of the lab itself (lab.py, conftest.py, namesrv.py): topology, traffic through a
forwarding gateway, cuts, impairments, real peers and, above all, cleanup.

    client:eth0 --------- lan0:gw:wan0 --------- eth0:server
    10.0.0.2/24    10.0.0.1/24   192.0.2.1/24    192.0.2.2/24
    fd00::2/64     fd00::1/64    fd01::1/64      fd01::2/64

Every positive check has its negative beside it; waits are on visible state (wait_for), never
bare sleeps. Needs root (tests that do not are marked so). The whole file runs in well under
a minute on 2 cores:  /usr/bin/python3 -m pytest tests/lab/test_lab.py
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lab as labmod
from lab import (Lab, LabCommandError, LabError, LabFeatureMissing, list_namespaces,
                 parse_spec, wait_for, wait_port)

HERE = Path(__file__).resolve().parent
PY = sys.executable
REPO = HERE.parents[1]

CHAIN = """
    # client -- gw -- server, dual stack
    client:eth0 10.0.0.2/24 fd00::2/64 -- gw:lan0 10.0.0.1/24 fd00::1/64
    gw:wan0 192.0.2.1/24 fd01::1/64 -- server:eth0 192.0.2.2/24 fd01::2/64
    client default via 10.0.0.1
    client default via fd00::1
    server default via 192.0.2.1
    server default via fd01::1
"""
CHAIN_FWD = CHAIN + "    gw forward\n"

root = pytest.mark.requires_root


def run_namespaces(run):
    return [ns for ns in list_namespaces() if ns.startswith("eg-%s-" % run)]


def pid_gone(pid):
    """True if `pid` no longer runs (absent, or a zombie waiting for its reaper)."""
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def curl_ok(node, url):
    return node.curl(url, timeout=1, check=False).returncode == 0


def sigint_default():
    # background jobs of a non-interactive shell inherit SIGINT ignored; give it back
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def inner_pytest(tmp_path, source, env=None, **kw):
    """Start pytest in a subprocess on a test file using this conftest as a plugin."""
    test = tmp_path / "test_inner.py"
    test.write_text(textwrap.dedent(source))
    e = dict(os.environ, PYTHONPATH=str(HERE), **(env or {}))
    return subprocess.Popen([PY, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
                             "-q", "-rs", "--rootdir", str(tmp_path), str(test)],
                            cwd=tmp_path, env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=sigint_default,
                            **kw)


# ---------------------------------------------------------------------------------------------
# pure parts: no root needed


def test_parse_spec_chain():
    ops = parse_spec(CHAIN_FWD + "  solo\n  server route 10.0.0.0/24 via 192.0.2.1 dev eth0\n")
    links = [o for o in ops if o[0] == "link"]
    assert len(links) == 2
    a, b = links[0][1], links[0][2]
    assert (a["node"], a["ifname"], a["addrs"]) == ("client", "eth0", ["10.0.0.2/24",
                                                                       "fd00::2/64"])
    assert (b["node"], b["ifname"], b["addrs"]) == ("gw", "lan0", ["10.0.0.1/24", "fd00::1/64"])
    assert ("node", "gw", {"forward": True}) in ops
    assert ("node", "solo", {"forward": False}) in ops
    assert ("route", "client", ["default", "via", "10.0.0.1"]) in ops
    assert ("route", "server", ["10.0.0.0/24", "via", "192.0.2.1", "dev", "eth0"]) in ops
    # optional parts: interface names default later, mac and mtu
    (_, a, b, opts), = parse_spec("x 10.1.0.1/30 mac=02:AA:00:00:00:01 -- y:e1 mtu=1400")
    assert (a["ifname"], a["mac"], b["ifname"], b["addrs"], opts["mtu"]) == \
        (None, "02:aa:00:00:00:01", "e1", [], 1400)


@pytest.mark.parametrize("line, msg", [
    ("a:eth0 10.0.0.1/24 -- a:eth1 10.0.0.2/24", "two different nodes"),
    ("a:eth0 10.0.0.1 -- b:eth0", "needs a prefix length"),
    ("a:eth0 10.0.0.300/24 -- b:eth0", "neither ADDR/LEN"),
    ("a:averyveryverylongname -- b", "bad interface name"),
    ("a -- b -- c", "a link is"),
    ("a mac=02:00 -- b", "bad MAC"),
    ("gw forwrd", "unknown node flag"),
    ("client default 10.0.0.1", "default via"),
    ("client route nowhere via 10.0.0.1", "bad prefix"),
    ("bad/name", "bad node name"),
])
def test_parse_spec_errors_name_the_line(line, msg):
    with pytest.raises(ValueError) as e:
        parse_spec("# first line is a comment\n\n" + line)
    assert "spec line 3" in str(e.value) and msg in str(e.value)


def test_wait_for_returns_value_or_names_what_it_waited_for():
    seq = iter([0, None, "", 42])
    assert wait_for(lambda: next(seq), timeout=2, interval=0.001) == 42
    with pytest.raises(AssertionError) as e:
        wait_for(lambda: "nope" == "yes", timeout=0.1, interval=0.01, what="the impossible")
    assert "the impossible" in str(e.value) and "last value: False" in str(e.value)

    def flaky():
        raise ConnectionRefusedError("not yet")
    with pytest.raises(AssertionError) as e:
        wait_for(flaky, timeout=0.1, interval=0.01, what="a port", ignore=(OSError,))
    assert "not yet" in str(e.value)
    with pytest.raises(ConnectionRefusedError):  # not ignored: propagates at once
        wait_for(flaky, timeout=5)


def test_every_tool_is_installed_from_a_listed_package():
    """Each tool the lab runs comes from a package `make deps` installs (or an essential one),
    and is installed: a missing one fails the tests that use it rather than skipping them."""
    listed = set((REPO / "scripts" / "debian-packages").read_text().split())
    for tool, package in sorted(labmod.TOOL_PACKAGES.items()):
        if package not in listed:
            r = subprocess.run(["dpkg-query", "-W", "-f=${Essential}", package],
                               capture_output=True, text=True)
            assert r.stdout == "yes", "%s: package %s is not in scripts/debian-packages" \
                % (tool, package)
        assert Path(labmod._tool(tool)).is_file(), tool
    with pytest.raises(labmod.LabToolMissing, match="not in lab.TOOL_PACKAGES"):
        labmod._tool("frobnicate")


def test_host_side_commands_are_confined_to_lab_namespaces():
    # refused before anything runs: these would act on the host's own namespace
    for args in (["ip", "link", "show"], ["ip", "-n", "myns", "link"], ["tc", "qdisc"],
                 ["nft", "list", "ruleset"], ["ip", "-j", "route"]):
        with pytest.raises(LabError, match="refusing"):
            labmod._host(args)
    for ns in ("foreign", "egx-1-a", "netns0"):
        with pytest.raises(LabError, match="not a lab namespace"):
            labmod._delete_namespace(ns)
        with pytest.raises(LabError, match="not a lab namespace"):
            labmod._kill_ns_processes(ns)
    # allowed: listing is read-only
    assert isinstance(list_namespaces(), list)


# ---------------------------------------------------------------------------------------------
# topology and traffic


@root
def test_chain_end_to_end_through_forwarding_gw(lab):
    lab.apply(CHAIN_FWD)
    client, gw, server = lab["client"], lab["gw"], lab["server"]
    assert (client.name, client.ns) == ("client", "eg-%s-client" % lab.run)
    assert sorted(lab.namespaces()) == sorted("eg-%s-%s" % (lab.run, r)
                                              for r in ("client", "gw", "server"))
    assert gw.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    assert client.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
    assert client.addr("eth0") == "10.0.0.2" and client.addr("eth0", 6) == "fd00::2"
    assert {r.get("gateway") for r in client.json(["ip", "-j", "route"])} >= {"10.0.0.1"}

    assert client.ping("192.0.2.2").ok and client.ping("fd01::2").ok
    assert not client.ping("192.0.2.99", timeout=0.3).ok     # nobody there

    server.http_server(8080, bind="::")
    assert client.curl("http://192.0.2.2:8080/").stdout == "server 10.0.0.2\n"
    assert client.curl("http://[fd01::2]:8080/").stdout == "server fd00::2\n"
    named = server.http_server(8081, name="isp-x")
    assert client.curl("http://192.0.2.2:8081/").stdout == "isp-x 10.0.0.2\n"
    assert client.curl("http://192.0.2.2:8081/bytes/1000").stdout == "x" * 1000
    # negative: nothing listens on 8082; the v4-only server has no v6 socket
    r = client.curl("http://192.0.2.2:8082/", check=False)
    assert r.returncode == 7, r
    assert client.curl("http://[fd01::2]:8081/", check=False).returncode == 7
    assert "GET / " in named.log()


@root
def test_without_forward_on_gw_nothing_crosses_it(lab):
    lab.apply(CHAIN)
    client, gw, server = lab["client"], lab["gw"], lab["server"]
    server.http_server(8080)
    assert client.ping("10.0.0.1").ok            # the gw itself answers
    assert not client.ping("192.0.2.2", timeout=0.5).ok
    assert not client.ping("fd01::2", timeout=0.5).ok
    assert not curl_ok(client, "http://192.0.2.2:8080/")
    gw.forward()
    assert client.ping("192.0.2.2").ok and client.ping("fd01::2").ok
    assert client.curl("http://192.0.2.2:8080/").stdout == "server 10.0.0.2\n"
    gw.forward(False)
    assert not client.ping("192.0.2.2", timeout=0.5).ok


@root
def test_link_api(lab):
    a, b = lab.node("a"), lab.node("b", forward=True)
    assert lab.node("a") is a                      # get-or-create
    link = lab.link(a, "b", addrs=["10.9.0.1/30", ["10.9.1.1/30", "fd09::1/64"]],
                    addrs6=["fd09::2/64", None], mac=("02:00:00:00:00:0a", None), mtu=1400)
    assert (link.a_if, link.b_if) == ("eth0", "eth0")
    auto = lab.link(a, b)                          # next free names
    assert (auto.a_if, auto.b_if) == ("eth1", "eth1")
    assert a.mac("eth0") == "02:00:00:00:00:0a" and b.mac("eth0") != a.mac("eth0")
    assert a.iface("eth0")["mtu"] == 1400 and a.iface("eth1")["mtu"] == 1500
    assert a.addrs("eth0") == ["10.9.0.1/30", "fd09::2/64"]
    assert b.addrs("eth0", 4) == ["10.9.1.1/30"] and b.addr("eth0", 6) == "fd09::1"
    assert lab.peer(a, "eth0") == (b, "eth0") and lab.peer(a, "nope") is None
    with pytest.raises(LabError, match="no global IPv4"):
        a.addr("eth1")
    with pytest.raises(LabError, match="already has"):
        lab.link(a, b, ifnames=("eth0", "x"))
    with pytest.raises(LabCommandError) as e:
        a.run(["ip", "link", "show", "dev", "nope"])
    assert "[a]" in str(e.value) and "nope" in str(e.value)
    assert a.run(["false"], check=False).returncode == 1


# ---------------------------------------------------------------------------------------------
# failures


@root
def test_cut_down_is_carrier_loss_and_restore_brings_traffic_back(lab):
    lab.apply(CHAIN_FWD)
    client, gw, server = lab["client"], lab["gw"], lab["server"]
    server.http_server(8080)
    url = "http://192.0.2.2:8080/"
    assert curl_ok(client, url) and gw.carrier("wan0")
    lab.cut(gw, "wan0")
    flags = gw.iface("wan0")["flags"]
    assert "UP" in flags and "LOWER_UP" not in flags and "NO-CARRIER" in flags
    wait_for(lambda: not curl_ok(client, url), timeout=5, what="curl to fail while cut")
    assert not client.ping("fd01::2", timeout=0.3).ok
    with pytest.raises(LabError, match="already cut"):
        lab.cut(gw, "wan0", mode="blackhole")
    lab.restore(gw, "wan0")
    assert gw.carrier("wan0") and server.carrier("eth0")
    wait_for(lambda: curl_ok(client, url), timeout=5, what="curl to work after restore")
    wait_for(lambda: client.ping("fd01::2").ok, timeout=5, what="v6 ping after restore")
    # the peer's own routes over the cut link came back too
    routes = server.json(["ip", "-j", "route"])
    assert any(r["dst"] == "default" and r.get("gateway") == "192.0.2.1" for r in routes)
    lab.restore(gw, "wan0")                        # not cut: nothing happens
    with pytest.raises(ValueError):
        lab.cut(gw, "wan0", mode="unplug")


@root
def test_blackhole_drops_everything_while_the_link_stays_up(lab):
    lab.apply(CHAIN_FWD)
    client, gw, server = lab["client"], lab["gw"], lab["server"]
    server.http_server(8080)
    url = "http://192.0.2.2:8080/"
    assert curl_ok(client, url)
    lab.cut(gw, "wan0", mode="blackhole")
    assert gw.carrier("wan0") and server.carrier("eth0")   # live link...
    assert not curl_ok(client, url)                          # ...dead behind it
    assert not gw.ping("192.0.2.2", timeout=0.3).ok
    assert not server.ping("192.0.2.1", timeout=0.3).ok      # both directions
    assert not client.ping("fd01::2", timeout=0.3).ok
    assert client.ping("10.0.0.1").ok                        # the LAN side is untouched
    lab.restore(gw, "wan0")
    wait_for(lambda: curl_ok(client, url), timeout=5, what="curl to work after restore")
    assert gw.ping("192.0.2.2").ok and client.ping("fd01::2").ok


# ---------------------------------------------------------------------------------------------
# impairments


@root
def test_netem_loss_is_emulated_with_nftables(lab_factory):
    lab = lab_factory(netem=False).apply(CHAIN_FWD)
    assert lab.has_netem is False
    client, gw, server = lab["client"], lab["gw"], lab["server"]
    gw.netem("lan0", loss_pct=30)      # drops replies on their way back to the client
    r = client.ping("192.0.2.2", count=200, interval=0.01, timeout=0.5)
    assert r.sent == 200 and 15 <= r.loss_pct <= 45, r.loss_pct
    table = gw.json(["nft", "-j", "list", "table", "netdev", "lab_impair"])["nftables"]
    drops = [x["counter"]["packets"] for e in table if "rule" in e
             for x in e["rule"]["expr"] if "counter" in x]
    lost = 200 - r.received     # the rule also sees ARP and ND, hence the small margin
    assert len(drops) == 1 and lost <= drops[0] <= lost + 10, (drops, lost)
    assert server.run(["nft", "list", "tables"]).stdout.strip() == ""  # only in gw
    gw.netem("lan0")                   # clear
    r = client.ping("192.0.2.2", count=100, interval=0.01, timeout=0.5)
    assert r.received == 100, r.loss_pct
    with pytest.raises(ValueError):
        gw.netem("lan0", loss_pct=120)


@root
def test_rate_limit_caps_throughput(lab_factory):
    lab = lab_factory(netem=False).apply(CHAIN_FWD)
    client, gw, server = lab["client"], lab["gw"], lab["server"]
    server.iperf3_server(5201)

    def mbit():
        d = client.json(["iperf3", "-c", "192.0.2.2", "-p", "5201", "-t", "1", "-J"],
                        timeout=20)
        return d["end"]["sum_received"]["bits_per_second"] / 1e6
    gw.netem("wan0", rate_mbit=10)
    assert "tbf" in gw.run(["tc", "qdisc", "show", "dev", "wan0"]).stdout
    limited = mbit()
    assert 5 <= limited <= 12, limited
    gw.netem("wan0")
    assert "tbf" not in gw.run(["tc", "qdisc", "show", "dev", "wan0"]).stdout
    free = mbit()
    assert free > 10 * limited, (free, limited)


@root
@pytest.mark.optional_feature("netem")
def test_delay_with_netem(lab):
    """Delay where the kernel has netem; a skip, with the reason, where it has not."""
    lab.apply(CHAIN_FWD)
    client, gw = lab["client"], lab["gw"]
    gw.netem("wan0", delay_ms=40)
    assert client.ping("192.0.2.2", count=3, interval=0.05).avg_ms >= 35
    gw.netem("wan0")
    assert client.ping("192.0.2.2", count=3, interval=0.05).avg_ms < 20


@root
def test_delay_without_netem_raises_feature_missing(lab_factory):
    lab = lab_factory(netem=False).apply(CHAIN_FWD)
    gw = lab["gw"]
    with pytest.raises(LabFeatureMissing, match="netem"):
        gw.netem("wan0", delay_ms=40, loss_pct=50, rate_mbit=1)
    # refused before anything changed
    assert "tbf" not in gw.run(["tc", "qdisc", "show", "dev", "wan0"]).stdout
    assert gw.run(["nft", "list", "tables"]).stdout.strip() == ""
    with pytest.raises(LabFeatureMissing):
        gw.netem("wan0", jitter_ms=5)


def test_only_marked_features_skip_and_failures_show_logs(tmp_path):
    """The conftest turns LabFeatureMissing into a skip only in a test marked optional_feature
    for it and counts the skips with their reasons; a missing tool or egressd binary fails.
    It attaches lab logs to a failure (kept with EG_LAB_KEEP_LOGS=1) and fails a session that
    leaves a lab open."""
    if not labmod.is_root():
        pytest.skip("needs root: creates network namespaces")
    p = inner_pytest(tmp_path, """
        import pytest
        from lab import LabFeatureMissing, TOOL_PACKAGES
        @pytest.mark.optional_feature("frobnicator")
        def test_optional_feature(lab):
            raise LabFeatureMissing("frobnicator", "no frobnicator here")
        def test_required_feature(lab):
            raise LabFeatureMissing("frobnicator", "no frobnicator either")
        def test_unlisted_tool(lab):
            lab.node("t").run(["frobnicate"])
        def test_missing_tool(lab, monkeypatch):
            monkeypatch.setitem(TOOL_PACKAGES, "frobnicate", "frobnicator-utils")
            lab.node("t").run(["frobnicate"])
        def test_needs_daemon(egressd_bin):
            pass
        def test_plain():
            pass
        def test_leaky():
            import lab
            lab.Lab().node("leak")     # never closed: the session end must flag it
        def test_broken(lab):
            p = lab.node("x").popen(["sh", "-c", "echo marker-$((6*7)); exec sleep 100"])
            lab.node("x").run(["true"])
            import lab as m
            m.wait_for(lambda: "marker-42" in p.log(), what="marker")
            assert False, "deliberate"
        """, env={"EGRESSD": str(tmp_path / "no-such-egressd"), "EG_LAB_KEEP_LOGS": "1"})
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 1, out
    assert "4 failed, 2 passed, 1 skipped, 1 error" in out, out
    leak = [line for line in out.splitlines() if line.startswith("lab: LEAK")]
    assert len(leak) == 1 and "-leak" in leak[0], out
    assert not run_namespaces(leak[0].split("never closed: ")[1].split(";")[0])
    assert "lab: no frobnicator here" in out
    assert "1 skipped:\n    1  lab: no frobnicator here\n" in out, out
    assert "LabFeatureMissing: no frobnicator either" in out, out
    assert "kernel feature 'frobnicator' missing, and the test is not marked " \
        "optional_feature('frobnicator')" in out, out
    assert "tool 'frobnicate' is not in lab.TOOL_PACKAGES" in out, out
    assert "tool 'frobnicate' not found: install Debian package frobnicator-utils" in out, out
    assert "egressd binary not found at %s" % (tmp_path / "no-such-egressd") in out
    assert "egress lab logs" in out and "marker-42" in out
    kept = [Path(line.split(" in ", 1)[1].strip()) for line in out.splitlines()
            if "logs kept in" in line]
    try:
        assert len(kept) == 4, out                         # the failed tests that had a lab
        broken = [d for d in kept if (d / "x.sh.log").exists()]
        assert len(broken) == 1, kept
        assert (broken[0] / "x.sh.log").read_text().startswith("marker-42")
        for d in kept:
            assert not run_namespaces(d.name)              # namespaces gone all the same
    finally:
        for d in kept:
            labmod._remove_run_dir(d.name, force=True)
    assert not [d for d in kept if d.exists()]


# ---------------------------------------------------------------------------------------------
# peers


@root
def test_nginx_dnsmasq_iperf3_peers_answer(lab):
    lab.apply(CHAIN_FWD)
    client, server = lab["client"], lab["server"]
    web = server.nginx(8088, "web1")
    assert client.curl("http://192.0.2.2:8088/").stdout == "web1 10.0.0.2\n"
    assert client.curl("http://[fd01::2]:8088/").stdout == "web1 fd00::2\n"
    (web.root / "file.txt").write_text("static\n")
    assert client.curl("http://192.0.2.2:8088/file.txt").stdout == "static\n"
    assert client.curl("http://192.0.2.2:8088/missing", "-f", check=False).returncode == 22
    assert client.curl("http://192.0.2.2:8089/", check=False).returncode == 7

    server.dnsmasq("--address=/svc.test/192.0.2.53", "--address=/svc.test/fd01::53",
                   "--local=/test/")
    query = textwrap.dedent("""
        import sys, dns.message, dns.query, dns.rcode
        q = dns.message.make_query(sys.argv[1], sys.argv[2])
        r = dns.query.udp(q, "192.0.2.2", timeout=2)
        print(dns.rcode.to_text(r.rcode()), *sorted(i.to_text() for a in r.answer for i in a))
        """)
    assert client.run([PY, "-c", query, "svc.test", "A"]).stdout.split() == \
        ["NOERROR", "192.0.2.53"]
    assert client.run([PY, "-c", query, "svc.test", "AAAA"]).stdout.split() == \
        ["NOERROR", "fd01::53"]
    assert client.run([PY, "-c", query, "other.test", "A"]).stdout.split() == ["NXDOMAIN"]

    server.iperf3_server(5301)
    d = client.json(["iperf3", "-c", "192.0.2.2", "-p", "5301", "-n", "1M", "-J"], timeout=20)
    # with -n, iperf3 3.12 may report the receiver's count before the last bytes arrive
    assert d["end"]["sum_sent"]["bytes"] >= 1 << 20 and d["end"]["sum_received"]["bytes"] > 0
    r = client.run(["iperf3", "-c", "192.0.2.2", "-p", "5302", "-n", "1K"], check=False)
    assert r.returncode != 0

    with pytest.raises(LabError, match="exited"):   # a daemon that cannot start is reported
        server.spawn_daemon(["sh", "-c", "echo cannot bind >&2; exit 3"], port=9)
    with pytest.raises(AssertionError, match="udp port 5353"):
        wait_port(server, 5353, proto="udp", timeout=0.2)


# ---------------------------------------------------------------------------------------------
# cleanup


@root
def test_close_removes_processes_namespaces_dir_and_lock():
    lab = Lab.from_spec(CHAIN_FWD)
    try:
        run, d = lab.run, lab.dir
        lock = labmod._lock_path(run)
        tracked = lab["server"].popen(["sleep", "1000"])
        srv = lab["server"].http_server(8080)
        # an untracked background process, forked away from the lab's view
        stray = int(lab["gw"].run(["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"])
                    .stdout)
        assert len(run_namespaces(run)) == 3 and d.is_dir() and lock.exists()
        assert not pid_gone(tracked.pid) and not pid_gone(stray)
        assert lab in labmod._LIVE
    finally:
        lab.close()
    assert tracked.poll() is not None and srv.poll() is not None
    wait_for(lambda: pid_gone(stray), timeout=3, what="untracked process to be gone")
    assert run_namespaces(run) == []
    assert not d.exists() and not lock.exists() and lab not in labmod._LIVE
    lab.close()                                   # idempotent
    with lab:                                     # and a context manager
        pass
    with pytest.raises(LabError, match="closed"):
        lab.node("again")


HELPER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from lab import Lab
lab = Lab()
lab.node("a")
p = lab.node("b").popen(["sleep", "1000"])
print(lab.run, p.pid, flush=True)
time.sleep(120)
"""


def start_helper():
    p = subprocess.Popen([PY, "-c", HELPER, str(HERE)], stdout=subprocess.PIPE, text=True,
                         preexec_fn=sigint_default)
    run, pid = p.stdout.readline().split()
    return p, run, int(pid)


@root
def test_killed_run_is_swept_but_a_live_one_is_not():
    helpers = []
    try:
        a, a_run, a_sleep = start_helper()
        helpers.append(a)
        b, b_run, b_sleep = start_helper()
        helpers.append(b)
        assert len(run_namespaces(a_run)) == 2 and len(run_namespaces(b_run)) == 2
        a.kill()                                   # SIGKILL: nothing can clean up
        a.wait(5)
        assert len(run_namespaces(a_run)) == 2     # left behind
        assert not pid_gone(a_sleep)
        with Lab() as lab:                         # the next lab sweeps the dead run
            assert run_namespaces(a_run) == []
            assert pid_gone(a_sleep)
            assert not labmod._lock_path(a_run).exists()
            assert not (labmod.TMP_BASE / a_run).exists()
            assert len(run_namespaces(b_run)) == 2  # ...never the live one
            assert not pid_gone(b_sleep)
            assert labmod.sweep() == []            # and again: nothing to do
            assert len(run_namespaces(lab.run)) == 0
        assert b.poll() is None
        b.send_signal(signal.SIGTERM)              # the handler cleans up, then dies of it
        assert b.wait(10) == -signal.SIGTERM
        assert run_namespaces(b_run) == [] and pid_gone(b_sleep)
        assert not labmod._lock_path(b_run).exists()
    finally:
        for h in helpers:
            if h.poll() is None:
                h.kill()
            h.wait(5)
        labmod.sweep()


@root
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_pytest_run_cleans_up(tmp_path, sig):
    out = tmp_path / "run.txt"
    p = inner_pytest(tmp_path, """
        import os, time
        from pathlib import Path
        def test_hold(lab):
            lab.node("a")
            p = lab.node("b").popen(["sleep", "1000"])
            Path(os.environ["EG_TEST_OUT"]).write_text("%s %d" % (lab.run, p.pid))
            time.sleep(60)
        """, env={"EG_TEST_OUT": str(out)})
    try:
        wait_for(lambda: out.exists() and out.read_text(), timeout=30, what="inner lab")
        run, pid = out.read_text().split()
        assert len(run_namespaces(run)) == 2 and not pid_gone(int(pid))
        p.send_signal(sig)
        text, _ = p.communicate(timeout=30)
        assert p.returncode != 0, text
        assert run_namespaces(run) == [], text
        assert pid_gone(int(pid))
        assert not labmod._lock_path(run).exists()
        assert not (labmod.TMP_BASE / run).exists()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
