"""promtext.py, the strict reader of /metrics that the lab tests use: what it takes, and each
fault it must catch (a reader that let them through would make those tests pass on a broken
renderer).  Pure Python, no namespaces."""

import pytest

import promtext

GOOD = """# HELP req_total Requests by route, with "quotes" and a back\\\\slash\\nand a newline
# TYPE req_total counter
req_total{route="/api/x",code="200"} 3
req_total{route="a\\\\b\\"c\\nd}{,=",code="500"} 0
# HELP up_ratio Share
# TYPE up_ratio gauge
up_ratio NaN
# a comment
# HELP lat_seconds Latency
# TYPE lat_seconds histogram
lat_seconds_bucket{route="/",le="0.1"} 1
lat_seconds_bucket{route="/",le="1"} 2
lat_seconds_bucket{route="/",le="+Inf"} 3
lat_seconds_sum{route="/"} 7.5
lat_seconds_count{route="/"} 3
lat_seconds_bucket{le="+Inf"} 0
lat_seconds_sum 0
lat_seconds_count 0
"""


def test_reads_a_good_text():
    f = promtext.parse(GOOD)
    assert list(f) == ["req_total", "up_ratio", "lat_seconds"]
    assert f["req_total"].help == 'Requests by route, with "quotes" and a back\\slash\nand a newline'
    assert f["req_total"].series()[frozenset({("route", 'a\\b"c\nd}{,='),
                                              ("code", "500")})] == 0
    assert f["lat_seconds"].type == "histogram"
    assert promtext.sample(GOOD, "lat_seconds_count", route="/") == 3
    assert promtext.sample(GOOD, "req_total", code="404") is None


def bad(old, new, count=1):
    assert GOOD.count(old) >= count, old
    return GOOD.replace(old, new, count)


@pytest.mark.parametrize("text, why", [
    (bad("# HELP up_ratio Share\n", ""), "up_ratio has no HELP"),
    (bad("# TYPE up_ratio gauge\n", ""), "before (or without) its TYPE"),
    (bad("# HELP up_ratio Share\n", "# HELP up_ratio \n"), "empty HELP"),
    (bad("# TYPE up_ratio gauge\n", "# TYPE up_ratio gauge\n# TYPE up_ratio gauge\n"),
     "second TYPE"),
    (bad("# HELP up_ratio Share\n", "# HELP up_ratio Share\n# HELP up_ratio Share\n"),
     "second HELP"),
    (bad("up_ratio NaN\n", "up_ratio NaN\n# HELP up_ratio Again\n"), "after its samples"),
    (bad("up_ratio NaN\n", "up_ratio NaN\nreq_total{code=\"1\"} 1\n"), "taken up again"),
    (bad("# TYPE up_ratio gauge\n", "# TYPE up_ratio gauge\nreq_total{code=\"2\"} 1\n"),
     "taken up again"),
    (bad("up_ratio NaN", "up_ratio 1 1700000000000"), "timestamp"),
    (bad("up_ratio NaN", "up_ratio one"), "not a number"),
    (bad("# TYPE up_ratio gauge", "# TYPE up_ratio meter"), "unknown type"),
    (bad("up_ratio NaN\n", "up_ratio NaN\n\n"), "blank line"),
    (GOOD[:-1], "does not end with a newline"),
    (bad('code="200"', 'code="200",code="201"'), "twice"),
    (bad('code="200"', '__code="200"'), "bad label name"),
    (bad('code="200"', '1code="200"'), "bad label name"),
    (bad('code="200"', 'code="2\\t00"'), "bad escape"),
    (bad('code="200"', 'code="200",'), "expected ','"),
    (bad('code="200"} 3', 'code="200} 3'), "unterminated"),
    (bad("req_total{route=\"/api/x\",code=\"200\"} 3\n",
         "req_total{route=\"/api/x\",code=\"200\"} 3\n" * 2), "repeated"),
    (bad("# HELP req_total Requests", "# HELP req_total Req\\quests"), "bad escape"),
    (bad("req_total{route=\"/api/x\",code=\"200\"} 3", "req_total{code=\"1\"} -1"),
     "is -1"),
    (GOOD.replace("req_total", "requests"), "not named *_total"),
    (bad('le="1"} 2', 'le="1"} 0'), "not cumulative"),
    (bad('le="0.1"} 1\nlat_seconds_bucket{route="/",le="1"} 2',
         'le="1"} 2\nlat_seconds_bucket{route="/",le="0.1"} 1'), "bucket le="),
    (bad('lat_seconds_bucket{route="/",le="+Inf"} 3\n', ""), "last bucket"),
    (bad('lat_seconds_count{route="/"} 3', 'lat_seconds_count{route="/"} 4'), "+Inf bucket"),
    (bad('lat_seconds_sum{route="/"} 7.5\n', ""), "no _sum"),
    (bad('lat_seconds_sum 0\n', 'lat_seconds 0\n'), "plain sample"),
    (bad('lat_seconds_sum 0\n', 'lat_seconds_sum{le="1"} 0\n'), "le belongs"),
])
def test_catches(text, why):
    with pytest.raises(promtext.FormatError) as e:
        promtext.parse(text)
    assert why in str(e.value), e.value
