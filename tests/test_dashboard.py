"""The dashboard driven by keys (Textual's Pilot) against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import socket
from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home, sshd_host
from dashboard_util import cell_texts, make_app, ready, screen_text, shown, until
from harness.net import free_port, send_stream
from remote_program import ONE_AT_A_TIME
from textual.widgets import Input

import tui.app
from sshcore.events import HostLost, TunnelTraffic
from tui.panes.base import EmptyNote
from tui.screens.dialogs import (
    ConfirmScreen,
    HostKeyChangedScreen,
    HostKeyScreen,
    SecretScreen,
    TextScreen,
)
from tui.screens.forms import KeygenScreen, PasteScreen
from tui.screens.help import HelpScreen

TUTORIAL = (
    "ssh -p 37367 root@ssh.intern-ai.org.cn -CNg -L 7860:127.0.0.1:7860 -o StrictHostKeyChecking=no"
)


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


def _known(tmp_path: Path, sshd: Any) -> str:
    path = tmp_path / "known_hosts"
    sshd.write_known_hosts(path)
    return str(path)


def _tunnel(listen: int, target: int, host: str = "box", kind: str = "local") -> dict[str, Any]:
    return {
        "host": host,
        "kind": kind,
        "listen": f"127.0.0.1:{listen}",
        "target": f"127.0.0.1:{target}",
    }


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def port_checked(pilot: Any) -> None:
    """Let the tunnel form's check of the typed listen port (a worker) finish."""
    await pilot.pause()  # the Changed message: the check starts

    def done() -> bool:
        return not any(w.group == "port-check" and not w.is_finished for w in pilot.app.workers)

    await until(pilot, done, 10, "the port check")


def _palette_offers(app: Any, title: str) -> bool:
    """The command palette lists a match and its first highlighted one is `title`."""
    from textual.command import CommandList

    found = app.screen.query(CommandList)
    if not found:
        return False
    options = found.first()
    if options.option_count == 0:
        return False
    prompt = options.get_option_at_index(options.highlighted or 0).prompt
    return title in str(getattr(prompt, "plain", prompt))


def _count_records(app: Any, text: str) -> int:
    return sum(text in r.text for r in app.logs_pane.records)


# -- first run --------------------------------------------------------------------------------


async def test_empty_config_says_what_to_do_first(tmp_path: Path) -> None:
    app = make_app(tmp_path, {})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        note = str(app.hosts_pane.query_one(EmptyNote).render())
        assert "paste the ssh line" in note and "import ~/.ssh/config" in note
        assert "devtui demo" in note
        # The pane's keys work from the note: p opens the paste dialog.
        await pilot.press("p")
        assert isinstance(app.screen, PasteScreen)


async def test_paste_the_tutorial_line_saves_host_and_tunnel_with_safe_defaults(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, {})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("p")
        box = app.screen.query_one("#line", Input)
        box.value = "ssh -p 37367 root@ssh.intern-ai.org.cn -L 7860:nope:x"
        await pilot.pause()
        assert "cannot read that ssh command" in screen_text(app)
        assert "'-L 7860:nope:x'" in screen_text(app)  # names the token
        box.value = TUTORIAL
        await pilot.pause()
        preview = screen_text(app)
        assert "host ssh.intern-ai.org.cn" in preview or "host intern" in preview
        assert "7860" in preview and "note:" in preview
        await pilot.press("enter")
        await until(pilot, lambda: len(app.config.tunnels) == 1, 10, "the tunnel to be saved")
        host = next(iter(app.config.hosts.values()))
        assert (host.hostname, host.port, host.user) == ("ssh.intern-ai.org.cn", 37367, "root")
        tunnel = next(iter(app.config.tunnels.values()))
        assert str(tunnel.listen) == "127.0.0.1:7860"  # -g was not obeyed
        saved = (tmp_path / "config.toml").read_text()
        assert "ssh.intern-ai.org.cn" in saved and "7860" in saved
        await until(
            pilot,
            lambda: app.hosts_pane.table.row_count == 1 and app.tunnels_pane.table.row_count == 1,
            10,
            "one row in each pane",
        )
        logs = "\n".join(r.text for r in app.logs_pane.records)
        assert "-g" in logs and "StrictHostKeyChecking" in logs  # the safe-default notes
        # Pasting the same line again changes nothing.
        before = (tmp_path / "config.toml").read_text()
        await pilot.press("p")
        app.screen.query_one("#line", Input).value = TUTORIAL
        await pilot.pause()
        assert "Nothing new to save" in screen_text(app)
        await pilot.press("escape")
        assert (tmp_path / "config.toml").read_text() == before


# -- host keys and passwords ------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["n", "escape", "y"])
async def test_unknown_host_key_is_asked_and_only_y_trusts_it(
    tmp_path: Path, sshd: Any, answer: str
) -> None:
    known = tmp_path / "known_hosts"
    app = make_app(tmp_path, {"box": sshd_host(sshd)}, known_hosts=str(known))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await until(pilot, lambda: shown(app, HostKeyScreen), 10, "the host key modal")
        modal_text = screen_text(app)
        assert sshd.host_key_sha256() in modal_text and "box" in modal_text
        await pilot.press(answer)
        if answer == "y":
            await until(
                pilot, lambda: app.host_status("box").state.value == "connected", 10, "connect"
            )
            assert f"[127.0.0.1]:{sshd.port}" in known.read_text()
            row = cell_texts(app.hosts_pane.table, "box")
            assert row[1] == "connected"
        else:
            await until(
                pilot, lambda: app.host_status("box").state.value == "failed", 10, "refusal"
            )
            assert not known.exists() or str(sshd.port) not in known.read_text()
            await until(
                pilot,
                lambda: cell_texts(app.hosts_pane.table, "box")[1] == "failed",
                10,
                "the row to say failed",
            )


