#!/usr/bin/python3
"""Open a new TCP connection every INTERVAL seconds and say how each one went.

    newflows.py HOST PORT INTERVAL DURATION [TIMEOUT [COUNT]]

Stops after DURATION seconds, or after COUNT connections when given.

Prints one line per connection, when it ends: "<monotonic start> ok <answer>" or
"<monotonic start> fail <error>".  Each connection sends "who" (see echosrv.py), so
the answer names the address the server saw: which gateway carried the flow.
The start time is CLOCK_MONOTONIC, comparable with other processes' on the machine.
"""
import socket
import sys
import threading
import time

lock = threading.Lock()


def one(host, port, timeout):
    t = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"who\n")
            answer = s.makefile("rb").readline().decode().strip()
        line = "%.4f ok %s" % (t, answer)
    except OSError as e:
        line = "%.4f fail %s" % (t, e.__class__.__name__)
    with lock:
        print(line, flush=True)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    interval, duration = float(sys.argv[3]), float(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    count = int(sys.argv[6]) if len(sys.argv) > 6 else None
    end = time.monotonic() + duration
    threads = []
    while time.monotonic() < end and (count is None or len(threads) < count):
        th = threading.Thread(target=one, args=(host, port, timeout), daemon=True)
        th.start()
        threads.append(th)
        time.sleep(interval)
    for th in threads:
        th.join(timeout + 1)


if __name__ == "__main__":
    main()
