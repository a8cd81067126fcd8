"""pytest glue for the Egress lab (tests/lab): fixtures, options, markers and leak checks.

Fixtures
  lab          a fresh Lab (see lab.py) for one test, closed after it
  lab_factory  lab_factory(**kw) -> another Lab (e.g. netem=False); all closed after the test
  egressd_bin  Path of the egressd binary under test; fails the test if it is missing
  egressctl_bin  Path of egressctl beside it; fails the test if it is missing
Option / environment
  --egressd PATH or EGRESSD=PATH  (default: <repo>/build/src/cmd/egressd, found from this
  file's location; pass an ASan build's binary the same way)
  EG_LAB_KEEP_LOGS=1  keep the run directory (process logs) of a failed test
  EG_LAB_NETEM=0      behave as if the kernel had no netem (exercise the emulation)
Markers
  requires_root  skip unless running as root (tests using `lab` skip the same way; `make
                 check-lab` refuses to run without root, so there nothing skips for it)
  optional_feature(NAME, ...)  the test is about a kernel feature being optional: a
                 LabFeatureMissing for NAME (e.g. "netem") skips it with the reason

Nothing else skips: a LabFeatureMissing in a test not marked for its feature, a missing tool
(LabToolMissing: the packages are ours to install) and a missing egressd binary all fail.
The terminal summary counts the skips and gives their reasons. A failed test's report gets
a section with the lab's log paths and their last lines. At the end of the session any
namespace left behind by a lab this process created fails the run.

Parallel runs (pytest-xdist, `-n 2 --dist loadfile`: what `make check-lab` does): each
worker builds its own labs (run ids never collide, and a lab sweeps only dead runs), checks
its own leftovers at its end and hands them, with the kept-log lines, to the controlling
process, which prints them and fails the run.  Skips and -rs work from the reports as
without xdist.  A module whose tests must not run beside another module's says so with
`pytestmark = pytest.mark.serial` (e.g. a test that compares CPU time or throughput between
processes): its module then runs alone, the other workers' tests (of this run or of another
lab run on the machine) waiting meanwhile (see serial_gate).  LAB_JOBS=0 runs one module
after another in one process.

What it must not do: create anything itself outside a Lab, or touch namespaces of other runs.
"""

import collections
import fcntl
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # so tests anywhere can `from lab import ...`

import lab as labmod  # noqa: E402
from lab import Lab, LabFeatureMissing, is_root  # noqa: E402
from egress_server import server_path  # noqa: E402

REPO = HERE.parents[1]
DEFAULT_EGRESSD = REPO / "build" / "src" / "cmd" / "egressd"
LOG_TAIL_LINES = 15

requires_root = pytest.mark.requires_root
_KEPT = []  # "lab RUN: logs kept in DIR" lines for the terminal summary
_LEAKS = []  # "labs never closed ...; namespaces left ..." of this process or of a worker
XDIST_KEY = "egress_lab"  # our part of a worker's workeroutput


def pytest_addoption(parser):
    parser.addoption("--egressd", default=None, metavar="PATH",
                     help="egressd binary to test (env EGRESSD; default %s)" % DEFAULT_EGRESSD)


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_root: skip unless running as root")
    config.addinivalue_line("markers", "daemon: runs egressd (also run against the ASan build)")
    config.addinivalue_line("markers", "optional_feature(name, ...): a LabFeatureMissing for "
                            "one of these kernel features skips the test instead of failing it")
    config.addinivalue_line("markers", "serial: the module runs alone: no other lab test "
                            "(another xdist worker's, another run's) runs meanwhile")


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_root") and not is_root():
        pytest.skip("needs root: creates network namespaces")


def egressd_path(config):
    """The egressd binary chosen by --egressd, then EGRESSD, then the default build dir."""
    opt = config.getoption("--egressd", default=None)
    return Path(opt or os.environ.get("EGRESSD") or DEFAULT_EGRESSD)