async def test_changed_host_key_is_refused_with_both_fingerprints(
    tmp_path: Path, sshd: Any
) -> None:
    known = Path(_known(tmp_path, sshd))
    old = sshd.host_key_sha256()
    sshd.regenerate_host_key()
    before = known.read_text()
    app = make_app(tmp_path, {"box": sshd_host(sshd)}, known_hosts=str(known))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await until(pilot, lambda: shown(app, HostKeyChangedScreen), 10, "the changed-key modal")
        modal_text = screen_text(app)
        assert old in modal_text and sshd.host_key_sha256() in modal_text
        # No key trusts it: y is not an answer here.
        await pilot.press("y")
        await pilot.press("enter")
        await until(pilot, lambda: app.host_status("box").state.value == "failed", 10, "refusal")
        assert known.read_text() == before


async def test_password_modal_names_the_host_and_logs_in(
    tmp_path: Path, sshd: Any, throwaway_user: Any
) -> None:
    host = {"hostname": "127.0.0.1", "port": sshd.port, "user": throwaway_user.name}
    app = make_app(tmp_path, {"box": host}, known_hosts=_known(tmp_path, sshd))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await until(pilot, lambda: shown(app, SecretScreen), 10, "the password modal")
        assert "box" in screen_text(app)
        secret = app.screen.query_one("#secret", Input)
        assert secret.password  # masked
        secret.value = throwaway_user.password
        await pilot.press("enter")
        await until(pilot, lambda: app.host_status("box").state.value == "connected", 15, "login")
        assert app.host_status("box").auth_method == "password"
        log = (tmp_path / "devtui.log").read_text()
        assert throwaway_user.password not in log


async def test_escape_at_the_password_modal_cancels_that_connect_only(
    tmp_path: Path, sshd: Any, throwaway_user: Any
) -> None:
    host = {"hostname": "127.0.0.1", "port": sshd.port, "user": throwaway_user.name}
    app = make_app(tmp_path, {"box": host}, known_hosts=_known(tmp_path, sshd))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await until(pilot, lambda: shown(app, SecretScreen), 10, "the password modal")
        await pilot.press("escape")
        await until(
            pilot,
            lambda: app.host_status("box").state.value in ("failed", "idle"),
            10,
            "the connect to give up",
        )
        assert app.is_running and not isinstance(app.screen, SecretScreen)


# -- tunnels ----------------------------------------------------------------------------------


async def test_space_starts_and_stops_one_tunnel_and_its_row_counts_bytes(
    tmp_path: Path, sshd: Any, sha256_sink: Any
) -> None:
    one, two = free_port(), free_port()
    tunnels = {"one": _tunnel(one, sha256_sink.port), "two": _tunnel(two, sha256_sink.port)}
    app = make_app(tmp_path, {"box": sshd_host(sshd)}, tunnels, known_hosts=_known(tmp_path, sshd))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("2")  # Tunnels
        await pilot.press("space")  # "one" (first row)
        await pilot.press("down", "space")  # "two"
        await until(
            pilot,
            lambda: all(
                (s := app.tunnel_status(n)) is not None and s.state.value == "up"
                for n in ("one", "two")
            ),
            15,
            "both tunnels up",
        )
        # 300 KiB one way through "one": its row shows them as Up, not Down.
        reader, writer = await asyncio.open_connection("127.0.0.1", one)
        await send_stream(reader, writer, 300 * 1024)
        await asyncio.to_thread(sha256_sink.wait_results, 1, 20)
        await until(
            pilot,
            lambda: cell_texts(app.tunnels_pane.table, "one")[4].startswith("300"),
            5,
            "the Up/Down cell to show 300K up",
        )
        assert cell_texts(app.tunnels_pane.table, "one")[4] == "300K/0"
        assert cell_texts(app.tunnels_pane.table, "two")[4] == ""
        # Stop "two" only: its port closes, "one" keeps its listener.
        await pilot.press("space")
        await until(pilot, lambda: not _listening(two), 10, "two's listener to close")
        assert _listening(one)
        assert app.tunnel_status("one").state.value == "up"
        await until(
            pilot,
            lambda: cell_texts(app.tunnels_pane.table, "two")[2] == "stopped",
            5,
            "two's row to say stopped",
        )


async def test_busy_local_port_is_named_in_the_form_before_anything_is_saved(
    tmp_path: Path,
) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    busy = holder.getsockname()[1]
    try:
        app = make_app(tmp_path, {"box": {"hostname": "example.org"}})
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            before = (tmp_path / "config.toml").read_text()
            await pilot.press("2", "n")
            app.screen.query_one("#spec", Input).value = f"{busy}:127.0.0.1:80"
            await until(
                pilot, lambda: "already in use" in screen_text(app), 5, "the busy-port message"
            )
            text = screen_text(app)
            assert "python" in text and "ctrl+n uses" in text  # who holds it, and a way out
            await pilot.press("enter")  # refused: nothing saved
            assert (tmp_path / "config.toml").read_text() == before
            await pilot.press("ctrl+n")
            spec = app.screen.query_one("#spec", Input).value
            assert not spec.startswith(f"{busy}:")
            await until(pilot, lambda: "already in use" not in screen_text(app), 5, "re-check")
            await pilot.press("enter")
            await until(pilot, lambda: len(app.config.tunnels) == 1, 10, "the tunnel saved")
            assert next(iter(app.config.tunnels.values())).listen.port != busy
    finally:
        holder.close()


async def test_quit_asks_when_tunnels_run_and_y_stops_them(
    tmp_path: Path, sshd: Any, echo_server: Any
) -> None:
    port = free_port()
    app = make_app(
        tmp_path,
        {"box": sshd_host(sshd)},
        {"web": _tunnel(port, echo_server.port) | {"autostart": True}},
        known_hosts=_known(tmp_path, sshd),
        autostart=True,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: _listening(port), 10, "the autostart tunnel")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        assert "web" in screen_text(app)
        await pilot.press("n")
        assert app.is_running and _listening(port)
        await pilot.press("q", "y")
        await until(pilot, lambda: not app.is_running, 10, "the app to exit")
    assert app.return_code == 0
    assert not _listening(port)


async def test_open_over_ssh_copies_the_url_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sshd: Any, echo_server: Any
) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "127.0.0.1 50000 127.0.0.1 22")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    app = make_app(
        tmp_path,
        {"box": sshd_host(sshd)},
        {"web": _tunnel(port, echo_server.port)},
        known_hosts=_known(tmp_path, sshd),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        opened: list[str] = []
        app.open_url = lambda url, **_: opened.append(url)  # type: ignore[method-assign]
        await pilot.press("2", "o")  # stopped: its port may be anyone's, so not opened
        assert opened == [] and app.clipboard == ""
        assert any("not opened" in n.message for n in app._notifications)
        await pilot.press("space")
        await until(pilot, lambda: _listening(port), 10, "the tunnel")
        await until(
            pilot, lambda: app.tunnel_status("web").state.value == "up", 10, "the tunnel up"
        )
        await pilot.press("o")
        assert opened == []  # no browser on this side of the SSH session
        assert app.clipboard == url
        monkeypatch.delenv("SSH_CONNECTION")
        monkeypatch.delenv("SSH_TTY", raising=False)
        # A Linux box with no display: Python would start a text browser in our terminal.
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        await pilot.press("o")
        assert opened == []
        monkeypatch.setenv("DISPLAY", ":0")
        await pilot.press("o")
        assert opened == [url]


async def test_o_on_a_tunnel_whose_port_another_program_holds_opens_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sshd: Any, echo_server: Any
) -> None:
    """The tunnel failed to listen: the program that holds its port would get the browser."""
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.delenv("SSH_TTY", raising=False)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    app = make_app(
        tmp_path,
        {"box": sshd_host(sshd)},
        {"web": _tunnel(port, echo_server.port)},
        known_hosts=_known(tmp_path, sshd),
    )
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            opened: list[str] = []
            app.open_url = lambda url, **_: opened.append(url)  # type: ignore[method-assign]
            await pilot.press("2", "space")
            await until(
                pilot,
                lambda: (s := app.tunnel_status("web")) is not None and s.state.value == "failed",
                10,
                "the tunnel to fail to listen",
            )
            await pilot.press("o")
            await pilot.pause()
            assert opened == []
            assert any("not opened" in n.message for n in app._notifications)
    finally:
        squatter.close()


def test_where_a_graphical_browser_can_open() -> None:
    from tui.format import no_browser_here

    assert no_browser_here({}, "win32") is None
    assert no_browser_here({}, "darwin") is None
    assert no_browser_here({"DISPLAY": ":0"}, "linux") is None
    assert no_browser_here({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert no_browser_here({}, "linux") == "no graphical display here"
    assert "SSH" in (no_browser_here({"SSH_TTY": "/dev/pts/1"}, "win32") or "")


# -- keys -------------------------------------------------------------------------------------


async def test_generate_a_key_then_copy_it_as_osc52(tmp_path: Path, home: Path) -> None:
    app = make_app(tmp_path, {})
    async with app.run_test(size=(160, 50)) as pilot:
        await ready(pilot)
        written: list[str] = []
        driver = app._driver
        assert driver is not None
        original = driver.write
        driver.write = lambda data: (written.append(data), original(data))  # type: ignore[method-assign]
        await pilot.press("3", "g")
        assert isinstance(app.screen, KeygenScreen)
        app.screen.query_one("#pass1", Input).value = "correct horse"
        app.screen.query_one("#pass2", Input).value = "correct horse"
        await pilot.press("enter")
        key = home / ".ssh" / "id_ed25519"
        await until(pilot, key.exists, 10, "the key file")
        assert key.stat().st_mode & 0o077 == 0  # owner-only
        await until(
            pilot, lambda: app.keys_pane.table.row_count == 1, 10, "the key in the Keys pane"
        )
        assert "passphrase" in cell_texts(app.keys_pane.table, str(key))[2]
        await pilot.press("y")
        public = (home / ".ssh" / "id_ed25519.pub").read_text().strip()
        payload = base64.b64encode(public.encode()).decode()
        assert f"\x1b]52;c;{payload}\a" in "".join(written)


async def test_install_a_key_with_the_password_modal_then_key_login_is_verified(
    tmp_path: Path, sshd_factory: Any, throwaway_user: Any, home: Path
) -> None:
    sshd = sshd_factory(["AuthorizedKeysFile .ssh/authorized_keys", "StrictModes yes"])
    from sshcore import keys

    info = keys.generate_key()
    host = {"hostname": "127.0.0.1", "port": sshd.port, "user": throwaway_user.name}
    app = make_app(tmp_path, {"box": host}, known_hosts=_known(tmp_path, sshd))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.keys_pane.table.row_count == 1, 10, "the key listed")
        await pilot.press("3", "u")
        await pilot.press("enter")  # the only host
        await until(pilot, lambda: shown(app, SecretScreen), 10, "the password modal")
        app.screen.query_one("#secret", Input).value = throwaway_user.password
        await pilot.press("enter")
        await until(
            pilot,
            lambda: any("key-only login verified" in r.text for r in app.logs_pane.records),
            20,
            "the install to be verified",
        )
    authorized = (throwaway_user.home / ".ssh" / "authorized_keys").read_text()
    assert info.public_line in authorized


async def test_show_key_has_the_public_line_and_copies_it(tmp_path: Path, home: Path) -> None:
    from sshcore import keys

    info = keys.generate_key()
    app = make_app(tmp_path, {})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.keys_pane.table.row_count == 1, 10, "the key listed")
        await pilot.press("3", "s")
        assert isinstance(app.screen, TextScreen)
        assert info.public_line and info.public_line in screen_text(app)
        await pilot.press("y")
        assert app.clipboard == info.public_line


