#!/usr/bin/python3
"""Many DNS queries in flight, for the forwarder's lab test (test_dns_load.py).

    dnsload.py serve ADDR PORT LOG
        A resolver for load.test: the answer to NAME is an A record made from NAME
        (address_of()).  It collects the queries that arrive together and answers them
        shuffled, and before each real answer it sends a forged one - the same question
        with the ID plus one, or the ID with another question, and a wrong address - so that
        a forwarder that matches answers by ID alone or by question alone hands out wrong
        addresses.  Each query's source port and ID are appended to LOG as "port id" lines.

    dnsload.py ask SERVER PORT TAG N SOCKETS
        N queries for <TAG>-<i>.load.test A, spread over SOCKETS sockets, all in flight at
        once (sent in one go, then read), with IDs 0..N-1 (every asker the same IDs, so
        that a forwarder passing them through shows); prints JSON: answers right, wrong
        (the wrong address or question, or an ID we did not send on that socket), missing
        after 10 s.

What it must not do: listen or send anywhere but where it is told (loopback or the lab).
"""
import hashlib
import json
import random
import select
import socket
import struct
import sys
import time

import dns.flags
import dns.message


def address_of(name):
    h = hashlib.sha256(name.lower().rstrip(".").encode()).digest()
    return "10.%d.%d.%d" % (h[0], h[1], h[2])


def wire_answer(qid, question, addr):
    """An answer built by hand (dnspython is too slow for a loaded machine's upstream)."""
    return (struct.pack("!HHHHHH", qid, 0x8580, 1, 1, 0, 0) + question +
            struct.pack("!HHHIH", 0xc00c, 1, 1, 60, 4) + socket.inet_aton(addr))


def parse_query(data):
    """(ID, question bytes, name text) of a one-question query, or None."""
    if len(data) < 17:
        return None
    i, labels = 12, []
    while i < len(data) and data[i]:
        labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
        i += 1 + data[i]
    if i + 5 > len(data):
        return None
    return struct.unpack("!H", data[:2])[0], data[12:i + 5], ".".join(labels) + "."


def serve(addr, port, log):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, int(port)))
    out = open(log, "a", buffering=1)
    while True:
        select.select([s], [], [])
        batch = []
        deadline = time.monotonic() + 0.02
        while len(batch) < 200:
            t = deadline - time.monotonic()
            if t <= 0 or not select.select([s], [], [], t)[0]:
                break
            data, peer = s.recvfrom(4096)
            q = parse_query(data)
            if q:
                batch.append((q, peer))
                out.write("%d %d\n" % (peer[1], q[0]))
        random.shuffle(batch)
        for (qid, question, name), peer in batch:
            if random.random() < 0.5:
                forged = wire_answer((qid + 1) & 0xffff, question, "192.0.2.66")
            else:  # another name: the first letter changed
                other = question[:1] + (b"z" if question[1:2] != b"z" else b"y") + question[2:]
                forged = wire_answer(qid, other, "192.0.2.66")
            s.sendto(forged, peer)
            s.sendto(wire_answer(qid, question, address_of(name)), peer)


def ask(server, port, tag, n, nsock):
    n, nsock = int(n), int(nsock)
    socks = []
    for _ in range(nsock):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.connect((server, int(port)))
        s.setblocking(False)
        socks.append(s)
    pending = {}  # (socket index, id) -> name
    ids = list(range(n))  # the same IDs from every client: the forwarder must tell them apart
    for i in range(n):
        name = "%s-%d.load.test." % (tag, i)
        k = i % nsock
        q = dns.message.make_query(name, "A")
        q.id = ids[i]
        pending[(k, q.id)] = name
        socks[k].send(q.to_wire())
    right = wrong = 0
    examples = []
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        ready = select.select(socks, [], [], 0.5)[0]
        for s in ready:
            k = socks.index(s)
            while True:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    break
                r = dns.message.from_wire(data)
                name = pending.pop((k, r.id), None)
                got = [rr.to_text() for rrs in r.answer for rr in rrs]
                if (name and r.question and r.question[0].name.to_text() == name and
                        got == [address_of(name)]):
                    right += 1
                else:
                    wrong += 1
                    if len(examples) < 3:
                        examples.append("asked %s, got %s" % (name, r.to_text()))
    res = {"right": right, "wrong": wrong, "missing": len(pending)}
    if examples:
        res["examples"] = examples
    print(json.dumps(res))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:5])
    else:
        ask(*sys.argv[2:7])
