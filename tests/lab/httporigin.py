#!/usr/bin/python3
"""A hostile HTTP origin for the proxy's plain forwarding tests.

Each connection: once the client side has been quiet for QUIET seconds (or has closed), the
origin answers with everything it received as the body, keeps the connection open and
appends a second, forged response ("forged"), as if the client had pipelined another
request.  The request's path picks the framing of the real answer:

    /length   Content-Length
    /chunked  100 Continue first, then chunked, with a trailer

    httporigin.py PORT [BIND]
"""
import socket
import sys
import threading

QUIET = 0.5
FORGED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"


def serve(conn):
    with conn:
        got = b""
        conn.settimeout(QUIET)
        while True:
            try:
                b = conn.recv(65536)
            except socket.timeout:
                if got:
                    break
                continue
            if not b:
                break
            got += b
        path = got.split(b" ", 2)[1] if got.count(b" ") >= 2 else b""
        if path == b"/chunked":
            out = (b"HTTP/1.1 100 Continue\r\n\r\n"
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
                   + b"%x\r\n" % len(got) + got + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
        else:
            out = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n"
                   % len(got) + got)
        try:
            conn.sendall(out + FORGED)
            conn.settimeout(None)
            while conn.recv(65536):  # keep-alive: stay until the peer goes
                pass
        except OSError:
            pass


def main():
    port = int(sys.argv[1])
    bind = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
