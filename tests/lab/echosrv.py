#!/usr/bin/python3
"""A line-based TCP echo server for long-lived flow tests, and a UDP one.

Each line gets an answer: "who" -> "peer <client-ip>" (so a test can tell which
gateway's address the flow arrives from); anything else is echoed back.  The
same port answers UDP datagrams the same way.

    echosrv.py PORT [BIND [UDP_ADDRS]]

UDP_ADDRS (comma-separated) binds one UDP socket per address, so each answer leaves
from the address the question went to (what NAT on the way expects); default BIND.
"""
import socket
import sys
import threading


def serve(conn, peer):
    with conn, conn.makefile("rwb", buffering=0) as f:
        for line in f:
            text = line.decode(errors="replace").strip()
            if text == "who":
                f.write(("peer %s\n" % peer).encode())
            else:
                f.write(line)


def serve_udp(u):
    while True:
        data, addr = u.recvfrom(2048)
        peer = addr[0][7:] if addr[0].startswith("::ffff:") else addr[0]
        if data.strip() == b"who":
            u.sendto(("peer %s\n" % peer).encode(), addr)
        else:
            u.sendto(data, addr)


def main():
    port = int(sys.argv[1])
    bind = sys.argv[2] if len(sys.argv) > 2 else "::"
    s = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ":" in bind:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((bind, port))
    s.listen(64)
    for a in (sys.argv[3].split(",") if len(sys.argv) > 3 else [bind]):
        u = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
        if a == "::":
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        u.bind((a, port))
        threading.Thread(target=serve_udp, args=(u,), daemon=True).start()
    while True:
        conn, addr = s.accept()
        peer = addr[0][7:] if addr[0].startswith("::ffff:") else addr[0]
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


if __name__ == "__main__":
    main()
