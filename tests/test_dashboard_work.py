"""The dashboard's remote jobs and copies, against a real sshd: `j` starts a job whose output
is a Logs source and whose end is a note, the host's row counts running jobs, the palette
stops one; `u` / `D` copy with progress on the top line, and `esc` stops a copy, leaving its
`.devtui-part` file for a later resume."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home, sshd_host
from dashboard_util import cell_texts, make_app, ready, type_text, until
from test_jobs import JobHost
from textual.widgets import Input

from tui.actions.job_actions import source_key


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


@pytest.fixture
def job_host(sshd_factory: Callable[..., Any], tmp_path: Path) -> Iterator[JobHost]:
    """A real sshd (with tmux) keeping job records and its tmux server in temp dirs."""
    cache = tmp_path / "cache"
    tmux_dir = Path(tempfile.mkdtemp(prefix="dtd-"))
    remote_home = tmp_path / "remote-home"
    remote_home.mkdir()
    env = f"HOME={remote_home} XDG_CACHE_HOME={cache} TMUX_TMPDIR={tmux_dir}"
    host = JobHost(sshd_factory([f"SetEnv {env}"]), cache, tmux_dir, tmp_path, True)
    yield host
    host.cleanup()


def _app(tmp_path: Path, sshd: Any) -> Any:
    known = tmp_path / "known_hosts"
    sshd.write_known_hosts(known)
    return make_app(tmp_path, {"box": sshd_host(sshd)}, known_hosts=str(known))


async def _connected(pilot: Any, app: Any) -> None:
    await pilot.press("1", "c")
    await until(
        pilot,
        lambda: (s := app.host_status("box")) is not None and s.state.value == "connected",
        15,
        "box connected",
    )


async def _copy_form(
    pilot: Any, app: Any, key: str, source: str, dest: str, force: bool = False
) -> None:
    """`u` or `D` on the selected host, the two paths typed, "Replace" ticked if asked, enter."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.focused, Input), 5, "the copy form")
    await type_text(pilot, source)
    await pilot.press("tab", "ctrl+a", "ctrl+k")  # the upload form's "~/" goes
    await type_text(pilot, dest)
    if force:
        await pilot.press("tab", "space")  # the "Replace a file there that differs" box
    await pilot.press("enter")


async def _palette(pilot: Any, app: Any, command: str) -> None:
    """Run a command palette entry by its title."""
    await pilot.press("ctrl+p")
    await type_text(pilot, command)
    await until(
        pilot,
        lambda: command in str(app.screen.query_one("CommandList").get_option_at_index(0).prompt),
        5,
        f"'{command}' in the palette",
    )
    await pilot.press("enter")


def _source_text(app: Any, key: str) -> str:
    return "\n".join(r.text for r in app.logs_pane.sources.get(key, []))


async def test_j_starts_a_job_its_output_is_a_source_and_its_end_a_note(
    tmp_path: Path, job_host: JobHost
) -> None:
    app = _app(tmp_path, job_host.sshd)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await _connected(pilot, app)
        await pilot.press("j")
        await until(pilot, lambda: isinstance(app.focused, Input), 5, "the job form")
        await type_text(pilot, "for i in 1 2 3; do echo line$i; sleep 0.3; done; exit 3")
        await pilot.press("tab")
        await type_text(pilot, "count")
        await pilot.press("enter")
        key = source_key("box", "count")
        await until(pilot, lambda: key in app.logs_pane.sources, 15, "the job's source")
        await until(pilot, lambda: "line3" in _source_text(app, key), 15, "its output")
        assert "line1\n" in _source_text(app, key) + "\n"
        notes = lambda: [n.message for n in app._notifications]  # noqa: E731
        await until(
            pilot,
            lambda: any("job count on box ended: exit status 3" in m for m in notes()),
            15,
            "the note of its end",
        )


