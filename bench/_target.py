"""The far end of the benchmark's tunnels: a tiny TCP server in its own process.

Started by bench/forward.py; prints its port on stdout and serves until stdin closes.
Each connection starts with a 17-byte header: a command byte and two big-endian u64, n and
tail:

  U n t  the client uploads n bytes; the server reads them all, then answers b"K" and two
         u64: time.monotonic_ns() when it first had at least n - t bytes, and how many it
         had then (that clock is system-wide: the client reads the same one).
  D n 0  the server sends n bytes (a repeated random 1 MiB block), then EOF.
  E 0 0  echo everything back until EOF.

A connection that closes before a full header is just closed (port probes).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

BLOCK = 1024 * 1024
HEADER = 17
PAYLOAD = os.urandom(BLOCK)


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def serve(sock: socket.socket) -> None:
    with sock:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            header = recv_exact(sock, HEADER)
            if header is None:
                return
            command = header[:1]
            n, tail = int.from_bytes(header[1:9], "big"), int.from_bytes(header[9:], "big")
            if command == b"U":
                buf = bytearray(BLOCK)
                view = memoryview(buf)
                left = n
                mark = count = 0
                while left:
                    got = sock.recv_into(view, min(left, BLOCK))
                    if not got:
                        return
                    left -= got
                    if not mark and left <= tail:
                        mark, count = time.monotonic_ns(), n - left
                sock.sendall(b"K" + mark.to_bytes(8, "big") + count.to_bytes(8, "big"))
            elif command == b"D":
                view = memoryview(PAYLOAD)
                left = n
                while left:
                    step = min(left, BLOCK)
                    sock.sendall(view[:step])
                    left -= step
                sock.shutdown(socket.SHUT_WR)
            elif command == b"E":
                while data := sock.recv(65536):
                    sock.sendall(data)
                return
            while sock.recv(65536):  # wait for the client to close
                pass
        except OSError:
            pass


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    print(listener.getsockname()[1], flush=True)

    def accept_loop() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(sock,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    sys.stdin.read()  # the benchmark closes our stdin to stop us
    listener.close()


if __name__ == "__main__":
    main()
