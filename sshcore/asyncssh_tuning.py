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
   is private); on any other version, or with DEVTUI_ASYNCSSH_STOCK=1 in the environment,
   `apply()` is a no-op that returns False; the Core then logs one line saying why
   (`status()`, the AsyncsshStock event). It is
   idempotent, and `revert()` undoes it. The upstream fix would be one condition in
   `send_packet`::

       if (self._send_encryption and pkttype > MSG_KEX_LAST and
               self._send_encryption.needs_mac()):

2. `preferred_encryption_algs()`: asyncssh's default cipher order, but with AES-GCM first
   when the CPU has AES instructions. In asyncssh most of the per-packet cost is Python;
   chacha20-poly1305@openssh.com needs three cipher objects and a Poly1305 pass per packet
   there, AES-GCM one AESGCM call, so GCM is clearly faster whenever AES is in hardware
   (measured: +60 % up, +50 % down, -40 % CPU per byte against asyncssh's default order).

3. `apply()` also installs the receive and AES-GCM fast path (`apply_fastpath()`), for the
   same versions only. What it removes is copying and set-up, never a check:

   - `SSHConnection.data_received` appended each read to the connection's input buffer and
     its packet handlers then cut the packet off the front, copying the rest of the buffer
     twice per packet (a 256 KiB read of eight packets: about 1.8 MiB copied). Now each
     handler is handed exactly the bytes it asks for (the header block, then the rest of
     the packet), so the buffer holds one packet at most. The handlers, their checks and
     their order are asyncssh's own; the version exchange and packets handled
     asynchronously take asyncssh's path unchanged.
   - AES-GCM built a new `AESGCM` object (a key schedule) for every packet, joined the
     ciphertext twice before decrypting, and split the tag off the ciphertext only for
     `send_packet` to join them again. The object is now made once per key, and the
     ciphertext and tag stay one piece. Same nonce sequence, same tag checks.

   - `send_packet` built each packet with five concatenations (type byte, payload,
     padding length, padding): five copies of a 32 KiB data packet before the cipher. The
     replacement joins the pieces once and is otherwise asyncssh's own, line for line
     (rekeying, deferred packets, compression, sequence numbers, logging); it also does
     what the MSG_IGNORE wrapper does, so it is installed only where that wrapper is.

   - A channel write copied the data into a bytearray, cut each packet off it (a copy),
     prefixed its length (two), and the channel put its number in front (two more), all
     before `send_packet`. Now a write of `bytes` is kept as a view of those bytes (they
     cannot change), packets are views of it, and the length and channel number go to
     `send_packet` as pieces of its one join. Other writes (text, bytearray, extended
     data) keep asyncssh's copy. AES-GCM then seals the packet straight into the buffer
     that goes to the socket, behind its length, so the header is not joined on after.
   - A flush of several packets (a 256 KiB read is eight) wrote each to the socket with
     its own system call; they are now written with one, as OpenSSH writes its whole
     output buffer per poll. Within one synchronous call, so the order cannot change.
   - Each read cancelled the keepalive timer and set a new one; it now notes the time,
     and the timer, when it fires, waits out the rest of the interval (same timing).
   - A received MSG_CHANNEL_DATA went through an SSHPacket, the connection's and the
     channel's dispatch and four more calls before reaching the channel; `_recv_packet`
     now hands it to the channel's `_accept_data` itself, after the same checks (channel
     open, length, window) and with the same sequence number. Every other packet takes
     asyncssh's own way, copied as it is.
   - asyncssh formatted a log line for every packet (names, byte counts) before its
     logger dropped it; the line is now made only at debug level 3, where it is logged.

   Measured in bench/forward.py (`devtui-nofastpath`, `devtui-recvfast`, `devtui-prevsend`
   against `devtui`): see bench/README.md.
