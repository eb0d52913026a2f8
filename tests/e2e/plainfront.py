"""A loopback TCP front that makes skopeo's plain-HTTP fallback instant.

With `--tls-verify=false`, containers/image first tries HTTPS and only falls back
to HTTP when that fails. `wrangler dev` (workerd) does not answer a TLS
ClientHello on its HTTP port, so every skopeo command waits ~10 s for a timeout.
This front listens on 127.0.0.1, answers any connection whose first byte is a TLS
handshake record (0x16) with a plain-HTTP 400 and closes it at once (see NOT_TLS), and
splices every other connection byte for byte
to the registry port. It never rewrites anything. E2E_SKOPEO_DIRECT=1 bypasses it.
"""

from __future__ import annotations

import socket
import threading

TLS_HANDSHAKE = 0x16
# The answer to a TLS hello: Go's TLS client reports a reply that starts with "HTTP/" as
# "server gave HTTP response to HTTPS client", the error on which docker falls back to
# plain HTTP (`docker manifest` does not fall back on a bare close); containers/image
# falls back on either.
NOT_TLS = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 28\r\n"
           b"Connection: close\r\n\r\nthis port speaks plain HTTP\n")


def _linger(src: socket.socket) -> None:
    """The other side is gone: read and drop what `src` still sends for a while instead
    of resetting it, which can make the client lose an answer it has not read yet (a 413
    for a body still being sent, which docker then reports as an empty body)."""
    src.settimeout(LINGER_SECONDS)
    try:
        while src.recv(1 << 16):
            pass
    except OSError:
        pass


class PlainHttpFront:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self._closed = threading.Event()
        threading.Thread(target=self._accept_loop, name="plainfront", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            first = conn.recv(1, socket.MSG_PEEK)
            if not first:
                conn.close()
                return
            if first[0] == TLS_HANDSHAKE:
                conn.sendall(NOT_TLS)
                conn.close()
                return
            conn.settimeout(None)
            upstream = socket.create_connection(self.target, timeout=30)
            upstream.settimeout(None)
        except OSError:
            conn.close()
            return
        back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
        back.start()
        _pump(conn, upstream)
        back.join()
        conn.close()
        upstream.close()

    def close(self) -> None:
        self._closed.set()
        self.listener.close()


LINGER_SECONDS = 5.0


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                _linger(src)
                break
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass
