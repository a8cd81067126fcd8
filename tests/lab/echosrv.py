#!/usr/bin/python3
"""A line-based TCP echo server for long-lived flow tests.

Each line gets an answer: "who" -> "peer <client-ip>" (so a test can tell which
gateway's address the flow arrives from); anything else is echoed back.

    echosrv.py PORT [BIND]
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


def main():
    port = int(sys.argv[1])
    bind = sys.argv[2] if len(sys.argv) > 2 else "::"
    s = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ":" in bind:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((bind, port))
    s.listen(64)
    while True:
        conn, addr = s.accept()
        peer = addr[0][7:] if addr[0].startswith("::ffff:") else addr[0]
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


if __name__ == "__main__":
    main()