def tool_path(config, name):
    """A compiled test tool of tests/tools: beside the egressd under test (<build>/tests/tools),
    or in EG_TOOLS_DIR."""
    d = os.environ.get("EG_TOOLS_DIR")
    return Path(d) / name if d else egressd_path(config).parents[2] / "tests" / "tools" / name


@pytest.fixture(scope="session")
def tool_bin(request):
    """tool_bin("dhcp6_probe"): the path of a compiled test tool; fails when it is not built."""
    def get(name):
        path = tool_path(request.config, name)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail("test tool %s not found at %s (build it, or set EG_TOOLS_DIR)"
                        % (name, path), pytrace=False)
        return path
    return get


@pytest.fixture(scope="session")
def server_bin(request):
    """The egress-server binary under test: EGRESS_SERVER, else beside egressd."""
    path = server_path(request.config)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("egress-server not found at %s (build it, or set EGRESS_SERVER)" % path,
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def egressd_bin(request):
    path = egressd_path(request.config)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("egressd binary not found at %s (build it, or set EGRESSD / --egressd)"
                    % path, pytrace=False)
    return path


@pytest.fixture(scope="session")
def egressctl_bin(request):
    path = egressd_path(request.config).parent / "egressctl"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("egressctl binary not found at %s (build it)" % path, pytrace=False)
    return path


# The serial gate: two flock(2) files beside the labs' run locks (not named *.lock: those
# are runs, which the sweep removes).  Every module holds GATE while it runs: shared, or
# exclusive if marked serial.  TURN makes a waiting serial module go first: it holds TURN
# while it waits for GATE, and every module takes TURN (briefly) before GATE, so modules
# starting meanwhile queue behind it.
SERIAL_GATE = labmod.LOCK_DIR / "serial.gate"
SERIAL_TURN = labmod.LOCK_DIR / "serial.turn"
GATE_HELD = "EG_LAB_GATE_HELD"  # in the environment of what a test holding the gate starts


def _flock(path, how):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, how)
    return fd


@pytest.fixture(scope="module", autouse=True)
def serial_gate(request):
    """A module marked serial holds the gate exclusive from its first fixture to its last
    teardown: it runs alone.  Any other module holds it shared: it waits for one.  A pytest
    a test starts (test_lab.py's inner runs) is inside its parent's hold: it takes nothing."""
    if not is_root() or os.environ.get(GATE_HELD):
        yield
        return
    serial = request.node.get_closest_marker("serial") is not None
    turn = _flock(SERIAL_TURN, fcntl.LOCK_EX)
    try:
        gate = _flock(SERIAL_GATE, fcntl.LOCK_EX if serial else fcntl.LOCK_SH)
    finally:
        os.close(turn)
    os.environ[GATE_HELD] = "1"
    try:
        yield
    finally:
        del os.environ[GATE_HELD]
        os.close(gate)


def _keep_logs(request):
    return bool(getattr(request.node, "_lab_failed", False)
                and os.environ.get("EG_LAB_KEEP_LOGS", "") not in ("", "0"))


def _close(request, labs):
    keep = _keep_logs(request)
    errors = []
    for lb in labs:
        try:
            lb.close(keep_logs=keep)
        except Exception as e:  # close the others anyway
            errors.append(e)
        if keep:
            _KEPT.append("lab %s: logs kept in %s" % (lb.run, lb.dir))
    if errors:
        raise errors[0]


@pytest.fixture
def lab(request):
    """A fresh Lab for one test; closed (namespaces and processes removed) after it."""
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    lb = Lab()
    yield lb
    _close(request, [lb])


@pytest.fixture
def lab_factory(request):
    """Make labs with custom arguments: lab_factory(netem=False). All closed after the test."""
    if not is_root():
        pytest.skip("needs root: creates network namespaces")
    made = []

    def make(**kw):
        lb = Lab(**kw)
        made.append(lb)
        return lb
    yield make
    _close(request, made)


