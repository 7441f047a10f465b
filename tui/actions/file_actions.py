"""Upload to a host and download from it, in the background: progress on the top line and
in the Logs pane, `esc` stops it (the `.devtui-part` file stays, and the same copy later
resumes it), a finished copy is a note with its size, time and rate."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from sshcore.api import visible

from ..format import human_bytes, human_rate

if TYPE_CHECKING:
    from sshcore.api import CopyProgress, CopyResult

    from ..app import DevTuiApp

LOG_EVERY = 5.0  # seconds between progress lines in the Logs pane (the top line is live)


def progress_text(p: CopyProgress) -> str:
    """ "train.csv 2/5 · 45% of 1.2G · 38M/s · 12 s left"."""
    name = visible(p.source.rstrip("/").rsplit("/", 1)[-1] or p.source)  # a host's names
    files = f" {p.file_index}/{p.file_count}" if p.file_count > 1 else ""
    share = f"{p.done * 100 // p.total}%" if p.total else "0%"
    rate = human_rate(p.rate) or "…"
    left = f" · {p.eta:.0f} s left" if p.eta is not None else ""
    return f"{name}{files} · {share} of {human_bytes(p.total)} · {rate}{left}"


def done_text(results: list[CopyResult], seconds: float) -> str:
    """ "copied 3 files, 1.2G in 31 s (38M/s)"."""
    total = sum(r.bytes for r in results)
    sent = sum(r.sent for r in results)
    files = f"{len(results)} file{'s' if len(results) != 1 else ''}"
    rate = human_rate(sent / seconds) if seconds > 0 else ""
    kept = sum(r.unchanged for r in results)
    same = f", {kept} already there" if kept else ""
    took = f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"  # not "in 0 s"
    return f"copied {files}, {human_bytes(total)} in {took} s ({rate or 'no data sent'}){same}"


class FileActions:
    """Copies between this machine and a host; the app holds one as `app.file_actions`."""

    def __init__(self, app: DevTuiApp) -> None:
        self.app = app

    def copy_form(self, host: str, upload: bool) -> None:
        """Upload to `host` (or download from it): a form with the two paths."""
        from ..screens.forms import CopyFormScreen

        self.app.push_screen(CopyFormScreen(host, upload), callback=self._submitted)

    def upload(self, host: str) -> None:
        """The palette's "Files: upload to HOST"."""
        self.copy_form(host, upload=True)

    def download(self, host: str) -> None:
        """The palette's "Files: download from HOST"."""
        self.copy_form(host, upload=False)

    def _submitted(self, result: object) -> None:
        if isinstance(result, tuple):
            sources, dest, force = result
            what = f"copying {sources[0]} -> {dest}"
            self.app.job(self._copy(sources, dest, what, force), what, group="copy")

    async def _copy(self, sources: list[str], dest: str, what: str, force: bool = False) -> None:
        from textual.worker import get_current_worker

        from sshcore.api import copy_files

        worker = get_current_worker()  # this copy's own (another may have started since)
        logged = 0.0
        start = time.monotonic()
        self.app.log_line("info", what)

        def progress(p: CopyProgress) -> None:
            nonlocal logged
            text = progress_text(p)
            self.app.job_says(worker, text)
            if time.monotonic() - logged >= LOG_EVERY:
                logged = time.monotonic()
                self.app.log_line("info", f"copy: {text}")

        def notice(text: str) -> None:
            self.app.log_line("warning", f"copy: {text}")

        try:
            results = await copy_files(
                self.app.require_core(),
                sources,
                dest,
                recursive=True,
                force=force,
                on_progress=progress,
                on_notice=notice,
            )
        except asyncio.CancelledError:
            self.app.log_line(
                "warning", f"copy stopped: {what} (run it again to resume where it stopped)"
            )
            raise
        text = done_text(results, time.monotonic() - start)
        self.app.notify(f"{text}\n{what}", title="Copy done", timeout=12)
        self.app.log_line("info", f"{text}: {what}")