async def test_the_host_row_counts_running_jobs_and_the_palette_stops_one(
    tmp_path: Path, job_host: JobHost
) -> None:
    # Started before the dashboard (by another devtui): found when the host connects.
    from sshcore.jobs import start_job

    core = job_host.core()
    async with core:
        await start_job(core, "box", ["sleep", "300"], "nap")
    app = _app(tmp_path, job_host.sshd)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await _connected(pilot, app)
        detail = lambda: cell_texts(app.hosts_pane.table, "box")[-1]  # noqa: E731
        await until(pilot, lambda: detail().startswith("1 job · "), 15, "'1 job' in the row")
        assert source_key("box", "nap") in app.logs_pane.sources  # followed at once
        await _palette(pilot, app, "Jobs: show the output of nap")
        await until(
            pilot, lambda: app.logs_pane.source == source_key("box", "nap"), 5, "its source"
        )
        await _palette(pilot, app, "Jobs: stop nap")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", 5, "the question")
        await pilot.press("y")
        await until(pilot, lambda: not detail().startswith("1 job"), 20, "no job in the row")
    async with core:
        from sshcore.jobs import job_info

        assert (await job_info(core, "box", "nap")).state == "exited"


async def test_upload_and_download_through_the_forms(tmp_path: Path, sshd: Any) -> None:
    local = tmp_path / "up.bin"
    local.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    theirs = remote_dir / "down.bin"
    theirs.write_bytes(os.urandom(2 * 1024 * 1024 + 5))  # other bytes: direction shows
    back = tmp_path / "back"
    back.mkdir()
    app = _app(tmp_path, sshd)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("1")
        await _copy_form(pilot, app, "u", str(local), f"{remote_dir}/")
        uploaded = remote_dir / "up.bin"
        await until(pilot, uploaded.exists, 30, "the uploaded file")
        assert uploaded.read_bytes() == local.read_bytes()
        notes = lambda: [n.message for n in app._notifications]  # noqa: E731
        await until(pilot, lambda: any("copied 1 file" in m for m in notes()), 10, "the note")
        logs = lambda: [r.text for r in app.logs_pane.records]  # noqa: E731
        assert any(t.startswith("copy: up.bin · ") for t in logs())  # its progress, in Logs
        await _copy_form(pilot, app, "D", str(theirs), str(back))
        await until(pilot, (back / "down.bin").exists, 30, "the downloaded file")
        assert (back / "down.bin").read_bytes() == theirs.read_bytes()
        await _copy_form(pilot, app, "D", str(theirs), str(back / "renamed.bin"))  # a new name
        await until(pilot, (back / "renamed.bin").exists, 30, "the download under a new name")
        assert (back / "renamed.bin").read_bytes() == theirs.read_bytes()
        # Another file by that name there: refused, unless "Replace" is ticked.
        local.write_bytes(os.urandom(1000))
        await _copy_form(pilot, app, "u", str(local), f"{remote_dir}/")
        await until(pilot, lambda: any("exists and differs" in m for m in notes()), 15, "refused")
        assert uploaded.stat().st_size != 1000
        await _copy_form(pilot, app, "u", str(local), f"{remote_dir}/", force=True)
        await until(pilot, lambda: uploaded.stat().st_size == 1000, 15, "replaced")
        assert uploaded.read_bytes() == local.read_bytes()


async def test_esc_stops_a_copy_and_keeps_its_part_file(tmp_path: Path, sshd: Any) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(8 * 1024 * 1024))  # 512 MiB: seconds to copy here
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    app = _app(tmp_path, sshd)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("1")
        await _copy_form(pilot, app, "u", str(big), f"{remote_dir}/")
        part = remote_dir / "big.bin.devtui-part"
        status = lambda: str(app._status_shown)  # noqa: E731
        await until(pilot, lambda: "% of 512M" in status(), 30, "progress on the top line")
        await until(pilot, lambda: part.exists() and part.stat().st_size > 0, 30, "bytes sent")
        await pilot.press("escape")
        await until(pilot, lambda: not app.jobs_in("copy"), 10, "the copy stopped")
        await pilot.pause(0.5)
        assert not (remote_dir / "big.bin").exists()  # never a half file under the name
        assert part.exists() and 0 < part.stat().st_size < big.stat().st_size
        head = part.read_bytes()
        with big.open("rb") as source:
            assert hashlib.sha256(source.read(len(head))).digest() == hashlib.sha256(head).digest()
