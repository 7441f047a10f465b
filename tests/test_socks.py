"""SOCKS5 requests with an IPv4 address (ATYP 1), the form browsers and curl send for IP URLs."""

from __future__ import annotations

import socket

import pytest

from sshcore.socks import SocksHandshake

GREETING = b"\x05\x01\x00"


def _ipv4_request(address: str, port: int) -> bytes:
    return b"\x05\x01\x00\x01" + socket.inet_aton(address) + port.to_bytes(2, "big")


@pytest.mark.parametrize(
    "address, port",
    [
        ("10.20.30.40", 8080),  # no two octets alike: any reordering shows
        ("192.168.1.254", 443),
        ("127.0.0.1", 0x1F90),
        ("1.2.3.4", 0x0102),  # port bytes differ: a swapped port is 513, not 258
    ],
)
def test_socks5_ipv4_request_names_the_right_address_and_port(address: str, port: int) -> None:
    hs = SocksHandshake()
    assert hs.feed(GREETING) == b"\x05\x00"
    assert hs.feed(_ipv4_request(address, port) + b"early") == b""
    assert hs.request is not None
    assert (hs.request.host, hs.request.port, hs.request.version) == (address, port, 5)
    assert hs.rest == b"early"  # payload sent right after the request is kept, not eaten


def test_socks5_ipv4_request_split_anywhere() -> None:
    data = GREETING + _ipv4_request("172.16.5.9", 5432)
    for cut in range(1, len(data)):
        hs = SocksHandshake()
        replies = hs.feed(data[:cut]) + hs.feed(data[cut:])
        assert replies == b"\x05\x00", cut
        assert hs.request is not None, cut
        assert (hs.request.host, hs.request.port) == ("172.16.5.9", 5432), cut
        assert hs.rest == b""


def test_socks5_ipv4_request_incomplete_waits_for_more() -> None:
    hs = SocksHandshake()
    hs.feed(GREETING)
    full = _ipv4_request("10.0.0.1", 22)
    hs.feed(full[:-1])  # the last port byte is still on its way
    assert hs.request is None
    hs.feed(full[-1:])
    assert hs.request is not None and (hs.request.host, hs.request.port) == ("10.0.0.1", 22)
