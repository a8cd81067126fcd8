"""A strict reader of Prometheus' text exposition format (0.0.4), for tests of /metrics.

    families = promtext.parse(text)          # raises promtext.FormatError naming the line
    families["egress_dns_pending"].type      # "gauge"
    promtext.sample(text, "egress_proxy_refused_total", reason="acl")    # 2.0 (or None)

Stricter than Prometheus' own parser where the format leaves room that egressd never uses, so
that a slip in the renderer shows here:
  - every family has exactly one HELP (non-empty) and one TYPE line, both before its first
    sample, and its samples are contiguous (no family is taken up again later);
  - names and label names as the format defines them, label names not starting with "__";
    label values and help text with no escape but the format's (\\\\, \\" in values, \\n);
    no sample repeated with the same labels, no label twice in one sample; no timestamps, no
    blank lines, the text ends with a newline;
  - counters are named *_total and never negative or NaN;
  - histograms: only NAME_bucket (with le), NAME_sum and NAME_count, and for each label set
    buckets in increasing order of le, counts cumulative (never decreasing), the last le
    "+Inf", NAME_count equal to it and a NAME_sum beside it.
What it must not do: accept a text that Prometheus would refuse.
"""

import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
LABEL_START = re.compile(r'([^="{},]*)="')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


class FormatError(ValueError):
    pass


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        self.samples = []  # (sample name, {label: value}, float value)

    def series(self, sample_name=None):
        """{frozenset(labels.items()): value} of one sample name (default: the family's)."""
        want = sample_name or self.name
        return {frozenset(lb.items()): v for n, lb, v in self.samples if n == want}


