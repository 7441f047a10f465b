"""The server side of a SOCKS4/4a/5 CONNECT handshake, as a pure byte parser (no I/O).

asyncssh's own `forward_socks` would do the handshake too, but a tunnel built on it has no
hook for per-tunnel byte counters or for reporting a refused target; so tunnels.py runs the
forward itself and only needs this parser.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SOCKS5_OK = b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"
SOCKS4_OK = b"\x00\x5a\x00\x00\x00\x00\x00\x00"


def socks5_failure(code: int) -> bytes:
    """A SOCKS5 reply with `code` (1 general, 4 host unreachable, 5 refused, 7 bad command)."""
    return bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])


SOCKS4_FAILED = b"\x00\x5b\x00\x00\x00\x00\x00\x00"


class SocksError(Exception):
    """A client spoke something other than SOCKS CONNECT; `reply` goes back before closing."""

    def __init__(self, message: str, reply: bytes = b"") -> None:
        super().__init__(message)
        self.reply = reply


@dataclass
class SocksRequest:
    """Where the client wants to go, and what to answer once we know if it worked."""

    host: str
    port: int
    version: int

    def success(self) -> bytes:
        return SOCKS5_OK if self.version == 5 else SOCKS4_OK

    def failure(self, refused: bool, allowed: bool = True) -> bytes:
        """The failure reply: refused (5), unreachable (4) or not allowed by policy (2)."""
        if self.version == 5:
            return socks5_failure(2 if not allowed else 5 if refused else 4)
        return SOCKS4_FAILED


class SocksHandshake:
    """Feed bytes in; get replies to send, and finally the request plus any early payload."""

    def __init__(self) -> None:
        self._buffer = b""
        self._greeted = False
        self.request: SocksRequest | None = None
        self.rest = b""  # payload the client sent right after its request

    def feed(self, data: bytes) -> bytes:
        """Consume `data`; returns bytes to send back now. Raises SocksError on bad input."""
        self._buffer += data
        out = b""
        while self.request is None:
            step = self._step()
            if step is None:
                break
            out += step
        # Only an unfinished handshake is bounded: payload sent right behind a complete
        # request (a client that does not wait for the reply) is data, of any length.
        if self.request is None and len(self._buffer) > 1024:
            raise SocksError("SOCKS handshake too long")
        return out

    def _step(self) -> bytes | None:
        buf = self._buffer
        if not buf:
            return None
        version = buf[0]
        if version == 4:
            return self._socks4()
        if version != 5:
            raise SocksError(f"not a SOCKS request (first byte {version:#x})")
        if not self._greeted:
            if len(buf) < 2 or len(buf) < 2 + buf[1]:
                return None
            methods = buf[2 : 2 + buf[1]]
            self._buffer = buf[2 + buf[1] :]
            if 0 not in methods:
                raise SocksError("SOCKS5 client wants authentication", b"\x05\xff")
            self._greeted = True
            return b"\x05\x00"
        if len(buf) < 5:
            return None
        if buf[1] != 1:
            raise SocksError("only SOCKS CONNECT is supported", socks5_failure(7))
        atyp = buf[3]
        if atyp == 1:
            end = 4 + 4
            host = str(ipaddress.IPv4Address(buf[4:8])) if len(buf) >= end else ""
        elif atyp == 4:
            end = 4 + 16
            host = str(ipaddress.IPv6Address(buf[4:20])) if len(buf) >= end else ""
        elif atyp == 3:
            end = 5 + buf[4]
            host = buf[5:end].decode("utf-8", errors="replace") if len(buf) >= end else ""
        else:
            raise SocksError(f"unknown SOCKS5 address type {atyp}", socks5_failure(8))
        if len(buf) < end + 2:
            return None
        port = int.from_bytes(buf[end : end + 2], "big")
        self.request = SocksRequest(host, port, 5)
        self.rest = buf[end + 2 :]
        return b""

    def _socks4(self) -> bytes | None:
        buf = self._buffer
        if len(buf) < 9:
            return None
        if buf[1] != 1:
            raise SocksError("only SOCKS CONNECT is supported", SOCKS4_FAILED)
        user_end = buf.find(b"\x00", 8)
        if user_end < 0:
            return None
        port = int.from_bytes(buf[2:4], "big")
        ip = buf[4:8]
        end = user_end + 1
        if ip[:3] == b"\x00\x00\x00" and ip[3] != 0:  # SOCKS4a: a host name follows
            name_end = buf.find(b"\x00", end)
            if name_end < 0:
                return None
            host = buf[end:name_end].decode("utf-8", errors="replace")
            end = name_end + 1
        else:
            host = str(ipaddress.IPv4Address(ip))
        self.request = SocksRequest(host, port, 4)
        self.rest = buf[end:]
        return b""
