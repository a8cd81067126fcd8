#!/usr/bin/python3
"""Say at the end of `make check` how many tests were skipped, and why.

    scripts/check-skips.py LOG...

Each LOG is a meson test log (meson-logs/testlog.json: a program that exits 77 is a skip; a
kernel test lists its reasons on stderr, see tests/unit/kernel_test.c) or a pytest JUnit report
(the lab's, --junitxml). Prints the count and one line per skip; a LOG that is missing or
unreadable is an error (exit 1): the summary would under-count.
"""

import json
import sys
import xml.etree.ElementTree as ET

REASONS_MARK = "skipped (exit 77):"


def meson_skips(path):
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            if t.get("result") != "SKIP":
                continue
            err = (t.get("stderr") or "") + (t.get("stdout") or "")
            lines = err.splitlines()
            whys = []
            for i, ln in enumerate(lines):
                if ln.endswith(REASONS_MARK):
                    whys = [w.strip() for w in lines[i + 1:] if w.startswith("  ")]
            if not whys:
                whys = [next((w for w in reversed(lines) if w.strip()), "no reason given")]
            for why in whys:
                yield t["name"], why


def junit_skips(path):
    for case in ET.parse(path).getroot().iter("testcase"):
        for s in case.iter("skipped"):
            yield "%s::%s" % (case.get("classname"), case.get("name")), s.get("message", "")


def main(paths):
    skips = []
    for path in paths:
        try:
            found = list(junit_skips(path) if path.endswith(".xml") else meson_skips(path))
        except (OSError, ValueError, ET.ParseError) as e:
            print("check-skips: %s: %s" % (path, e), file=sys.stderr)
            return 1
        skips += [(path, name, why) for name, why in found]
    print("make check: %d skipped" % len(skips))
    for path, name, why in skips:
        print("  %s: %s: %s" % (path, name, why))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
