"""Measured, version-pinned throughput tuning for asyncssh.

Two things, both small and both safe to leave out:

1. `apply()`: stop asyncssh from sending an empty SSH_MSG_IGNORE in front of every packet
   when the negotiated send cipher is an AEAD (aes128-gcm@openssh.com,
   aes256-gcm@openssh.com, chacha20-poly1305@openssh.com).

   asyncssh 2.24.1 `SSHConnection.send_packet` does, once keys are in place::

       # If we're encrypting and we have no data outstanding, insert an
       # ignore packet into the stream
       if self._send_encryption and pkttype > MSG_KEX_LAST:
           self.send_packet(MSG_IGNORE, String(b''))

   That is the countermeasure RFC 4251 section 9.3.1 describes for CBC mode (the same idea
   as OpenSSL's empty-fragment countermeasure for CBC in SSL 3.0 / TLS 1.0): with CBC the IV
   of a packet is the last cipher block of the previous one, so an attacker who can choose
   plaintext knows the IV in advance (the Rogaway/Dai attack); an unpredictable packet in
   between takes that away. AEAD modes have no chained IV. GCM in SSH (RFC 5647) uses a
   fresh nonce per packet (the invocation counter), chacha20-poly1305@openssh.com keys each
   packet by its sequence number, and both authenticate every packet themselves. The empty
   packet protects nothing there, and it carries no payload, so it hides no lengths either.
   OpenSSH does not insert it; PuTTY inserts it only for CBC ciphers. It does cost a whole
   extra packet (pad, encrypt, MAC, write; on the peer: read, decrypt, verify, dispatch)
   per data packet. On loopback, suppressing it measured +15-20 % upload throughput and
   -15 % sshd CPU per byte uploaded (bench/README.md; earlier runs: +20-80 %, -50 %).

   Non-AEAD ciphers (aes*-ctr, *-cbc with an HMAC) keep the packet exactly as before.
   The patch is applied only to asyncssh versions in `TESTED_VERSIONS` (the code it wraps
   is private); on any other version `apply()` is a no-op that returns False. It is
   idempotent, and `revert()` undoes it. The upstream fix would be one condition in
   `send_packet`::

       if (self._send_encryption and pkttype > MSG_KEX_LAST and
               self._send_encryption.needs_mac()):

2. `preferred_encryption_algs()`: asyncssh's default cipher order, but with AES-GCM first
   when the CPU has AES instructions. In asyncssh most of the per-packet cost is Python;
   chacha20-poly1305@openssh.com needs three cipher objects and a Poly1305 pass per packet
   there, AES-GCM one AESGCM call, so GCM is clearly faster whenever AES is in hardware
   (measured: +60 % up, +50 % down, -40 % CPU per byte against asyncssh's default order).
"""

from __future__ import annotations

import functools
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.connection import SSHConnection
from asyncssh.constants import MSG_IGNORE
from asyncssh.encryption import (
    ChachaEncryption,
    GCMEncryption,
    get_default_encryption_algs,
    get_encryption_algs,
)

# Versions whose SSHConnection.send_packet was read and tested with this patch.
TESTED_VERSIONS = frozenset({"2.24.1"})

# Send-side encryption classes that are AEAD: integrity built in, a fresh nonce per packet.
AEAD_ENCRYPTIONS: frozenset[type[Any]] = frozenset({GCMEncryption, ChachaEncryption})

_EMPTY_STRING = b"\x00\x00\x00\x00"  # String(b""): the payload of the inserted MSG_IGNORE
_MARK = "_devtui_original"  # on the wrapper: the send_packet it replaced

_SendPacket = Callable[..., None]


def _wrap(original: _SendPacket) -> _SendPacket:
    def send_packet(self: Any, pkttype: int, *args: bytes, handler: Any = None) -> None:
        # asyncssh sends MSG_IGNORE only from the countermeasure above, always empty.
        if (
            pkttype == MSG_IGNORE
            and args == (_EMPTY_STRING,)
            and type(self._send_encryption) in AEAD_ENCRYPTIONS
        ):
            return
        original(self, pkttype, *args, handler=handler)

    send_packet.__doc__ = original.__doc__
    send_packet.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(send_packet, _MARK, original)
    return send_packet


def supported(version: str | None = None) -> bool:
    """True if the patch is known to fit asyncssh `version` (default: the installed one)."""
    return (version or asyncssh.__version__) in TESTED_VERSIONS


def is_applied() -> bool:
    """True while the MSG_IGNORE suppression is installed."""
    return hasattr(SSHConnection.send_packet, _MARK)


def apply() -> bool:
    """Suppress the empty MSG_IGNORE before each packet on AEAD ciphers (idempotent).

    Returns True if the patch is active, False if this asyncssh version is not one it was
    tested with (then nothing is changed).
    """
    if is_applied():
        return True
    if not supported():
        return False
    # The shapes this relies on; a surprise means "not the code we tested": leave it alone.
    if any(cls.needs_mac() for cls in AEAD_ENCRYPTIONS) or MSG_IGNORE != 2:
        return False
    original = SSHConnection.send_packet
    SSHConnection.send_packet = _wrap(original)  # type: ignore[method-assign]
    return True


def revert() -> None:
    """Undo `apply()` (idempotent): asyncssh sends the MSG_IGNORE packets again."""
    original = getattr(SSHConnection.send_packet, _MARK, None)
    if original is not None:
        SSHConnection.send_packet = original  # type: ignore[method-assign]


@functools.lru_cache(maxsize=1)
def has_hardware_aes() -> bool:
    """Best guess whether this CPU has AES instructions (AES-NI, ARMv8 crypto extensions).

    On Linux the `aes` CPU flag decides. Elsewhere a 64-bit x86 or ARM CPU is assumed to
    have them (every x86-64 CPU since about 2011 and every Apple silicon CPU does).
    """
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("flags", "features"):
                return "aes" in value.split()
    return machine in ("x86_64", "amd64", "arm64", "aarch64")


def preferred_encryption_algs(hardware_aes: bool | None = None) -> list[str]:
    """asyncssh's default ciphers, AES-GCM first when AES is in hardware.

    With hardware AES: aes128-gcm@openssh.com, aes256-gcm@openssh.com, then the rest of
    asyncssh's defaults in their order (chacha20-poly1305@openssh.com, aes*-ctr). Without
    it, asyncssh's default order unchanged (chacha20-poly1305 first, as in OpenSSH: it is
    constant-time in software, AES is not). Only algorithms asyncssh supports are listed,
    and a server without GCM still negotiates the next one.
    """
    if hardware_aes is None:
        hardware_aes = has_hardware_aes()
    defaults = [alg.decode("ascii") for alg in get_default_encryption_algs()]
    if not hardware_aes:
        return defaults
    available = {alg.decode("ascii") for alg in get_encryption_algs()}
    first = [
        alg
        for alg in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
        if alg in available and alg in defaults
    ]
    return first + [alg for alg in defaults if alg not in first]