# -- logs -------------------------------------------------------------------------------------


async def test_logs_filter_follow_and_a_burst_stays_bounded(tmp_path: Path) -> None:
    app = make_app(tmp_path, {})
    async with app.run_test(size=(80, 24)) as pilot:
        core = (await ready(pilot)).core
        assert core is not None
        for i in range(20_000):
            core.bus.publish(HostLost("alpha" if i % 2 else "beta", f"cut {i}"))
            core.bus.publish(TunnelTraffic("t", 1, i, i))  # counters never become log lines
        view = app.logs_pane.log_view
        await until(
            pilot,
            lambda: bool(view.lines) and "cut 19999" in str(view.lines[-1].text),
            10,
            "the burst drawn",
        )
        assert len(view.lines) <= 1000  # bounded view
        assert "cut 19999" in str(view.lines[-1].text)
        assert not any("TunnelTraffic" in r.text or "B up" in r.text for r in app.logs_pane.records)
        # Filter
        await pilot.press("4", "slash")
        app.logs_pane.query_one(".filter", Input).value = "beta"
        await until(
            pilot,
            lambda: bool(view.lines) and all("beta" in str(line.text) for line in view.lines),
            10,
            "only beta lines",
        )
        await pilot.press("escape")
        await until(
            pilot, lambda: any("alpha" in str(line.text) for line in view.lines), 10, "alpha back"
        )
        # Scrolling up pauses follow and counts what waits; f follows again.
        await pilot.press("up")
        assert not app.logs_pane.follow
        core.bus.publish(HostLost("gamma", "later"))
        core.bus.publish(HostLost("gamma", "later"))
        await until(
            pilot, lambda: "2 new" in str(app.logs_pane.border_subtitle), 10, "2 new counted"
        )
        await pilot.press("f")
        assert app.logs_pane.follow
        await pilot.press("ctrl+l")
        assert len(view.lines) == 0


# -- robustness -------------------------------------------------------------------------------


@pytest.mark.guarded_crash_expected
async def test_an_unexpected_exception_is_one_line_and_the_app_stays_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.actions.host_actions import HostActions

    def broken(self: HostActions, name: str) -> None:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(HostActions, "test_host", broken)
    app = make_app(tmp_path, {"box": {"hostname": "example.org"}})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("t")
        await until(
            pilot,
            lambda: any(
                "unexpected error" in r.text and "planted bug" in r.text
                for r in app.logs_pane.records
            ),
            10,
            "the error logged",
        )
        assert app.is_running
        await pilot.press("e")  # still answering keys
        assert app.screen.__class__.__name__ == "HostFormScreen"
    assert app.return_code in (None, 0)
    app.core = None
    log = (tmp_path / "devtui.log").read_text()
    assert "Traceback" in log and "RuntimeError: planted bug" in log


