#!/usr/bin/python3
"""Send "who" from N UDP sockets (N flows, each its own source port) and print each answer.

    udpflows.py HOST PORT N [TIMEOUT]
Prints one line per flow: "ok peer <address>" or "fail".
"""
import socket
import sys


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(n):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            try:
                s.sendto(b"who\n", (host, port))
                print("ok " + s.recv(512).decode().strip(), flush=True)
            except OSError:
                print("fail", flush=True)


if __name__ == "__main__":
    main()