def _log_report():
    out = []
    for lb in sorted(labmod._LIVE, key=lambda x: x.run):
        out.append("lab %s: run dir %s%s" % (lb.run, getattr(lb, "dir", "?"),
                                            "" if os.environ.get("EG_LAB_KEEP_LOGS") else
                                            " (removed at teardown; EG_LAB_KEEP_LOGS=1 keeps it)"))
        for proc in lb._procs:
            if proc.log_path is None:
                continue
            state = "running" if proc.poll() is None else "exit %s" % proc.returncode
            out.append("--- %s (%s, %s) %s" % (proc.name, proc.node.name, state, proc.log_path))
            tail = proc.tail(LOG_TAIL_LINES)
            if tail:
                out.append(tail)
    return "\n".join(out)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    exc = call.excinfo
    if exc is not None and isinstance(exc.value, LabFeatureMissing):
        allowed = [n for m in item.iter_markers("optional_feature") for n in m.args]
        if exc.value.feature in allowed:
            line = item.location[1] + 1 if item.location[1] is not None else 0
            rep.outcome = "skipped"
            rep.longrepr = (str(item.path), line, "Skipped: lab: %s" % exc.value)
            return
        rep.sections.append(("egress lab", "kernel feature %r missing, and the test is not "
                             "marked optional_feature(%r)" % (exc.value.feature,
                                                            exc.value.feature)))
    if rep.failed:
        item._lab_failed = True
        try:
            text = _log_report()
        except Exception as e:  # a report must never hide the real failure
            text = "could not collect lab logs: %s" % e
        if text:
            rep.sections.append(("egress lab logs", text))


def _leak_check():
    """Close what this process's labs left and say what it was; None if nothing."""
    if not labmod._CREATED_RUNS or not is_root():
        return None
    live = sorted(lb.run for lb in labmod._LIVE)
    prefixes = tuple("eg-%s-" % r for r in labmod._CREATED_RUNS)
    leaked = [ns for ns in labmod.list_namespaces() if ns.startswith(prefixes)]
    if not leaked and not live:
        return None
    labmod._close_all("session end")
    return "labs never closed: %s; namespaces left: %s" % (" ".join(live) or "-",
                                                          " ".join(leaked) or "-")


@pytest.hookimpl(tryfirst=True)  # an xdist worker sends its workeroutput after this
def pytest_sessionfinish(session, exitstatus):
    leak = _leak_check()
    if leak:
        _LEAKS.append(leak)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports and fails
        workeroutput[XDIST_KEY] = {"kept": list(_KEPT), "leaks": list(_LEAKS)}
        return
    if _LEAKS:  # the terminal summary says what
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist's controller: a worker ended; take its kept-log lines and leaks."""
    out = (getattr(node, "workeroutput", None) or {}).get(XDIST_KEY)
    if out is None:  # a worker that crashed: xdist reports that itself
        return
    worker = node.gateway.id
    _KEPT.extend(out["kept"])
    _LEAKS.extend("%s: %s" % (worker, line) for line in out["leaks"])


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if _KEPT or skipped or _LEAKS:
        terminalreporter.section("egress lab")
    for line in _KEPT:
        terminalreporter.write_line(line)
    for line in _LEAKS:
        terminalreporter.write_line("lab: LEAK: " + line, red=True)
    if skipped:
        reasons = collections.Counter(_skip_reason(rep) for rep in skipped)
        terminalreporter.write_line("%d skipped:" % len(skipped), yellow=True)
        for why, n in sorted(reasons.items()):
            terminalreporter.write_line("  %3d  %s" % (n, why))


def _skip_reason(rep):
    # (path, line, "Skipped: why"); a list once it came from an xdist worker
    if isinstance(rep.longrepr, (tuple, list)) and len(rep.longrepr) == 3:
        return rep.longrepr[2].removeprefix("Skipped: ")
    return str(rep.longrepr)