async def test_help_lists_every_key(tmp_path: Path) -> None:
    from tui.panes import HostsPane, KeysPane, LogsPane, TunnelsPane

    app = make_app(tmp_path, {})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for pane in (HostsPane, TunnelsPane, KeysPane, LogsPane):
            for binding in pane.BINDINGS:
                assert binding.description in text, binding
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_palette_runs_an_action_by_name(tmp_path: Path, echo_server: Any, sshd: Any) -> None:
    port = free_port()
    app = make_app(
        tmp_path,
        {"box": sshd_host(sshd)},
        {"gradio": _tunnel(port, echo_server.port)},
        known_hosts=_known(tmp_path, sshd),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Tunnels: start gradio" in titles and "Hosts: connect box" in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"start gradio")
        await until(pilot, lambda: _palette_offers(app, "start gradio"), 10, "the palette's match")
        await pilot.press("enter")
        await until(pilot, lambda: _listening(port), 10, "gradio started from the palette")


async def test_tunnel_bytes_reach_the_log_and_the_sink_one_way(
    tmp_path: Path, sshd: Any, sha256_sink: Any
) -> None:
    """Down stays 0 when only the client sends: the row does not swap directions."""
    port = free_port()
    app = make_app(
        tmp_path,
        {"box": sshd_host(sshd)},
        {"up": _tunnel(port, sha256_sink.port)},
        known_hosts=_known(tmp_path, sshd),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("2", "space")
        await until(pilot, lambda: _listening(port), 10, "the tunnel")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await send_stream(reader, writer, 64 * 1024)
        await asyncio.to_thread(sha256_sink.wait_results, 1, 20)
        await until(
            pilot,
            lambda: cell_texts(app.tunnels_pane.table, "up")[3] == "64K",
            5,
            "Up to show 64K in the compact layout",
        )
        assert cell_texts(app.tunnels_pane.table, "up")[4] == ""  # nothing came down


async def test_config_edited_on_disk_is_reloaded_and_a_broken_edit_keeps_the_last_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tui.app, "CONFIG_POLL", 0.2)  # the looks, not the waiting between them
    app = make_app(tmp_path, {"box": {"hostname": "example.org"}})
    path = tmp_path / "config.toml"
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        good = path.read_text()
        path.write_text(good + '\n[hosts.web]\nhostname = "web.example.org"\n')
        await until(pilot, lambda: app.hosts_pane.table.row_count == 2, 10, "the new host shown")
        broken = path.read_text() + "\n[hosts.bad]\nport = 'x\n"
        path.write_text(broken)
        await until(
            pilot,
            lambda: any("not reloaded" in r.text for r in app.logs_pane.records),
            10,
            "the reload error",
        )
        message = next(r.text for r in app.logs_pane.records if "not reloaded" in r.text)
        assert f"{path}:" in message  # names the file and line
        assert app.hosts_pane.table.row_count == 2  # the last good state stays
        assert sorted(app.config.hosts) == ["box", "web"]
        assert path.read_text() == broken  # nothing the user wrote is overwritten


async def test_a_theme_picked_is_saved_in_the_config(tmp_path: Path) -> None:
    app = make_app(tmp_path, {})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.theme = "nord"
        await until(
            pilot, lambda: 'theme = "nord"' in (tmp_path / "config.toml").read_text(), 10, "save"
        )
    # The next start uses it.
    from sshcore.config import Config
    from tui.app import DevTuiApp

    config = Config.load(tmp_path / "config.toml")
    assert config.settings.theme == "nord"
    from sshcore.core import Core

    again = DevTuiApp(config, lambda prompts: Core(config, prompts, log_file=False))
    async with again.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert again.theme == "nord"


# -- the other keys ---------------------------------------------------------------------------


async def test_a_slow_connect_shows_progress_and_esc_cancels_it(
    tmp_path: Path, sshd: Any, tcp_proxy: Any
) -> None:
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    proxy.blackhole()  # the handshake never answers
    host = sshd_host(sshd) | {"port": proxy.port}
    app = make_app(tmp_path, {"box": host}, known_hosts=_known(tmp_path, sshd), connect_timeout=30)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await pilot.pause(1.2)  # slow: progress is still shown a second into the attempt
        status = str(app.query_one("#status").render())
        assert "connecting box" in status and "esc cancels" in status
        assert cell_texts(app.hosts_pane.table, "box")[1] == "connecting"
        await pilot.press("escape")
        await until(
            pilot,
            lambda: app.host_status("box").state.value == "idle",
            5,
            "the connect to be cancelled",
        )
        assert "connecting" not in str(app.query_one("#status").render())


async def test_t_tests_a_host(tmp_path: Path, sshd: Any) -> None:
    app = make_app(tmp_path, {"box": sshd_host(sshd)}, known_hosts=_known(tmp_path, sshd))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("t")
        await until(
            pilot,
            lambda: any("round trip" in r.text for r in app.logs_pane.records),
            15,
            "the test result",
        )
        line = next(r.text for r in app.logs_pane.records if "round trip" in r.text)
        assert "box: OK" in line and "publickey" in line and "OpenSSH" in line
        assert "rtt" in app.hosts_pane.state_cells("box")[1]  # the row's detail (clipped at 40)


async def test_add_and_edit_a_host_validated_as_you_type(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"box": {"hostname": "example.org"}})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("a")
        form = app.screen
        form.query_one("#name", Input).value = "gpu"
        form.query_one("#hostname", Input).value = "bad host"
        form.query_one("#port", Input).value = "70000"
        await pilot.pause()
        text = screen_text(app)
        assert "Hostname is not a host name" in text and "Port must be a number" in text
        await pilot.press("ctrl+s")  # refused while invalid
        assert app.screen is form and "gpu" not in app.config.hosts
        form.query_one("#hostname", Input).value = "gpu.example.org"
        form.query_one("#port", Input).value = "2222"
        form.query_one("#user", Input).value = "alice"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "gpu" in app.config.hosts, 10, "the host saved")
        assert app.config.hosts["gpu"].destination == "alice@gpu.example.org:2222"
        # Edit: the name stays, the port changes.
        await until(pilot, lambda: app.hosts_pane.table.row_count == 2, 10, "the new row")
        app.hosts_pane.table.move_cursor(row=1)
        await pilot.press("e")
        assert app.screen.query_one("#name", Input).disabled
        app.screen.query_one("#port", Input).value = "2200"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.hosts["gpu"].port == 2200, 10, "the edit saved")
        assert "port = 2200" in (tmp_path / "config.toml").read_text()


