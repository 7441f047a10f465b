"""Remote log sources of the Logs pane: followed like tail -F, saved with their host."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from sshcore.api import DevtuiError

from ..panes.logs_pane import LogRecord

if TYPE_CHECKING:
    from ..app import DevTuiApp


class LogActions:
    """Remote log sources of the Logs pane; the app holds one as `app.log_actions`."""

    def __init__(self, app: DevTuiApp) -> None:
        self.app = app

    def start_log_sources(self) -> None:
        """Follow every remote log the hosts name (saved with each host)."""
        for host in self.app.config.hosts.values():
            for source in host.log_sources:
                self._follow(host.name, source)

    def _follow(self, host: str, source: str) -> None:
        key = f"{host}:{source}"
        if key not in self.app.followers:
            self.follow_in_worker(key, lambda: self._follow_source(host, source, key))

    def follow_in_worker(self, key: str, work: Callable[[], Awaitable[object]]) -> None:
        """A Logs source `key` (shown at once) whose lines `work()` produces in a worker."""
        self.app.logs_pane.add_source(key)
        self.app.followers[key] = self.app.run_worker(
            work(), name=f"follow {key}", group=f"follow:{key}", exit_on_error=False
        )

    def writers(self, key: str) -> tuple[Callable[[str], None], Callable[[str], None]]:
        """(line, notice) for source `key`: called from the core's tasks, they queue what
        they are given, drawn in batches at the next flush."""
        pending = self.app.pending_lines(key)

        def line(text: str) -> None:
            pending.add(LogRecord(time.time(), "info", text))
            self.app.mark_dirty()

        def notice(text: str) -> None:
            pending.add(LogRecord(time.time(), "warning", text))
            self.app.mark_dirty()

        return line, notice

    async def _follow_source(self, host: str, source: str, key: str) -> None:
        line, notice = self.writers(key)
        await self.app.require_core().follow(host, source, line, on_notice=notice)

    def add_log_source(self) -> None:
        """`a` in Logs: follow a remote file or command; saved with its host."""
        from ..screens.forms import LogSourceScreen

        if not self.app.config.hosts:
            raise DevtuiError("no hosts yet: add one first (1, then p)")
        host = self.app.hosts_pane.selected_key()
        self.app.push_screen(
            LogSourceScreen(self.app.config.data, host), callback=self._source_added
        )

    def _source_added(self, result: object) -> None:
        if isinstance(result, tuple):
            host, source = result
            self.app.job(self._save_source(host, source), f"adding {host}:{source}")

    async def _save_source(self, host: str, source: str) -> None:
        spec = self.app.config.hosts[host]
        updated = replace(spec, log_sources=(*spec.log_sources, source))
        await self.app.require_core().update_host(host, updated)
        self.app.note_saved()
        self._follow(host, source)
        self.app.logs_pane.source = f"{host}:{source}"
        self.app.logs_pane.focus_main()

    def remove_log_source(self, key: str) -> None:
        """`d` in Logs: stop following a remote source and forget it."""
        from ..screens.dialogs import ConfirmScreen

        host, _, source = key.partition(":")
        self.app.push_screen(
            ConfirmScreen("Remove log source", f"Stop following {source} on {host}?", "remove"),
            callback=self.app.if_yes(
                lambda: self.app.job(self._remove_source(host, source, key), "saving")
            ),
        )

    async def _remove_source(self, host: str, source: str, key: str) -> None:
        worker = self.app.followers.pop(key, None)
        if worker is not None:
            worker.cancel()
        self.app.logs_pane.remove_source(key)
        spec = self.app.config.hosts.get(host)
        if spec is not None and source in spec.log_sources:
            kept = tuple(s for s in spec.log_sources if s != source)
            await self.app.require_core().update_host(host, replace(spec, log_sources=kept))
            self.app.note_saved()
