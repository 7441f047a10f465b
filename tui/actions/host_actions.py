"""What the Hosts pane's keys do: connect, test, paste, edit, delete, import, export, shell."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sshcore.api import DevtuiError, HostSpec

if TYPE_CHECKING:
    from ..app import DevTuiApp


class HostActions:
    """What the Hosts pane's keys do; the app holds one as `app.host_actions`."""

    def __init__(self, app: DevTuiApp) -> None:
        self.app = app

    def toggle_connect(self, name: str) -> None:
        """`c`: connect an idle host, disconnect a live one, cancel a connect in progress."""
        core = self.app.require_core()
        status = self.app.host_status(name)
        group = f"host:{name}"
        busy = self.app.jobs_in(group)
        if busy:
            for worker in busy:
                worker.cancel()
            self.app.job(core.disconnect(name), f"disconnecting {name}", group=group)
            return
        if status is not None and status.state.value in ("connected", "reconnecting", "lost"):
            self.app.job(core.disconnect(name), f"disconnecting {name}", group=group)
        else:
            self.app.job(self._connect(name), f"connecting {name}", group=group)

    async def _connect(self, name: str) -> None:
        from sshcore.api import ConnectError

        core = self.app.require_core()
        try:
            await core.connect(name)
        except asyncio.CancelledError:
            await core.disconnect(name)
            raise
        except ConnectError:
            pass  # the core's HostFailed event has told the user already (row, log, toast)
        self.app.refresh_panes()

    def test_host(self, name: str) -> None:
        """`t`: connect time, round trip, auth method, server version."""
        self.app.job(self._test(name), f"testing {name}", group=f"host:{name}")

    async def _test(self, name: str) -> None:
        core = self.app.require_core()
        status = await core.connect(name)
        rtt = await core.ping(name)
        self.app.live.round_trip[name] = rtt
        text = (
            f"{name}: OK · connect {status.connect_ms or 0:.0f} ms · round trip {rtt:.0f} ms · "
            f"{status.auth_method} · {status.server_version}"
        )
        self.app.notify(text, title="Test", timeout=10)
        self.app.log_line("info", text)
        self.app.refresh_panes()

    def test_all_hosts(self) -> None:
        """`T`: test every host at once (a few in flight), progress on top, failures first."""
        if not self.app.config.hosts:
            raise DevtuiError("no hosts yet: p pastes the ssh line your console gave you")
        self.app.job(self._test_all(), f"testing {len(self.app.config.hosts)} hosts", group="fleet")

    async def _test_all(self) -> None:
        from textual.worker import get_current_worker

        from sshcore.api import check_hosts

        from ..screens.dialogs import TextScreen

        names = list(self.app.config.hosts)
        done = 0
        worker = get_current_worker()

        def progress(check: Any) -> None:
            nonlocal done
            done += 1
            if check.round_trip_ms is not None:
                self.app.live.round_trip[check.name] = check.round_trip_ms
            self.app.job_says(worker, f"testing hosts {done}/{len(names)}")

        checks = await check_hosts(self.app.require_core(), names, on_result=progress)
        failed = [c for c in checks if not c.ok]
        lines = [f"{len(checks) - len(failed)} OK, {len(failed)} failed", ""]
        for c in checks:
            if c.ok:
                lines.append(
                    f"ok    {c.name:<16} {c.connect_ms or 0:5.0f} ms  rtt {c.round_trip_ms or 0:4.0f} ms"
                    f"  {c.auth_method}"
                )
            else:
                lines.append(f"FAIL  {c.name:<16} {c.error}")
        self.app.log_line("warning" if failed else "info", lines[0] + " (test of every host)")
        self.app.push_screen(TextScreen("Test of every host", "\n".join(lines)))
        self.app.refresh_panes()

    def open_shell(self, name: str) -> None:
        """`s`: a shell on the host through its connection; the dashboard comes back after."""
        self.app.job(self._shell(name), f"shell on {name}", group=f"host:{name}")

    async def _shell(self, name: str) -> None:
        from sshcore.api import default_terminal

        core = self.app.require_core()
        await core.connect(name)  # a password or host key is asked here, in a modal
        self.app.in_shell = True  # no repaints while the terminal belongs to the shell
        try:
            with self.app.suspend():
                print(f"devtui: shell on {name}; exit it to come back (tunnels keep running)")
                status = await core.shell(name, default_terminal())
        finally:
            self.app.in_shell = False
        self.app.refresh_panes(full=True)
        self.app.notify(f"Shell on {name} ended (exit status {status})")

    def paste_line(self) -> None:
        """`p`: paste an ssh line; saved as a host plus tunnels (same parsing as devtui add)."""
        from ..screens.forms import PasteScreen

        screen = PasteScreen(self.app.config.data, str(self.app.config.path))
        self.app.push_screen(screen, callback=self._pasted)

    def _pasted(self, line: object) -> None:
        if isinstance(line, str) and line:
            self.app.job(self._add_line(line), "saving the pasted host")

    async def _add_line(self, line: str) -> None:
        from sshcore.api import ops

        outcome = await asyncio.to_thread(ops.add_from_line, self.app.config, line)
        self.app.note_saved()
        self.app.said(outcome.lines)
        self.app.refresh_panes(saved=True)
        self.app.hosts_pane.select_row(outcome.host)

    def edit_host(self, name: str | None) -> None:
        """`a` / `e`: the host form; saved when valid."""
        from ..screens.forms import HostFormScreen

        spec = self.app.config.hosts.get(name) if name else None
        self.app.push_screen(
            HostFormScreen(self.app.config.data, spec),
            callback=lambda result: self._host_saved(name, result),
        )

    def _host_saved(self, name: str | None, result: object) -> None:
        if not isinstance(result, HostSpec):
            return
        core = self.app.require_core()
        work = core.add_host(result) if name is None else core.update_host(name, result)
        self.app.job(
            self.app.after_save(work, f"Saved host {result.name}"), f"saving {result.name}"
        )

    def delete_host(self, name: str) -> None:
        """`d`: delete after a confirmation that names the tunnels going too."""
        from ..screens.dialogs import ConfirmScreen

        tunnels = [t.name for t in self.app.config.data.tunnels_of(name)]
        body = f"Delete host {name} ({self.app.config.hosts[name].destination})?"
        if tunnels:
            body += f"\nIts tunnels go too: {', '.join(tunnels)}."
        self.app.push_screen(
            ConfirmScreen("Delete host", body, yes="delete"),
            callback=self.app.if_yes(
                lambda: self.app.job(self._delete_host(name), f"deleting {name}")
            ),
        )

    async def _delete_host(self, name: str) -> None:
        gone = await self.app.require_core().remove_host(name)
        self.app.note_saved()
        for tunnel in gone:
            self.app.live.forget(tunnel)
        self.app.live.forget(name)
        extra = f" and its tunnels {', '.join(gone)}" if gone else ""
        self.app.notify(f"Deleted host {name}{extra}")
        self.app.log_line("info", f"deleted host {name}{extra}")
        self.app.refresh_panes(full=True)

    def import_ssh_config(self) -> None:
        """`i`: import ~/.ssh/config (VS Code's Remote-SSH hosts)."""
        self.app.job(self._import(), "importing ~/.ssh/config")

    async def _import(self) -> None:
        from sshcore.api import ops

        outcome = await asyncio.to_thread(ops.import_ssh_config, self.app.config, None)
        self.app.note_saved()
        self.app.said(outcome.lines)
        self.app.refresh_panes(full=True)

    def export_host(self, name: str) -> None:
        """`x`: write the host as a Host block in ~/.ssh/config (for VS Code and ssh)."""
        self.app.job(self._export(name), f"exporting {name}")

    async def _export(self, name: str) -> None:
        from sshcore.api import ops

        outcome = await asyncio.to_thread(ops.export_host, self.app.config, name, None)
        self.app.said(outcome.lines)

    def forget_host_key(self, name: str) -> None:
        """Palette: remove a host's known_hosts entries after the machine was rebuilt."""
        from ..screens.dialogs import ConfirmScreen

        spec = self.app.config.hosts[name]
        self.app.push_screen(
            ConfirmScreen(
                "Forget host key",
                f"Remove the saved host key of {name} ({spec.hostname}:{spec.port}) from "
                "known_hosts? Do this only if you know the machine was rebuilt: the next "
                "connect asks you to trust the new key.",
                yes="forget it",
            ),
            callback=self.app.if_yes(
                lambda: self.app.job(self._forget(name), f"forgetting {name}'s key")
            ),
        )

    async def _forget(self, name: str) -> None:
        from sshcore.api import ops

        forgot = await asyncio.to_thread(ops.forget_host_key, self.app.config, name)
        self.app.said(forgot.lines(name))