"""

from __future__ import annotations

import functools
import inspect
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.connection import SSHConnection
from asyncssh.constants import (
    MSG_CHANNEL_DATA,
    MSG_CHANNEL_EOF,
    MSG_CHANNEL_EXTENDED_DATA,
    MSG_CHANNEL_FIRST,
    MSG_CHANNEL_LAST,
    MSG_DEBUG,
    MSG_IGNORE,
    MSG_KEX_FIRST,
    MSG_KEX_LAST,
    MSG_NEWKEYS,
    MSG_SERVICE_ACCEPT,
    MSG_SERVICE_REQUEST,
    MSG_UNIMPLEMENTED,
    MSG_USERAUTH_BANNER,
    MSG_USERAUTH_FIRST,
    MSG_USERAUTH_LAST,
)
from asyncssh.crypto.cipher import GCMCipher
from asyncssh.encryption import (
    ChachaEncryption,
    GCMEncryption,
    get_default_encryption_algs,
    get_encryption_algs,
)
from asyncssh.logging import SSHLogger
from asyncssh.misc import CompressionError, DisconnectError, MACError, ProtocolError
from asyncssh.packet import Byte, PacketDecodeError, SSHPacket, SSHPacketLogger, String, UInt32
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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


STOCK_ENV = "DEVTUI_ASYNCSSH_STOCK"  # set to 1: asyncssh exactly as released, on purpose


def supported(version: str | None = None) -> bool:
    """True if the patch is known to fit asyncssh `version` (default: the installed one)."""
    return (version or asyncssh.__version__) in TESTED_VERSIONS


def stock_requested() -> bool:
    """True when the user asked for asyncssh as released (DEVTUI_ASYNCSSH_STOCK=1)."""
    return os.environ.get(STOCK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def status() -> str:
    """One line on how asyncssh runs here: with devtui's fast path or stock, and why."""
    version = asyncssh.__version__
    if fastpath_applied():
        return f"asyncssh {version} with devtui's fast path"
    if stock_requested():
        return f"asyncssh {version} stock ({STOCK_ENV}=1)"
    if not supported():
        tested = ", ".join(sorted(TESTED_VERSIONS))
        return f"asyncssh {version} stock (devtui's fast path was tested with {tested} only)"
    return f"asyncssh {version} stock"


def is_applied() -> bool:
    """True while the MSG_IGNORE suppression is installed."""
    return hasattr(SSHConnection.send_packet, _MARK)


def apply() -> bool:
    """Suppress the empty MSG_IGNORE before each packet on AEAD ciphers (idempotent).

    Returns True if the patch is active, False if this asyncssh version is not one it was
    tested with (then nothing is changed).
    """
    if is_applied():
        apply_fastpath()
        return True
    if stock_requested() or not supported():
        return False
    # The shapes this relies on; a surprise means "not the code we tested": leave it alone.
    if any(cls.needs_mac() for cls in AEAD_ENCRYPTIONS) or MSG_IGNORE != 2:
        return False
    original = SSHConnection.send_packet
    SSHConnection.send_packet = _wrap(original)  # type: ignore[method-assign]
    apply_fastpath()
    return True


def revert() -> None:
    """Undo `apply()` (idempotent): asyncssh sends the MSG_IGNORE packets again, and its
    receive, send and AES-GCM code is its own again."""
    revert_fastpath()  # first: it puts back the MSG_IGNORE wrapper, undone next
    original = getattr(SSHConnection.send_packet, _MARK, None)
    if original is not None:
        SSHConnection.send_packet = original  # type: ignore[method-assign]


# -- 3. the receive and AES-GCM fast path ----------------------------------------------------

# (class, attribute) -> asyncssh's own function, while the fast path is installed.
_FAST_ORIGINALS: dict[tuple[type[Any], str], Any] = {}


