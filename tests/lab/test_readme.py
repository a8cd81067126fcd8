"""README's configuration examples are configurations the binaries take.

A user learns egress.conf and egress-server.conf from README.md and copies its ```ini
blocks. Each block is checked with `-n` by the binary whose sections it has (egressd, or
egress-server for [server], [store], [hub], [resolver]); systemd units are left out. A
block that only makes sense as a continuation of the example before it (a [policy] that
names the uplinks defined there) is checked together with that example. inih takes no
'#' comment after a value, so such a comment would become part of the value: none may be
there.

Needs no root and no namespace: `-n` only reads the file.
"""

import re
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SERVER_SECTIONS = {"server", "store", "hub", "resolver"}
SYSTEMD_SECTIONS = {"Unit", "Service", "Install"}


def ini_blocks():
    """[(line number of the block's first line, text)] of README's ```ini blocks."""
    text = README.read_text()
    return [(text[:m.start(1)].count("\n") + 1, m.group(1))
            for m in re.finditer(r"^```ini\n(.*?)^```", text, re.S | re.M)]


def sections(block):
    return {m.group(1).split()[0] for m in re.finditer(r"^\[([^\]]+)\]", block, re.M)}


def check(binary, block, tmp_path, name):
    path = tmp_path / name
    path.write_text(block)
    return subprocess.run([str(binary), "-n", "-c", str(path)], capture_output=True, text=True,
                          timeout=20)


def test_readme_has_examples():
    blocks = ini_blocks()
    assert len(blocks) >= 10, "README's ```ini blocks not found: %d" % len(blocks)


def test_no_hash_comment_after_a_value():
    bad = []
    for first, block in ini_blocks():
        for i, line in enumerate(block.splitlines()):
            if "=" in line and re.search(r"\s#", line.split("=", 1)[1]) \
                    and not line.lstrip().startswith((";", "#")):
                bad.append("README.md:%d: %s" % (first + i, line.strip()))
    assert not bad, "a '#' after a value is part of the value for inih; use ';':\n" + \
        "\n".join(bad)


@pytest.mark.parametrize("which", ["egressd", "egress-server"])
def test_examples_pass_check(which, egressd_bin, server_bin, tmp_path):
    binary = egressd_bin if which == "egressd" else server_bin
    failures, checked, previous = [], 0, None
    for first, block in ini_blocks():
        secs = sections(block)
        if not secs or secs & SYSTEMD_SECTIONS:
            continue
        if (which == "egress-server") != bool(secs & SERVER_SECTIONS):
            continue
        checked += 1
        alone = check(binary, block, tmp_path, "line%d.conf" % first)
        if alone.returncode == 0:
            previous = block
            continue
        # a continuation of the example before it
        if previous is not None and check(binary, previous + "\n" + block, tmp_path,
                                          "line%d-with-previous.conf" % first).returncode == 0:
            continue
        failures.append("README.md:%d: %s -n refused it:\n%s" % (first, which,
                                                                 alone.stderr.strip()))
    assert checked, "no %s example in README" % which
    assert not failures, "\n\n".join(failures)
