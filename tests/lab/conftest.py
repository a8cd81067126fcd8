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

What it must not do: create anything itself outside a Lab, or touch namespaces of other runs.
"""

import collections
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


def pytest_addoption(parser):
    parser.addoption("--egressd", default=None, metavar="PATH",
                     help="egressd binary to test (env EGRESSD; default %s)" % DEFAULT_EGRESSD)


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_root: skip unless running as root")
    config.addinivalue_line("markers", "daemon: runs egressd (also run against the ASan build)")
    config.addinivalue_line("markers", "optional_feature(name, ...): a LabFeatureMissing for "
                            "one of these kernel features skips the test instead of failing it")


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


def pytest_sessionfinish(session, exitstatus):
    if not labmod._CREATED_RUNS or not is_root():
        return
    live = sorted(lb.run for lb in labmod._LIVE)
    prefixes = tuple("eg-%s-" % r for r in labmod._CREATED_RUNS)
    leaked = [ns for ns in labmod.list_namespaces() if ns.startswith(prefixes)]
    if not leaked and not live:
        return
    labmod._close_all("session end")
    sys.stderr.write("\nlab: LEAK: labs never closed: %s; namespaces left: %s\n"
                     % (" ".join(live) or "-", " ".join(leaked) or "-"))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if _KEPT or skipped:
        terminalreporter.section("egress lab")
    for line in _KEPT:
        terminalreporter.write_line(line)
    if skipped:
        reasons = collections.Counter(_skip_reason(rep) for rep in skipped)
        terminalreporter.write_line("%d skipped:" % len(skipped), yellow=True)
        for why, n in sorted(reasons.items()):
            terminalreporter.write_line("  %3d  %s" % (n, why))


def _skip_reason(rep):
    if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
        return rep.longrepr[2].removeprefix("Skipped: ")
    return str(rep.longrepr)