def _data_received(self: Any, data: bytes, datatype: Any = None) -> None:
    """SSHConnection.data_received, handing each packet handler exactly what it needs."""
    del datatype
    # asyncssh's _recv_data moves the keepalive timer (cancel, call_later) on every read;
    # noting the time is enough: the timer, when it fires, waits out the rest (below).
    if self._keepalive_timer is not None and self._auth_complete:
        self._devtui_recv_at = self._loop.time()
    else:
        self._reset_keepalive_timer()
    pos, end = 0, len(data)
    view = memoryview(data)
    try:
        while True:
            handler = self._recv_handler
            func = getattr(handler, "__func__", None)
            have = len(self._inpbuf)
            if func is _RECV_PKTHDR:
                need = self._recv_blocksize - have
            elif func is _recv_packet or func is _RECV_PACKET:
                need = 4 + self._pktlen + self._recv_macsize - self._recv_blocksize - have
            else:  # the version line, or a packet still being handled: all of it, as asyncssh
                need = end - pos
            if need > 0:
                if pos >= end:
                    return
                if pos == 0 and need >= end:
                    piece: bytes | memoryview = data
                elif (
                    have == 0
                    and type(self._recv_encryption) is GCMEncryption
                    and type(data) is bytes  # a view may outlive this read: never of a buffer
                ):
                    # No copy: AES-GCM's header and decrypt steps read any buffer (the
                    # replacements below), and what is left over is made bytes below.
                    piece = view[pos : pos + need]
                else:
                    piece = data[pos : pos + need]
                pos += len(piece)
                self._inpbuf = bytes(self._inpbuf) + piece if have else piece
            if not self._inpbuf or not handler():
                if pos < end:  # kept for when the handler can go on (asyncssh does the same)
                    self._inpbuf = bytes(self._inpbuf) + data[pos:]
                return
    except DisconnectError as exc:
        self._send_disconnect(exc.code, exc.reason, exc.lang)
        self._force_close(exc)
    except Exception:
        self.internal_error()
    finally:
        # asyncssh's own code (its _recv_data after an asynchronous packet) appends bytes.
        if type(self._inpbuf) is memoryview:
            self._inpbuf = bytes(self._inpbuf)


def _keepalive_timer_callback(self: Any) -> None:
    """SSHConnection._keepalive_timer_callback, for a timer that reads no longer move: if
    something arrived since it was set, wait until an interval after that, as the moved
    timer would have; otherwise asyncssh's own (count, maybe give up, send a keepalive)."""
    received = self.__dict__.pop("_devtui_recv_at", None)
    if received is not None:
        wait = received + self._keepalive_interval - self._loop.time()
        if wait > 0:
            self._keepalive_timer = self._loop.call_later(wait, self._keepalive_timer_callback)
            return
    _ASYNCSSH_KEEPALIVE(self)


