#!/usr/bin/python3
"""A long-lived TCP client driven through stdin/stdout, for tests that must keep one
connection open while the network changes around it.

    flowclient.py HOST PORT
stdin: one line per request, sent as is; stdout: "ok <answer>" or "error <what>".
"""
import socket
import sys


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    s = socket.create_connection((host, port), timeout=5)
    f = s.makefile("rwb", buffering=0)
    print("connected %s" % (s.getsockname()[0],), flush=True)
    for line in sys.stdin:
        try:
            f.write(line.encode())
            answer = f.readline()
            if not answer:
                print("error closed", flush=True)
                return 1
            print("ok " + answer.decode().strip(), flush=True)
        except OSError as e:
            print("error %s" % e, flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
