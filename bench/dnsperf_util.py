"""dnsperf and one-query checks, shared by the benchmarks that measure a DNS forwarder
(dns.py, proxy.py): run from a lab namespace against a server at an address and port."""
import re
import sys


def dnsperf(client, server, port, qfile, seconds):
    """dnsperf from client (100 in flight over 2 sockets) for seconds: its figures."""
    r = client.run(["dnsperf", "-s", server, "-p", port, "-d", qfile, "-l", seconds, "-c", 2,
                    "-q", 100], timeout=seconds + 30)
    out = r.stdout

    def num(label):
        m = re.search(r"%s:\s+([0-9.]+)" % re.escape(label), out)
        return float(m.group(1)) if m else None
    codes = re.search(r"Response codes:\s+(.*)", out)
    return {"qps": num("Queries per second"),
            "latency_ms": (num("Average Latency (s)") or 0) * 1e3,
            "completed": num("Queries completed"), "lost": num("Queries lost"),
            "codes": codes.group(1).strip() if codes else ""}


def answer(client, server, port, name):
    """The first A record server:port gives for name, or its rcode's name ("error": none)."""
    code = ("import dns.message, dns.query, dns.rcode\n"
            "r = dns.query.udp(dns.message.make_query(%r, 'A'), %r, port=%d, timeout=2)\n"
            "print(r.answer[0][0] if r.answer else dns.rcode.to_text(r.rcode()))\n"
            % (name, server, port))
    r = client.run([sys.executable, "-c", code], check=False, timeout=10)
    return r.stdout.strip() if r.returncode == 0 else "error"