def _recv_packet(self: Any) -> bool:
    """asyncssh 2.24.1's SSHConnection._recv_packet, with a short way for channel data.

    Up to the decrypted packet this is the original. A MSG_CHANNEL_DATA packet for an open
    channel then goes straight to that channel's `_accept_data`, with `_process_data`'s
    checks (channel open for receiving, the data's length exactly what is left, within
    the window) and `_finish_recv_packet`'s sequence number, without building an
    SSHPacket and dispatching through four calls. Anything else (other packets, compressed
    or unencrypted streams, debug level 3 packet logs) takes the original's way, copied
    below as it is."""
    rem = 4 + self._pktlen + self._recv_macsize - self._recv_blocksize
    if len(self._inpbuf) < rem:
        return False

    seq = self._recv_seq
    rest = self._inpbuf[: rem - self._recv_macsize]
    mac = self._inpbuf[rem - self._recv_macsize : rem]

    if self._recv_encryption:
        packet_data = self._recv_encryption.decrypt_packet(seq, self._packet, rest, 4, mac)

        if not packet_data:
            raise MACError("MAC verification failed")
    else:
        packet_data = self._packet[4:] + rest

    self._inpbuf = self._inpbuf[rem:]
    self._packet = b""

    padlen = packet_data[0]
    if (
        len(packet_data) > 10
        and packet_data[1] == MSG_CHANNEL_DATA
        and padlen
        and self._recv_encryption
        and self._auth_complete
        and not self._decompressor
        and SSHLogger._debug_level < 3
    ):
        chan = self._channels.get(int.from_bytes(packet_data[2:6], "big"))
        end = len(packet_data) - padlen
        datalen = int.from_bytes(packet_data[6:10], "big")
        if (
            chan is not None
            and 10 + datalen == end
            and chan._packet_handlers.get(MSG_CHANNEL_DATA) is _CHANNEL_DATA_HANDLER
        ):
            # SSHChannel._process_data, as it is
            if chan._recv_state != "open":
                raise ProtocolError("Channel not open for sending")
            if datalen > chan._recv_window:
                raise ProtocolError("Window exceeded")
            chan.logger.debug2("Received %d data byte%s", datalen, "s" if datalen > 1 else "")
            chan._accept_data(packet_data[10:end])
            # _finish_recv_packet for a packet past authentication, with encryption on
            self._auth_final = True
            if self._transport:
                self._recv_seq = (seq + 1) & 0xFFFFFFFF
            self._recv_handler = self._recv_pkthdr
            return True

    orig_payload = packet_data[1:-padlen]

    if self._decompressor and (self._auth_complete or not self._decompress_after_auth):
        payload = self._decompressor.decompress(orig_payload)

        if payload is None:
            raise CompressionError("Decompression failed")
    else:
        payload = orig_payload

    packet = SSHPacket(payload)
    pkttype = packet.get_byte()
    handler: Any = self
    skip_reason = ""
    exc_reason = ""

    if MSG_KEX_FIRST <= pkttype <= MSG_KEX_LAST:
        if self._kex:
            if self._ignore_first_kex:  # pragma: no cover
                skip_reason = "ignored first kex"
                self._ignore_first_kex = False
            else:
                handler = self._kex
        else:
            skip_reason = "kex not in progress"
            exc_reason = "Key exchange not in progress"
    elif self._strict_kex and not self._recv_encryption and MSG_IGNORE <= pkttype <= MSG_DEBUG:
        skip_reason = "strict kex violation"
        exc_reason = f"Strict key exchange violation: unexpected packet type {pkttype} received"
    elif MSG_USERAUTH_FIRST <= pkttype <= MSG_USERAUTH_LAST:
        if self._auth:
            handler = self._auth
        else:
            skip_reason = "auth not in progress"
            exc_reason = "Authentication not in progress"
    elif pkttype > MSG_KEX_LAST and not self._recv_encryption:
        skip_reason = "invalid request before kex complete"
        exc_reason = "Invalid request before key exchange was complete"
    elif pkttype > MSG_USERAUTH_LAST and not self._auth_complete:
        skip_reason = "invalid request before auth complete"
        exc_reason = "Invalid request before authentication was complete"
    elif MSG_CHANNEL_FIRST <= pkttype <= MSG_CHANNEL_LAST:
        try:
            recv_chan = packet.get_uint32()
        except PacketDecodeError:
            skip_reason = "incomplete channel request"
            exc_reason = "Incomplete channel request received"
        else:
            try:
                handler = self._channels[recv_chan]
            except KeyError:
                skip_reason = "invalid channel number"
                exc_reason = f"Invalid channel number {recv_chan} received"

    handler.log_received_packet(pkttype, seq, packet, skip_reason)

    if not skip_reason:
        try:
            result = handler.process_packet(pkttype, seq, packet)
        except PacketDecodeError as exc:
            raise ProtocolError(str(exc)) from None

        # (process_packet returns True or False unless it hands back an awaitable; the
        # bool test spares inspect.isawaitable's ABC check, ~2 µs, on every packet)
        if type(result) is not bool and inspect.isawaitable(result):
            # Buffer received data until current packet is processed
            self._recv_handler = lambda: False

            task = self.create_task(result)
            task.add_done_callback(
                functools.partial(self._finish_recv_packet, pkttype, seq, is_async=True)
            )

            return False
        elif not result:
            if self._strict_kex and not self._recv_encryption:
                exc_reason = (
                    f"Strict key exchange violation: unexpected packet type {pkttype} received"
                )
            else:
                self.logger.debug1("Unknown packet type %d received", pkttype)
                self.send_packet(MSG_UNIMPLEMENTED, UInt32(seq))

    if exc_reason:
        raise ProtocolError(exc_reason)

    self._finish_recv_packet(pkttype, seq)
    return True


_DEFER_BEFORE_KEX = frozenset({MSG_DEBUG, MSG_SERVICE_REQUEST, MSG_SERVICE_ACCEPT})


