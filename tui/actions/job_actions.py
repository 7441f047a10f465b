"""Remote jobs in the dashboard: `j` starts one on a host, each running job's output is a
source of the Logs pane, its end is a note with its exit status, and the host's row counts
the jobs that run. What a job is lives on the host (sshcore/jobs.py): a restarted dashboard
finds the same jobs when it connects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sshcore.api import DevtuiError

if TYPE_CHECKING:
    from sshcore.api import JobInfo

    from ..app import DevTuiApp

POLL_INTERVAL = 15.0  # seconds between looks at a connected host's jobs (one small command)
FIRST_LINES = 200  # of a job's output, shown when the dashboard starts following it


def source_key(host: str, name: str) -> str:
    """The Logs pane source of a job ("gpu:job train")."""
    return f"{host}:job {name}"


class JobActions:
    """Jobs on the hosts; the app holds one as `app.job_actions`."""

    def __init__(self, app: DevTuiApp) -> None:
        self.app = app
        self.jobs: dict[str, list[JobInfo]] = {}  # host -> its jobs, as last listed

    def running(self, host: str) -> list[JobInfo]:
        """The jobs that ran on `host` at the last look."""
        return [j for j in self.jobs.get(host, []) if j.running]

    def all_running(self) -> list[JobInfo]:
        """Every running job the dashboard knows of."""
        return [j for jobs in self.jobs.values() for j in jobs if j.running]

    # -- start ------------------------------------------------------------------------------
    def start_job_form(self, host: str) -> None:
        """`j` on a host: a form with the command line (and a name, if wanted)."""
        from ..screens.forms import JobFormScreen

        taken = {j.name for j in self.jobs.get(host, [])}
        self.app.push_screen(JobFormScreen(host, taken), callback=self._submitted)

    def _submitted(self, result: object) -> None:
        if isinstance(result, tuple):
            host, command, name = result
            self.app.job(self._start(host, command, name), f"starting a job on {host}")

    async def _start(self, host: str, command: str, name: str | None) -> None:
        from sshcore.api import start_job

        info = await start_job(self.app.require_core(), host, command, name)
        self.app.say(f"job {info.name} started on {host} ({info.mode})")
        self.app.log_line("info", f"{host}: job {info.name} started: {info.command}")
        self._known(host, [*self.jobs.get(host, []), info])
        self.follow(info)

    # -- what runs --------------------------------------------------------------------------
    def poll(self) -> None:
        """Look at every connected host's jobs (a timer calls this every POLL_INTERVAL)."""
        for host in self.app.config.hosts:
            self.look(host)

    def look(self, host: str) -> None:
        """List a connected host's jobs in the background; running ones are followed. A
        host that is not connected is left alone (looking must not connect it)."""
        status = self.app.host_status(host)
        if status is None or status.state.value != "connected" or self.app.in_shell:
            return
        group = f"jobs:{host}"
        if any(w.group == group and w.is_running for w in self.app.workers):
            return
        self.app.run_worker(self._look(host), group=group, exit_on_error=False)

    async def _look(self, host: str) -> None:
        from sshcore.api import list_jobs

        try:
            jobs = await list_jobs(self.app.require_core(), host)
        except DevtuiError:
            return  # not a POSIX host, or the link went: the next look tries again
        self._known(host, jobs)
        for info in jobs:
            if info.running:
                self.follow(info)

    def _known(self, host: str, jobs: list[JobInfo]) -> None:
        before = len(self.running(host))
        self.jobs[host] = jobs
        if len(self.running(host)) != before:
            self.app.refresh_panes(hosts={host}, tunnels=set())

    def follow(self, info: JobInfo) -> None:
        """Follow a running job's output in the Logs pane, and say when it ends."""
        key = source_key(info.host, info.name)
        worker = self.app.followers.get(key)
        if worker is not None and worker.is_running:
            return
        self.app.log_actions.follow_in_worker(key, lambda: self._follow(info.host, info.name, key))

    async def _follow(self, host: str, name: str, key: str) -> None:
        from sshcore.api import follow_job

        line, notice = self.app.log_actions.writers(key)
        try:
            status = await follow_job(
                self.app.require_core(), host, name, line, FIRST_LINES, on_notice=notice
            )
        except DevtuiError as e:
            notice(str(e))
            return
        ended = f"job {name} on {host} ended: exit status {status if status is not None else '?'}"
        self.app.notify(
            ended,
            title="Job ended",
            severity="information" if status == 0 else "warning",
            timeout=15,
        )
        self.app.log_line("info" if status == 0 else "warning", ended)
        self.look(host)

    # -- stop, show -------------------------------------------------------------------------
    def stop_job(self, item: tuple[str, str]) -> None:
        """Stop a job and everything it started (asks first)."""
        from ..screens.dialogs import ConfirmScreen

        host, name = item
        self.app.push_screen(
            ConfirmScreen(
                "Stop job", f"Stop job {name} on {host} and every process it started?", "stop"
            ),
            callback=self.app.if_yes(
                lambda: self.app.job(self._stop(host, name), f"stopping job {name}")
            ),
        )

    async def _stop(self, host: str, name: str) -> None:
        from sshcore.api import stop_job

        stopped = await stop_job(self.app.require_core(), host, name)
        self.app.said([stopped.message()])
        self.look(host)

    def show_output(self, item: tuple[str, str]) -> None:
        """Show a job's output in the Logs pane (following it if it runs)."""
        host, name = item
        info = next((j for j in self.jobs.get(host, []) if j.name == name), None)
        if info is not None and info.running:
            self.follow(info)
        key = source_key(host, name)
        if key not in self.app.logs_pane.sources:
            raise DevtuiError(f"job {name} on {host} is not followed (it has ended)")
        self.app.logs_pane.source = key
        self.app.logs_pane.focus_main()