def _float(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        raise FormatError("%s: %r is not a number" % (where, s))
    return float(s)


def _unescape(s, allowed, where):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in allowed:
                raise FormatError("%s: bad escape %r" % (where, s[i:i + 2]))
            out.append("\n" if s[i + 1] == "n" else s[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _labels(s, i, where):
    """Parse the label list that starts at s[i] (just past '{'); returns (dict, index past
    the closing '}')."""
    labels = {}
    while True:
        if s.startswith("}", i) and not labels:
            return labels, i + 1
        m = LABEL_START.match(s, i)
        if not m:
            raise FormatError("%s: bad label list at %r" % (where, s[i:i + 20]))
        name = m.group(1)
        if not LABEL.match(name) or name.startswith("__"):
            raise FormatError("%s: bad label name %r" % (where, name))
        if name in labels:
            raise FormatError("%s: label %r twice" % (where, name))
        i = j = m.end()
        while j < len(s) and s[j] != '"':
            j += 2 if s[j] == "\\" else 1
        if j >= len(s):
            raise FormatError("%s: unterminated label value" % where)
        labels[name] = _unescape(s[i:j], '\\"n', where)
        i = j + 1
        if s.startswith("}", i):
            return labels, i + 1
        if not s.startswith(",", i) or s.startswith(",}", i):
            raise FormatError("%s: expected ',' or '}' after label %r" % (where, name))
        i += 1


def _sample(line, where):
    m = re.match(r"[^{ ]+", line)
    name = m.group(0) if m else ""
    if not NAME.match(name):
        raise FormatError("%s: bad metric name %r" % (where, name))
    labels, i = {}, len(name)
    if line.startswith("{", i):
        labels, i = _labels(line, i + 1, where)
    rest = line[i:]
    if not rest.startswith(" ") or not rest[1:] or " " in rest[1:]:
        if re.fullmatch(r" \S+ \S+", rest):
            raise FormatError("%s: a timestamp (egressd writes none)" % where)
        raise FormatError("%s: not a sample: %r" % (where, line))
    return name, labels, _float(rest[1:], where)


def _family_of(sample_name, families):
    """The family a sample belongs to: its own name, or a histogram's NAME_bucket & co."""
    if sample_name in families and families[sample_name].type != "histogram":
        return families[sample_name]
    for suffix in HIST_SUFFIXES:
        base = sample_name[:-len(suffix)]
        if sample_name.endswith(suffix) and base in families \
                and families[base].type == "histogram":
            return families[base]
    return families.get(sample_name)


def parse(text):
    """{family name: Family} of a whole exposition; FormatError at the first fault."""
    if text and not text.endswith("\n"):
        raise FormatError("the text does not end with a newline")
    families, order, current, done = {}, [], None, set()
    for no, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d" % no
        if not line:
            raise FormatError("%s: blank line" % where)
        if line.startswith("#"):
            m = re.match(r"# (HELP|TYPE) (\S+)(?: (.*))?\Z", line)
            if not m:
                if re.match(r"#\s*(HELP|TYPE)\b", line):
                    raise FormatError("%s: malformed %r" % (where, line))
                continue  # a comment
            kind, name, rest = m.group(1), m.group(2), m.group(3) or ""
            if not NAME.match(name):
                raise FormatError("%s: bad metric name %r" % (where, name))
            f = families.get(name)
            if f is None:
                f = families[name] = Family(name)
                order.append(name)
            if f.samples or name in done:
                raise FormatError("%s: %s of %s after its samples" % (where, kind, name))
            if kind == "HELP":
                if f.help is not None:
                    raise FormatError("%s: second HELP of %s" % (where, name))
                if not rest.strip():
                    raise FormatError("%s: empty HELP of %s" % (where, name))
                f.help = _unescape(rest, "\\n", where)
            else:
                if f.type is not None:
                    raise FormatError("%s: second TYPE of %s" % (where, name))
                if rest not in TYPES:
                    raise FormatError("%s: unknown type %r of %s" % (where, rest, name))
                f.type = rest
            if current is not None and current is not f:
                done.add(current.name)
            current = f
            continue
        name, labels, value = _sample(line, where)
        f = _family_of(name, families)
        if f is None or f.type is None:
            raise FormatError("%s: sample %s before (or without) its TYPE line" % (where, name))
        if f.name in done:
            raise FormatError("%s: %s taken up again after another family" % (where, f.name))
        if current is not f:
            raise FormatError("%s: sample %s outside its family's block" % (where, name))
        if f.type == "histogram" and name == f.name:
            raise FormatError("%s: histogram %s has a plain sample" % (where, name))
        if f.type == "histogram" and (("le" in labels) != (name == f.name + "_bucket")):
            raise FormatError("%s: le belongs on %s_bucket only" % (where, f.name))
        key = (name, frozenset(labels.items()))
        if any((n, frozenset(lb.items())) == key for n, lb, _ in f.samples):
            raise FormatError("%s: %s%s repeated" % (where, name, labels))
        f.samples.append((name, labels, value))
    for name in order:
        f = families[name]
        if f.help is None or f.type is None:
            raise FormatError("%s has no %s line" % (name, "HELP" if f.help is None else "TYPE"))
        if not f.samples:
            raise FormatError("%s: HELP and TYPE without samples" % name)
        if f.type == "counter":
            _check_counter(f)
        elif f.type == "histogram":
            _check_histogram(f)
    return families


def _check_counter(f):
    if not f.name.endswith("_total"):
        raise FormatError("counter %s is not named *_total" % f.name)
    for _, labels, v in f.samples:
        if math.isnan(v) or v < 0:
            raise FormatError("counter %s%s is %r" % (f.name, labels, v))


def _check_histogram(f):
    groups = {}
    for name, labels, v in f.samples:
        rest = frozenset((k, x) for k, x in labels.items() if k != "le")
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            g["buckets"].append((_float(labels["le"], "%s le" % name), v))
        elif name.endswith("_sum"):
            g["sum"] = v
        else:
            g["count"] = v
    for rest, g in groups.items():
        what = "%s%s" % (f.name, dict(rest))
        b = g["buckets"]
        if not b or b[-1][0] != math.inf:
            raise FormatError("%s: the last bucket is not le=\"+Inf\"" % what)
        for (le0, c0), (le1, c1) in zip(b, b[1:]):
            if not le1 > le0:
                raise FormatError("%s: bucket le=%r after le=%r" % (what, le1, le0))
            if c1 < c0:
                raise FormatError("%s: bucket counts are not cumulative (%r after %r)"
                                  % (what, c1, c0))
        if g["sum"] is None or g["count"] is None:
            raise FormatError("%s: no _sum or no _count" % what)
        if g["count"] != b[-1][1]:
            raise FormatError("%s: _count %r is not the +Inf bucket's %r"
                              % (what, g["count"], b[-1][1]))


def sample(text, name, **labels):
    """The value of the sample NAME whose labels include LABELS, or None (text parsed
    strictly first)."""
    fams = parse(text)
    for f in fams.values():
        for n, lb, v in f.samples:
            if n == name and all(lb.get(k) == x for k, x in labels.items()):
                return v
    return None