def _send_packet(self: Any, pkttype: int, *args: bytes, handler: Any = None) -> None:
    """asyncssh 2.24.1's SSHConnection.send_packet, the packet built in one join.

    The original concatenates five times (type byte to payload, padding length, payload,
    padding); for a 32 KiB data packet that is five copies of it before the cipher. Here
    the pieces are joined once. Everything else is the original's, in its order: rekeying,
    packets deferred until key exchange or auth, compression, sequence numbers, logging.
    The empty MSG_IGNORE goes before each packet on non-AEAD ciphers only (see apply)."""
    if (
        self._auth_complete
        and self._kex_complete
        and (
            self._rekey_bytes_sent >= self._rekey_bytes
            or (self._rekey_seconds and time.monotonic() >= self._rekey_time)
        )
    ):
        self._send_kexinit()
        self._kexinit_sent = True

    if (
        ((pkttype in _DEFER_BEFORE_KEX or pkttype > MSG_KEX_LAST) and not self._kex_complete)
        or (pkttype == MSG_USERAUTH_BANNER and not (self._auth_in_progress or self._auth_complete))
        or (pkttype > MSG_USERAUTH_LAST and not self._auth_complete)
    ):
        self._deferred_packets.append((pkttype, args))
        return

    encryption = self._send_encryption
    if encryption and pkttype > MSG_KEX_LAST and type(encryption) not in AEAD_ENCRYPTIONS:
        self.send_packet(MSG_IGNORE, String(b""))

    if self._compressor and (self._auth_complete or not self._compress_after_auth):
        orig_payload: bytes | memoryview = Byte(pkttype) + b"".join(args)
        compressed = self._compressor.compress(orig_payload)
        if compressed is None:  # pragma: no cover
            raise CompressionError("Compression failed")
        parts: tuple[bytes, ...] = (compressed,)
        size = len(compressed)
    else:
        orig_payload = b""
        parts = (Byte(pkttype), *args)
        size = 1 + sum(map(len, args))

    padlen = -(self._send_enchdrlen + size) % self._send_blocksize
    if padlen < 4:
        padlen += self._send_blocksize
    plain = b"".join((Byte(padlen), *parts, _padding(self, padlen)))
    if not orig_payload:
        orig_payload = memoryview(plain)[1 : 1 + size]  # for the packet log only
    pktlen = len(plain)
    hdr = UInt32(pktlen)
    seq = self._send_seq

    if encryption:
        packet, mac = encryption.encrypt_packet(seq, hdr, plain)
    else:
        packet, mac = hdr + plain, b""

    # AES-GCM (below) hands back the whole packet, tag included: no join for nothing.
    sealed = packet + mac if mac else packet
    cork: list[bytes | bytearray] | None = self.__dict__.get("_devtui_cork")
    if cork is None:
        self._send(sealed)
    else:  # a channel flush in progress (below): its packets go out in one write
        cork.append(sealed)
        if len(cork) >= _CORK_PACKETS:  # a window of megabytes is not held in memory twice
            self._send(b"".join(cork))
            cork.clear()

    if self._send_seq == 0xFFFFFFFF and not encryption:
        self._send_seq = 0
        raise ProtocolError("Sequence rollover before kex complete")

    if pkttype == MSG_NEWKEYS and self._strict_kex:
        self._send_seq = 0
    else:
        self._send_seq = (seq + 1) & 0xFFFFFFFF

    if self._kex_complete:
        self._rekey_bytes_sent += pktlen

    if not handler:
        handler = self

    handler.log_sent_packet(pkttype, seq, orig_payload)


def _aead(cipher: Any) -> AESGCM:
    # One AESGCM (one key schedule) per key, not per packet. The key never changes on a
    # GCMCipher: a rekey makes new cipher objects.
    aead: AESGCM | None = cipher.__dict__.get("_devtui_aead")
    if aead is None:
        aead = cipher._devtui_aead = AESGCM(cipher._key)
    return aead


def _gcm_encrypt_and_sign(self: Any, header: bytes, data: bytes) -> tuple[bytearray, bytes]:
    """GCMCipher.encrypt_and_sign: the same bytes, sealed straight behind the header into
    the buffer that is written (the caller, send_packet, writes it as it is)."""
    hdrlen = len(header)
    packet = bytearray(hdrlen + len(data) + _GCM_TAG)
    packet[:hdrlen] = header
    _aead(self).encrypt_into(self._iv, data, header, memoryview(packet)[hdrlen:])
    self._update_iv()
    return packet, b""


def _gcm_verify_and_decrypt(self: Any, header: bytes, data: bytes, mac: bytes) -> bytes | None:
    """GCMCipher.verify_and_decrypt with the AESGCM object made once."""
    try:
        plain: bytes | None = _aead(self).decrypt(self._iv, data + mac, header)
    except InvalidTag:
        plain = None
    self._update_iv()
    return plain


def _gcm_decrypt_packet(
    self: Any, seq: int, first: bytes, rest: bytes, header_len: int, mac: bytes
) -> bytes | None:
    """GCMEncryption.decrypt_packet: ciphertext and tag joined once, not twice."""
    del seq
    cipher = self._cipher
    try:
        plain: bytes | None = _aead(cipher).decrypt(
            cipher._iv, b"".join((first[header_len:], rest, mac)), first[:header_len]
        )
    except InvalidTag:
        plain = None
    cipher._update_iv()
    return plain


