#!/usr/bin/env python3
"""Subscribers that accept TCP connections, read whatever arrives and never
answer. `hang.py [N]` binds N ports (default 1) on 127.0.0.1, prints them on
one line of stdout, then serves until killed. The bench's hanging-subscriber
step uses one (a hanging subscriber must not slow the others down); the
removal step uses one per subscriber, so that each keeps its whole backlog
pending without any of it being delivered."""
import resource
import selectors
import socket
import sys


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    listeners = set()
    for _ in range(n):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1024)
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ)
        listeners.add(lsock)
    print(*(s.getsockname()[1] for s in listeners), flush=True)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock in listeners:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:  # peer gave up (timeout): forget the connection
                sel.unregister(sock)
                sock.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
