"""Reusable test harness: real OpenSSH sshd, in-process asyncssh server, fault proxy, net helpers."""

from .asyncssh_server import AsyncsshServer, User
from .net import EchoServer, Sha256Sink, echo_roundtrip, free_port, send_random, wait_port
from .proxy import Mode, TcpProxy
from .sshd import Sshd, SshdError, ThrowawayUser

__all__ = [
    "AsyncsshServer",
    "EchoServer",
    "Mode",
    "Sha256Sink",
    "Sshd",
    "SshdError",
    "TcpProxy",
    "ThrowawayUser",
    "User",
    "echo_roundtrip",
    "free_port",
    "send_random",
    "wait_port",
]
