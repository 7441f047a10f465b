"""Watching a connected host's ports, like an editor's "ports" view: offers of new ports,
forwarding one in a key (or by itself), "remote closed" on a tunnel whose program stopped,
and "gradio moved to 7861?" when a tunnel's program came back on another port.

One look is one fixed command (sshcore.discovery); the state here is what the looks saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import TYPE_CHECKING, Protocol

import asyncssh

from .discovery import ListeningPort, UnsupportedHost, ignored, new_ports, target_address
from .errors import DevtuiError
from .events import (
    DiscoveryUnsupported,
    Event,
    PortForwarded,
    PortsNotOffered,
    PortWatchFailed,
    PortWatchStarted,
    RemotePortClosed,
    RemotePortOpened,
    TargetAnswered,
    TargetRefused,
    TunnelConnectionOpened,
    TunnelRemoteClosed,
    TunnelRemoteReturned,
    TunnelTargetMoved,
)
from .model import LOOPBACK, Endpoint, TunnelSpec, check_port, tunnel_name
from .ports import free_port_near, open_listener, port_owner
from .remote_commands import RemoteCommandError
from .session import HostState

if TYPE_CHECKING:
    from .config import Config
    from .events import EventBus
    from .session import HostSession
    from .tunnels import Tunnel, TunnelStatus


class WatchedCore(Protocol):
    """What watching ports needs of the core: its config and events, the hosts' sessions
    and listening ports, and its tunnels (to know what is forwarded, and to start one)."""

    bus: EventBus
    config: Config
    sessions: dict[str, HostSession]
    tunnels: dict[str, Tunnel]

    def session(self, name: str) -> HostSession: ...

    async def listening_ports(self, name: str) -> list[ListeningPort]: ...

    def tunnel_specs(self) -> dict[str, TunnelSpec]: ...

    def tunnel_state(self, name: str) -> TunnelStatus: ...

    async def start_tunnel(self, name: str) -> TunnelStatus: ...

    async def restart_tunnel(self, name: str) -> TunnelStatus: ...


ANNOUNCED_PER_LOOK = 64  # new ports announced (and so offered) per look; the rest counted
OFFERS_MAX = 64  # offers per host at any time
AUTO_FORWARDS_PER_LOOK = 4  # ports auto_forward = "always" forwards per look


class PortWatch:
    """What Core knows about its hosts' ports, and the loops that keep it current."""

    def __init__(self, core: WatchedCore) -> None:
        self.core = core
        self.ports: dict[str, list[ListeningPort]] = {}  # host -> the last look
        self.unsupported: set[str] = set()  # hosts told "not supported" (once)
        self.discovered: dict[str, TunnelSpec] = {}  # tunnels made from offers, not saved
        self.remote_closed: set[str] = set()  # tunnels whose remote program stopped listening
        self.moved: dict[str, int] = {}  # tunnel -> the port its program listens on now
        self.refused: set[str] = set()  # tunnels whose target refused since it last worked
        self._owners: dict[tuple[str, int], str] = {}  # (host, port) -> last program seen there
        self._first_seen: dict[tuple[str, int], int] = {}  # (host, port) -> look number
        self._looks: dict[str, int] = {}
        self._pokes: dict[str, asyncio.Event] = {}

    # -- events -----------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Core's subscriber: a refused target may have moved; a working one has not."""
        if isinstance(event, TargetRefused):
            spec = self.spec(event.tunnel)
            if spec is not None and spec.kind == "local":
                self.refused.add(event.tunnel)
                self._check_moved(spec)
                self.poke(spec.host)  # look now: the program may have just moved
        elif isinstance(event, TunnelConnectionOpened | TargetAnswered):
            self.refused.discard(event.tunnel)
            self.moved.pop(event.tunnel, None)

    def poke(self, host: str) -> None:
        """Make the host's watcher look now instead of at its next interval."""
        poke = self._pokes.get(host)
        if poke is not None:
            poke.set()

    # -- the loop ---------------------------------------------------------------------------
    async def watch(self, name: str, interval: float, auto: bool) -> None:
        """Look at host `name`'s ports every `interval` seconds and publish what changed.

        `auto` (started because the host connected): ends when the host is disconnected or
        failed, and never connects it itself; a host that cannot be watched says so once.
        """
        # This runs in the process that carries every tunnel: whatever one host sends, the
        # watcher says so once and keeps going; it never dies silently nor takes others down.
        before: list[ListeningPort] | None = None
        said: str | None = None
        poke = self._pokes.setdefault(name, asyncio.Event())
        while True:
            if auto:
                session = self.core.sessions.get(name)
                if session is None or session.state in (HostState.IDLE, HostState.FAILED):
                    return
                if session.state != HostState.CONNECTED:
                    await self._pause(poke, interval)
                    continue
            now: list[ListeningPort] | None = None
            problem: str | None = None
            try:
                now = await self.core.listening_ports(name)
            except UnsupportedHost as e:
                if name not in self.unsupported:
                    self.unsupported.add(name)
                    self.core.bus.publish(DiscoveryUnsupported(name, e.reason))
                return  # the host will not grow a /proc while we look: stop asking
            except RemoteCommandError as e:
                problem = str(e)
            except (DevtuiError, OSError, asyncssh.Error):
                pass  # the host is reconnecting: try again next round
            except Exception as e:  # a bug or a reply nobody foresaw: say it, keep watching
                problem = f"{type(e).__name__}: {e}"
            if problem is not None and problem != said:
                self.core.bus.publish(PortWatchFailed(name, problem))
            said = problem if now is None else None
            if now is not None:
                try:
                    await self._seen(name, before, now)
                except Exception as e:  # a bug here must not end the watch
                    self.core.bus.publish(PortWatchFailed(name, f"{type(e).__name__}: {e}"))
                before = now
            await self._pause(poke, interval)

    @staticmethod
    async def _pause(poke: asyncio.Event, interval: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(poke.wait(), interval)
        poke.clear()

    async def _seen(
        self, host: str, before: list[ListeningPort] | None, now: list[ListeningPort]
    ) -> None:
        look = self._looks[host] = self._looks.get(host, 0) + 1
        self.ports[host] = now
        for port in now:
            self._first_seen.setdefault((host, port.port), look)
            if port.process:
                self._owners[(host, port.port)] = port.process
        if before is None:  # the first look is the starting picture, not news
            self.core.bus.publish(PortWatchStarted(host, len({p.port for p in now})))
        else:
            for port in new_ports(now, before):
                self._first_seen.pop((host, port.port), None)
                self.core.bus.publish(RemotePortClosed(host, port.port))
            opened = new_ports(before, now)
            # A host that opens thousands of ports at once (a shared machine's other users,
            # a bug) gets a few announced and one line for the rest: announcing 20,000 froze
            # the dashboard, and each is an offer.
            for port in opened[:ANNOUNCED_PER_LOOK]:
                self.core.bus.publish(
                    RemotePortOpened(host, port.port, port.address, port.process, port.pid)
                )
            if len(opened) > ANNOUNCED_PER_LOOK:
                self.core.bus.publish(PortsNotOffered(host, len(opened) - ANNOUNCED_PER_LOOK))
            spec = self.core.config.hosts.get(host)
            if spec is not None and spec.auto_forward == "always":
                offered = {p.port for p in self.offers(host)}
                # Each binds a port here: a few per look, so no remote user can squat this
                # machine's ports (or its descriptors) by opening listeners there.
                wanted = [p for p in opened[:ANNOUNCED_PER_LOOK] if p.port in offered]
                for port in wanted[:AUTO_FORWARDS_PER_LOOK]:
                    with contextlib.suppress(DevtuiError):  # its TunnelFailed said why
                        await self.forward_port(host, port.port)
                if len(wanted) > AUTO_FORWARDS_PER_LOOK:
                    left = len(wanted) - AUTO_FORWARDS_PER_LOOK
                    self.core.bus.publish(PortsNotOffered(host, left, "forwarded by themselves"))
        was = {p.port for p in before} if before is not None else None
        self._check_tunnels(host, was, {p.port for p in now})

    def _check_tunnels(self, host: str, was: set[int] | None, listening: set[int]) -> None:
        bus = self.core.bus
        for tunnel in list(self.core.tunnels.values()):
            spec = tunnel.spec
            if spec.host != host or not tunnel.running or not _on_the_host(spec):
                continue
            assert spec.target is not None
            port, name = spec.target.port, spec.name
            if port in listening:
                # Back after "remote closed", or up for the first time since the tunnel was.
                if name in self.remote_closed or (was is not None and port not in was):
                    self.remote_closed.discard(name)
                    bus.publish(TunnelRemoteReturned(name, host, port))
                self.moved.pop(name, None)
                self.refused.discard(name)
                continue
            if was is not None and port in was and name not in self.remote_closed:
                self.remote_closed.add(name)
                bus.publish(TunnelRemoteClosed(name, host, port))
            if name in self.refused:
                self._check_moved(spec)

    def _check_moved(self, spec: TunnelSpec) -> None:
        if spec.target is None or not _on_the_host(spec):
            return
        new = self._moved_to(spec)
        if new is not None and self.moved.get(spec.name) != new:
            self.moved[spec.name] = new
            process = self._owners.get((spec.host, spec.target.port))
            self.core.bus.publish(
                TunnelTargetMoved(spec.name, spec.host, spec.target.port, new, process)
            )

    def _moved_to(self, spec: TunnelSpec) -> int | None:
        """The port the program behind `spec`'s target listens on now, if it moved."""
        assert spec.target is not None
        host, old = spec.host, spec.target.port
        process = self._owners.get((host, old))
        ports = self.ports.get(host, [])
        if process is None or any(p.port == old for p in ports):
            return None
        taken = self._forwarded(host)
        candidates = [
            p.port for p in ports if p.process == process and p.port != old and p.port not in taken
        ]
        if not candidates:
            return None
        # The newest listener of that program, then the nearest port (7860 -> 7861).
        return max(candidates, key=lambda p: (self._first_seen.get((host, p), 0), -abs(p - old)))

    # -- offers and discovered tunnels ------------------------------------------------------
    def spec(self, name: str) -> TunnelSpec | None:
        """A tunnel's spec, saved or discovered."""
        return self.core.config.tunnels.get(name) or self.discovered.get(name)

    def _forwarded(self, host: str) -> set[int]:
        """Remote ports that a tunnel of `host` (saved or discovered) already reaches."""
        specs = [*self.core.config.tunnels.values(), *self.discovered.values()]
        return {t.target.port for t in specs if t.host == host and t.kind == "local" and t.target}

    def offers(self, host: str) -> list[ListeningPort]:
        """Ports of `host` worth forwarding: seen, not ignored, not forwarded yet."""
        spec = self.core.config.hosts.get(host)
        if spec is None:
            return []
        skip = self._forwarded(host)
        # Our own -R tunnels listen on the host: forwarding them back would be a loop.
        skip |= {
            t.listen.port
            for t in self.core.tunnel_specs().values()
            if t.host == host and t.kind == "remote"
        }
        if Endpoint(spec.hostname, 1).loopback:
            # The "remote" is this machine: our own tunnels' listeners are not offers (with
            # auto_forward = "always" they would forward themselves, one port up, forever).
            skip |= {
                t.spec.listen.port
                for t in self.core.tunnels.values()
                if t.running and t.spec.kind != "remote"
            }
        offered: list[ListeningPort] = []
        for port in self.ports.get(host, []):
            if port.port in skip or ignored(port.port, spec.ignore_ports):
                continue
            skip.add(port.port)  # once per port, whatever addresses it listens on
            offered.append(port)
            if len(offered) == OFFERS_MAX:
                break
        return offered

    async def forward_port(self, host: str, port: int) -> tuple[TunnelSpec, str | None]:
        """An unsaved local tunnel 127.0.0.1:PORT -> the remote's PORT, started; when PORT
        is busy here, the next free one, and a note saying so (and who holds PORT)."""
        self.core.session(host)  # a clear error for an unknown host
        try:
            check_port(port)
        except ValueError as e:
            raise DevtuiError(str(e)) from None
        target = Endpoint(target_address(self.ports.get(host, []), port), port)
        local, note = await asyncio.to_thread(_free_local_port, port)
        name = self._free_name(tunnel_name(host, "local", port))
        spec = TunnelSpec(name, host, "local", Endpoint(LOOPBACK, local), target, discovered=True)
        self.discovered[name] = spec
        try:
            await self.core.start_tunnel(name)
        except BaseException:
            self.discovered.pop(name, None)
            self.core.tunnels.pop(name, None)
            raise
        self.core.bus.publish(PortForwarded(host, port, name, local, note))
        return spec, note

    def _free_name(self, base: str) -> str:
        taken = set(self.core.config.tunnels) | set(self.discovered)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        return name

    async def save_tunnel(self, name: str) -> None:
        """Write a discovered tunnel to the config; from then on it is like any other."""
        spec = self.discovered.get(name)
        if spec is None:
            if name in self.core.config.tunnels:
                return  # saved already
            raise DevtuiError(f"no tunnel named {name!r} (see: devtui tunnels list)")
        saved = dataclasses.replace(spec, discovered=False)
        await asyncio.to_thread(self.core.config.add_tunnel, saved)
        self.discovered.pop(name, None)
        tunnel = self.core.tunnels.get(name)
        if tunnel is not None:
            tunnel.spec = saved

    async def retarget_tunnel(self, name: str, port: int) -> TunnelStatus:
        """Point tunnel `name` at another remote port: saved (when it is saved) and only that
        tunnel restarted."""
        spec = self.spec(name)
        if spec is None:
            raise DevtuiError(f"no tunnel named {name!r} (see: devtui tunnels list)")
        if spec.target is None:
            raise DevtuiError(f"tunnel {name} is a SOCKS proxy: it has no target port")
        try:
            target = Endpoint(spec.target.address, check_port(port))
        except ValueError as e:
            raise DevtuiError(str(e)) from None
        new = dataclasses.replace(spec, target=target)
        if name in self.discovered:
            self.discovered[name] = new
        else:
            await asyncio.to_thread(self.core.config.update_tunnel, name, new)
        self.moved.pop(name, None)
        self.refused.discard(name)
        self.remote_closed.discard(name)
        tunnel = self.core.tunnels.get(name)
        if tunnel is not None and tunnel.running:
            return await self.core.restart_tunnel(name)
        return self.core.tunnel_state(name)

    def forget(self, names: list[str]) -> None:
        """Tunnels removed: drop what was known about them."""
        for name in names:
            self.discovered.pop(name, None)
            self.moved.pop(name, None)
            self.refused.discard(name)
            self.remote_closed.discard(name)


def _on_the_host(spec: TunnelSpec) -> bool:
    """A local tunnel to a port of the host itself (not to a machine behind it)."""
    return spec.kind == "local" and spec.target is not None and spec.target.loopback


def _free_local_port(port: int) -> tuple[int, str | None]:
    """`port` if it can be listened on here now, else the next free one and a note."""
    try:
        open_listener(LOOPBACK, port).close()
        return port, None
    except OSError:
        pass
    owner = port_owner(port, LOOPBACK)
    other = free_port_near(port, LOOPBACK)
    held = f" (held by {owner})" if owner else ""
    if other is None:
        raise DevtuiError(f"{port} is busy here{held} and so are the 50 ports after it")
    return other, f"{port} is busy{held}: forwarded to {other}"