async def test_delete_a_host_names_its_tunnels_and_asks(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        {"box": {"hostname": "example.org"}},
        {"web": _tunnel(7860, 7860), "db": _tunnel(5432, 5432)},
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        assert "web, db" in screen_text(app)
        await pilot.press("n")
        assert "box" in app.config.hosts
        await pilot.press("d", "y")
        await until(pilot, lambda: not app.config.hosts, 10, "the host deleted")
        assert not app.config.tunnels
        assert "example.org" not in (tmp_path / "config.toml").read_text()


async def test_import_and_export_ssh_config(tmp_path: Path, home: Path) -> None:
    (home / ".ssh" / "config").write_text(
        "Host gpu\n  HostName gpu.example.org\n  User alice\n  Port 2222\n"
        "  LocalForward 8888 127.0.0.1:8888\n"
    )
    app = make_app(tmp_path, {"box": {"hostname": "box.example.org", "user": "bob"}})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("i")
        await until(pilot, lambda: "gpu" in app.config.hosts, 10, "the import")
        assert app.config.hosts["gpu"].destination == "alice@gpu.example.org:2222"
        assert len(app.config.tunnels) == 1
        await until(pilot, lambda: app.hosts_pane.table.row_count == 2, 10, "the imported row")
        app.hosts_pane.table.move_cursor(row=0)  # box
        await pilot.press("x")
        await until(
            pilot,
            lambda: "Host box" in (home / ".ssh" / "config").read_text(),
            10,
            "the export",
        )
        exported = (home / ".ssh" / "config").read_text()
        assert "HostName box.example.org" in exported and "User bob" in exported
        assert exported.startswith("Host gpu")  # what was there stays


async def test_new_edit_restart_copy_and_delete_a_tunnel(
    tmp_path: Path, sshd: Any, echo_server: Any
) -> None:
    port = free_port()
    app = make_app(tmp_path, {"box": sshd_host(sshd)}, known_hosts=_known(tmp_path, sshd))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("2", "n")
        app.screen.query_one("#spec", Input).value = f"{port}:127.0.0.1:{echo_server.port}"
        await port_checked(pilot)
        await pilot.press("enter")
        name = f"box-{port}"
        await until(pilot, lambda: name in app.config.tunnels, 10, "the new tunnel")
        await until(
            pilot,
            lambda: (
                name in [str(k.value) for k in app.tunnels_pane.table.rows]
                and app.tunnels_pane.table.cursor_row == _row_index(app.tunnels_pane, name)
            ),
            10,
            "the new row under the cursor",
        )
        await pilot.press("space")
        await until(pilot, lambda: _listening(port), 10, "the tunnel listening")
        await pilot.press("y")
        assert app.clipboard == f"http://127.0.0.1:{port}/"
        # Edit the target while it runs: it restarts with the change.
        await pilot.press("e")
        app.screen.query_one("#spec", Input).value = f"{port}:localhost:{echo_server.port}"
        await port_checked(pilot)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: str(app.config.tunnels[name].target) == f"localhost:{echo_server.port}",
            10,
            "the edit",
        )
        await until(pilot, lambda: _listening(port), 10, "the tunnel back")
        ups = _count_records(app, f"tunnel {name}: up")
        await pilot.press("r")
        await until(
            pilot,
            lambda: _count_records(app, f"tunnel {name}: up") > ups and _listening(port),
            10,
            "the restart",
        )
        await pilot.press("d", "y")
        await until(pilot, lambda: name not in app.config.tunnels, 10, "the delete")
        await until(pilot, lambda: not _listening(port), 10, "the listener closed")


async def test_fix_permissions_of_a_loose_key(tmp_path: Path, home: Path) -> None:
    from sshcore import keys

    info = keys.generate_key()
    info.path.chmod(0o644)
    app = make_app(tmp_path, {})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.keys_pane.table.row_count == 1, 10, "the key listed")
        assert cell_texts(app.keys_pane.table, str(info.path))[2] == "problem"
        await pilot.press("3")
        assert "loose permissions" in str(app.keys_pane.border_subtitle)
        await pilot.press("f")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: info.path.stat().st_mode & 0o077 == 0, 10, "chmod 600")
        await until(
            pilot,
            lambda: cell_texts(app.keys_pane.table, str(info.path))[2] == "ok",
            10,
            "the row to be clean",
        )


async def test_shift_t_tests_every_host_failures_first(tmp_path: Path, sshd: Any) -> None:
    hosts = {"a": sshd_host(sshd), "b": sshd_host(sshd)}
    hosts["gone"] = {"hostname": "127.0.0.1", "port": free_port(), "user": sshd.user}
    app = make_app(tmp_path, hosts, known_hosts=_known(tmp_path, sshd))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("T")
        await until(
            pilot,
            lambda: shown(app, TextScreen) and "failed" in screen_text(app),
            20,
            "the results",
        )
        text = screen_text(app)
        assert "2 OK, 1 failed" in text
        assert text.index("FAIL  gone") < text.index("ok    a")
        assert "rtt" in app.hosts_pane.state_cells("a")[1]


# -- offers of new remote ports (issue 8) ------------------------------------------------------


def _row_index(pane: Any, key: str) -> int:
    return [str(k.value) for k in pane.table.rows].index(key)