_GCM_TAG = 16
_CORK_PACKETS = 16  # at most this many packets (512 KiB of 32 KiB packets) in one write
CORK = True  # a channel flush of several packets writes them at once (bench: --fastpath nocork)
_PAD_POOL = 4096  # random bytes fetched at once for packet padding


def _padding(conn: Any, count: int) -> bytes:
    """`count` random bytes for a packet's padding, from a per-connection pool refilled
    from os.urandom: one system call per few hundred packets instead of one per packet."""
    pool: bytes = conn.__dict__.get("_devtui_pad", b"")
    if len(pool) < count:
        pool = os.urandom(_PAD_POOL)
    conn._devtui_pad = pool[count:]
    return pool[:count]


def _log_sent_packet(self: Any, pkttype: int, pktid: Any, packet: Any, note: str = "") -> None:
    """SSHPacketLogger.log_sent_packet: asyncssh formats each packet's log line (names,
    byte counts) before its logger drops it below debug level 3; here it is not made."""
    if SSHLogger._debug_level >= 3:
        self._log_packet("Sent", pkttype, pktid, packet, note)


def _log_received_packet(self: Any, pkttype: int, pktid: Any, packet: Any, note: str = "") -> None:
    """SSHPacketLogger.log_received_packet, the line made only when it is logged."""
    if SSHLogger._debug_level >= 3:
        self._log_packet("Received", pkttype, pktid, packet, note)


def _chan_send_packet(self: Any, pkttype: int, *args: bytes) -> None:
    """SSHChannel.send_packet: the channel number goes to the connection's send_packet as
    one more piece of its join, not joined onto the payload first (two copies)."""
    if self._send_chan is None:  # pragma: no cover - as asyncssh
        return
    self._conn.send_packet(pkttype, UInt32(self._send_chan), *args, handler=self)


def _chan_write(self: Any, data: Any, datatype: Any = None) -> None:
    """SSHChannel.write: `bytes` with no encoding are queued as a view, not copied."""
    if type(data) is not bytes or self._encoding:
        _ASYNCSSH_WRITE(self, data, datatype)
        return
    if self._send_state != "open":
        raise BrokenPipeError("Channel not open for sending")
    if datatype is not None and datatype not in self._write_datatypes:
        raise OSError("Invalid extended data type")
    if not data:
        return
    datalen = len(data)
    self.logger.debug2("Sending %d data byte%s", datalen, "s" if datalen > 1 else "")
    self._send_buf.append((memoryview(data), datatype))
    self._send_buf_len += datalen
    self._flush_send_buf()


def _chan_flush_send_buf(self: Any) -> None:
    """SSHChannel._flush_send_buf: a queued view is cut into packets without copying, and
    the data's length goes to send_packet as a piece, not prefixed onto a copy."""
    send_buf = self._send_buf
    conn = self._conn
    # More than a packet to send: the connection collects what this flush seals and writes
    # it with one system call, as OpenSSH writes its whole output buffer per poll, rather
    # than one per 32 KiB packet. Synchronous, so nothing else can come in between.
    cork = CORK and conn is not None and self._send_buf_len > self._send_pktsize
    if cork:
        if conn.__dict__.get("_devtui_cork") is not None:
            cork = False  # already collecting (a flush inside a flush): that one writes
        else:
            conn._devtui_cork = []
    try:
        _flush_packets(self, send_buf)
    finally:
        if cork:
            sealed = conn._devtui_cork
            conn._devtui_cork = None
            if sealed:
                conn._send(sealed[0] if len(sealed) == 1 else b"".join(sealed))

    self._pause_resume_writing()

    if not send_buf:
        if self._send_state == "eof_pending":
            self.send_packet(MSG_CHANNEL_EOF)
            self._send_state = "eof"
        elif self._send_state == "close_pending":
            self._close_send()