@ONE_AT_A_TIME
async def test_a_new_remote_port_is_offered_and_f_forwards_it_then_s_saves_it(
    tmp_path: Path, sshd: Any
) -> None:
    from remote_program import RemoteProgram, echo

    app = make_app(
        tmp_path,
        {"box": sshd_host(sshd)},
        known_hosts=_known(tmp_path, sshd),
        discover_interval=0.2,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        await until(pilot, lambda: app.host_status("box").state.value == "connected", 15, "connect")
        core = app.core
        assert core is not None
        await until(pilot, lambda: bool(core.discovered_ports("box")), 10, "the first look")
        with RemoteProgram("gradio") as program:
            key = f"offer:box:{program.port}"
            tunnels = app.tunnels_pane
            await until(
                pilot,
                lambda: key in [str(k.value) for k in tunnels.table.rows],
                10,
                "the offer row",
            )
            assert any(
                f"{program.port} is listening on box (gradio)" in r.text
                for r in app.logs_pane.records
            )
            await pilot.press("2")
            tunnels.table.move_cursor(row=_row_index(tunnels, key))
            await pilot.pause()
            assert "f forwards it" in str(tunnels.border_subtitle)
            await pilot.press("f")
            name = f"box-{program.port}"
            await until(pilot, lambda: name in app.tunnel_specs(), 10, "the forward")
            spec = app.tunnel_specs()[name]
            await until(pilot, lambda: _listening(spec.listen.port), 10, "its listener")
            assert await asyncio.to_thread(echo, spec.listen.port, b"ping") == b"ping"
            await until(
                pilot,
                lambda: name in [str(k.value) for k in tunnels.table.rows],
                10,
                "the forward's row",
            )
            assert cell_texts(tunnels.table, name)[0] == f"{name}*"  # marked until saved
            assert key not in [str(k.value) for k in tunnels.table.rows]  # no longer offered
            tunnels.table.move_cursor(row=_row_index(tunnels, name))
            await pilot.press("s")
            await until(
                pilot, lambda: name in (tmp_path / "config.toml").read_text(), 10, "the save"
            )
            await until(
                pilot, lambda: cell_texts(tunnels.table, name)[0] == name, 10, "the mark gone"
            )
            program.stop()
            await until(
                pilot,
                lambda: cell_texts(tunnels.table, name)[2] == "remote closed",
                10,
                "remote closed",
            )


@ONE_AT_A_TIME
async def test_a_moved_app_is_shown_and_capital_r_retargets_it(tmp_path: Path, sshd: Any) -> None:
    from remote_program import RemoteProgram, echo, free_neighbour_ports

    first, second = free_neighbour_ports()
    local = free_port()
    program = RemoteProgram("gradio", port=first)
    try:
        app = make_app(
            tmp_path,
            {"box": sshd_host(sshd)},
            {"gradio": _tunnel(local, first)},
            known_hosts=_known(tmp_path, sshd),
            discover_interval=0.2,
        )
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("2", "space")
            await until(pilot, lambda: _listening(local), 10, "the tunnel")
            assert await asyncio.to_thread(echo, local, b"v1") == b"v1"
            core = app.core
            assert core is not None
            await until(pilot, lambda: bool(core.discovered_ports("box")), 10, "the first look")
            program.stop()
            program = RemoteProgram("gradio", port=second)  # restarted, on the next port
            assert await asyncio.to_thread(echo, local, b"v2") == b""  # refused
            await until(
                pilot,
                lambda: cell_texts(app.tunnels_pane.table, "gradio")[1] == f"moved to {second}?",
                20,
                "the moved hint in the row",
            )
            # The cursor never left the row: the footer offers R all the same.
            await until(
                pilot,
                lambda: "R" in app.active_bindings,
                5,
                "R in the footer",
            )
            await pilot.press("R")
            await until(
                pilot,
                lambda: app.config.tunnels["gradio"].target.port == second,
                10,
                "the retarget saved",
            )
            await until(
                pilot,
                lambda: cell_texts(app.tunnels_pane.table, "gradio")[1] == "up",
                10,
                "the row up again",
            )
            assert await asyncio.to_thread(echo, local, b"v2") == b"v2"
    finally:
        program.stop()


# -- remote logs (issue 8) -------------------------------------------------------------------


async def test_a_remote_log_is_added_followed_in_its_own_tab_and_saved(
    tmp_path: Path, sshd: Any
) -> None:
    log = tmp_path / "app.log"
    log.write_text("first line\nsecond line\n")
    app = make_app(tmp_path, {"box": sshd_host(sshd)}, known_hosts=_known(tmp_path, sshd))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("4", "a")
        form = app.screen
        form.query_one("#source", Input).value = "relative/path.log"
        await pilot.pause()
        assert "absolute path" in screen_text(app)
        form.query_one("#source", Input).value = str(log)
        await pilot.press("ctrl+s")
        key = f"box:{log}"
        logs = app.logs_pane
        await until(pilot, lambda: logs.source == key, 10, "the new tab shown")
        view = logs.log_view
        await until(
            pilot, lambda: any("second line" in str(x.text) for x in view.lines), 15, "the lines"
        )
        with log.open("a") as f:
            f.write("third line\n")
        await until(
            pilot, lambda: any("third line" in str(x.text) for x in view.lines), 15, "a new line"
        )
        assert str(log) in (tmp_path / "config.toml").read_text()  # saved with the host
        # `]` goes back to the events; the file's lines are not there.
        await pilot.press("right_square_bracket")
        assert logs.source == "events"
        await until(
            pilot,
            lambda: not any("third line" in str(x.text) for x in view.lines),
            10,
            "the file's lines gone from the view",
        )


async def test_a_running_tunnel_follows_a_hand_edit(
    tmp_path: Path, sshd: Any, echo_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tui.app, "CONFIG_POLL", 0.2)  # the looks, not the waiting between them
    one, two, moved = free_port(), free_port(), free_port()
    tunnels = {"one": _tunnel(one, echo_server.port), "two": _tunnel(two, echo_server.port)}
    app = make_app(tmp_path, {"box": sshd_host(sshd)}, tunnels, known_hosts=_known(tmp_path, sshd))
    path = tmp_path / "config.toml"
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("2", "space", "down", "space")
        await until(pilot, lambda: _listening(one) and _listening(two), 15, "both tunnels")
        text = path.read_text()
        start = text.index("[tunnels.two]")
        # "one" moves to another local port; "two" is deleted by hand.
        edited = text[:start].replace(f"127.0.0.1:{one}", f"127.0.0.1:{moved}")
        path.write_text(edited)
        await until(pilot, lambda: not _listening(two), 10, "two stopped")
        await until(pilot, lambda: _listening(moved) and not _listening(one), 10, "one moved")
        assert app.tunnel_status("one").state.value == "up"
        assert path.read_text() == edited  # the hand edit is left as written


async def test_editing_a_host_keeps_what_the_form_does_not_show(tmp_path: Path) -> None:
    host = {
        "hostname": "gpu.example.org",
        "identity_files": ["~/.ssh/id_a", "~/.ssh/id_b"],
        "log_sources": ["/var/log/app.log"],
        "connect_timeout": 7,
        "auto_forward": "never",
    }
    app = make_app(tmp_path, {"gpu": host})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("e")
        app.screen.query_one("#port", Input).value = "2222"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.hosts["gpu"].port == 2222, 10, "the edit saved")
    spec = app.config.hosts["gpu"]
    assert spec.identity_files == ("~/.ssh/id_a", "~/.ssh/id_b")
    assert spec.log_sources == ("/var/log/app.log",)
    assert (spec.connect_timeout, spec.auto_forward) == (7, "never")


async def test_slash_filters_the_hosts_and_esc_clears_it(tmp_path: Path) -> None:
    hosts = {n: {"hostname": f"{n}.example.org"} for n in ("alpha", "beta", "gamma")}
    app = make_app(tmp_path, hosts)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("slash")
        await pilot.pause()
        assert app.focused is not None and "filter" in app.focused.classes
        await pilot.press("b", "e")
        await pilot.pause()
        assert [str(k.value) for k in app.hosts_pane.table.rows] == ["beta"]
        await pilot.press("escape")
        await pilot.pause()
        assert app.hosts_pane.table.row_count == 3
        assert app.focused is app.hosts_pane.table


async def test_the_footer_follows_a_state_change_under_a_still_cursor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: the tunnel under the cursor learns its app moved (an event, not a cursor
    move): R must be in the footer and work at once, not after the cursor moved away and
    back. The "moved" state is set by hand here; the event path is the real one."""
    app = make_app(tmp_path, {"box": {"hostname": "10.0.0.1"}}, {"gradio": _tunnel(17860, 7860)})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("2")
        await pilot.pause()
        assert "R" not in app.active_bindings  # nothing moved: no R in the footer
        retargeted: list[tuple[str, int]] = []
        monkeypatch.setattr(app, "moved_target", lambda name: 7861)
        monkeypatch.setattr(
            app.tunnel_actions, "retarget", lambda name: retargeted.append((name, 7861))
        )
        app.tunnels_pane.refresh_rows(only={"gradio"})  # what a flush of its events does
        await pilot.pause()
        assert "R" in app.active_bindings and app.active_bindings["R"].enabled
        await pilot.press("R")
        await pilot.pause()
        assert retargeted == [("gradio", 7861)]


async def test_a_palette_command_from_the_registry_runs_as_its_key(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"box": {"hostname": "10.0.0.1"}})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"paste an ssh")
        await until(
            pilot, lambda: _palette_offers(app, "Hosts: paste an ssh line"), 10, "the match"
        )
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PasteScreen), 10, "the paste form")


async def test_a_dead_target_shows_down_since_before_anyone_clicks(
    tmp_path: Path, sshd: Any
) -> None:
    import time

    local, dead = free_port(), free_port()
    app = make_app(
        tmp_path,
        {"box": sshd_host(sshd)},
        {"web": _tunnel(local, dead)},
        known_hosts=_known(tmp_path, sshd),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("2", "space")
        # Nobody opened the link: the tunnel's own probe found nothing listening.
        await until(
            pilot,
            lambda: cell_texts(app.tunnels_pane.table, "web")[1].startswith("down since "),
            15,
            "'down since' in the row",
        )
        since = cell_texts(app.tunnels_pane.table, "web")[1].removeprefix("down since ")
        now = time.time()
        assert since in {time.strftime("%H:%M", time.localtime(now - d)) for d in (0, 60)}
        # The subtitle follows on the pane's next refresh (not always the row's).
        await until(
            pilot,
            lambda: str(app.tunnels_pane.border_subtitle).startswith(
                f"target down since {since}: nothing answer"  # clipped at 80
            ),
            5,
            "the subtitle",
        )