def _flush_packets(self: Any, send_buf: list[tuple[Any, Any]]) -> None:
    while send_buf and self._send_window:
        pktsize = min(self._send_window, self._send_pktsize)
        buf, datatype = send_buf[0]
        if len(buf) > pktsize:
            data = buf[:pktsize]
            if type(buf) is memoryview:
                send_buf[0] = (buf[pktsize:], datatype)
            else:  # a bytearray from asyncssh's own write
                del buf[:pktsize]
        else:
            data = buf
            del send_buf[0]
        datalen = len(data)
        self._send_buf_len -= datalen
        self._send_window -= datalen
        if datatype is None:
            self.send_packet(MSG_CHANNEL_DATA, UInt32(datalen), data)
        else:
            self.send_packet(MSG_CHANNEL_EXTENDED_DATA, UInt32(datatype), UInt32(datalen), data)


# asyncssh's own, for the cases the replacements hand back (also after a revert: a timer
# set before it still calls the replacement).
_ASYNCSSH_KEEPALIVE: Any = getattr(SSHConnection, "_keepalive_timer_callback", None)
_ASYNCSSH_WRITE = SSHChannel.write
_CHANNEL_DATA_HANDLER = SSHChannel._packet_handlers.get(MSG_CHANNEL_DATA)
_RECV_PKTHDR = getattr(SSHConnection, "_recv_pkthdr", None)
_RECV_PACKET = getattr(SSHConnection, "_recv_packet", None)
_FAST = {
    (SSHConnection, "data_received"): _data_received,
    (SSHConnection, "_keepalive_timer_callback"): _keepalive_timer_callback,
    (SSHConnection, "_recv_packet"): _recv_packet,
    (GCMCipher, "encrypt_and_sign"): _gcm_encrypt_and_sign,
    (GCMCipher, "verify_and_decrypt"): _gcm_verify_and_decrypt,
    (GCMEncryption, "decrypt_packet"): _gcm_decrypt_packet,
    (SSHChannel, "send_packet"): _chan_send_packet,
    (SSHPacketLogger, "log_sent_packet"): _log_sent_packet,
    (SSHPacketLogger, "log_received_packet"): _log_received_packet,
    (SSHChannel, "write"): _chan_write,
    (SSHChannel, "_flush_send_buf"): _chan_flush_send_buf,
}
# What the fast path relies on, beyond the functions it replaces.
_NEEDED = {
    SSHConnection: (
        "_recv_pkthdr",
        "_recv_packet",
        "_reset_keepalive_timer",
        "_finish_recv_packet",
        "create_task",
        "_keepalive_timer_callback",
        "_send_disconnect",
        "_force_close",
        "internal_error",
        "_send_kexinit",
        "_send",
        "log_sent_packet",
    ),
    GCMCipher: ("_update_iv",),
    # (and the instance attributes _send_buf, _send_buf_len, _send_window, _send_pktsize,
    # _send_state, _send_chan and _encoding, read in 2.24.1's code)
    SSHPacketLogger: ("_log_packet",),
    SSHLogger: ("_debug_level",),
    SSHChannel: (
        "_packet_handlers",
        "_accept_data",
        "_write_datatypes",
        "_pause_resume_writing",
        "_close_send",
        "logger",
    ),
}


def fastpath_applied() -> bool:
    """True while the receive and AES-GCM fast path is installed."""
    return bool(_FAST_ORIGINALS)


def apply_fastpath() -> bool:
    """Install the receive and AES-GCM fast path (idempotent); False (nothing changed) on an
    asyncssh version it was not tested with."""
    if _FAST_ORIGINALS:
        return True
    if stock_requested() or not supported():
        return False
    if any(not hasattr(cls, name) for cls, names in _NEEDED.items() for name in names):
        return False
    for (cls, name), replacement in _FAST.items():
        _FAST_ORIGINALS[(cls, name)] = cls.__dict__[name]
        setattr(cls, name, replacement)
    # The send side replaces the MSG_IGNORE wrapper (and does what it does), so only where
    # that wrapper is in place; its mark keeps pointing at asyncssh's own for revert().
    wrapper = SSHConnection.__dict__["send_packet"]
    original = getattr(wrapper, _MARK, None)
    if original is not None:
        setattr(_send_packet, _MARK, original)
        _FAST_ORIGINALS[(SSHConnection, "send_packet")] = wrapper
        SSHConnection.send_packet = _send_packet  # type: ignore[method-assign]
    return True


def revert_fastpath() -> None:
    """Undo `apply_fastpath()` (idempotent)."""
    for (cls, name), original in _FAST_ORIGINALS.items():
        setattr(cls, name, original)
    _FAST_ORIGINALS.clear()


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
