"""The Hosts table after a save or a reload: the row under the cursor stays, and so does the
view (the table is no longer cleared and refilled, which scrolled it back to the top)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from dashboard_util import cell_texts, make_app, ready, type_text, until

import tui.app
from sshcore import ops


def row_keys(app: object) -> list[str]:
    table = app.hosts_pane.table  # type: ignore[attr-defined]
    return [str(k.value) for k in table.rows]


def test_a_save_and_a_hand_edit_keep_the_cursor_and_the_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tui.app, "CONFIG_POLL", 0.2)  # the reload, not the wait for a look
    hosts = {f"host-{i:02d}": {"hostname": f"10.0.0.{i + 1}"} for i in range(60)}
    app = make_app(tmp_path, hosts)

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("1")
            table = app.hosts_pane.table
            table.move_cursor(row=40)
            await pilot.pause()
            # The user scrolled so that the selected row is near the top of the pane.
            table.scroll_to(y=39, animate=False, immediate=True)
            await pilot.pause()
            scrolled = table.scroll_y
            assert scrolled == 39
            assert app.hosts_pane.selected_key() == "host-40"

            # A save from the app (what `p` does after its modal): one row more, at the end.
            outcome = await asyncio.to_thread(ops.add_from_line, app.config, "ssh dev@10.9.9.9")
            app.note_saved()
            app.refresh_panes(full=True)
            await pilot.pause()
            keys = row_keys(app)
            assert keys[-1] == outcome.host and len(keys) == 61
            assert app.hosts_pane.selected_key() == "host-40"
            assert table.scroll_y == scrolled

            # A hand edit removes a host above the cursor: the reload drops that row only.
            text = app.config.path.read_text()
            start = text.index("[hosts.host-05]")
            end = text.index("[hosts.host-06]")
            app.config.path.write_text(text[:start] + text[end:])
            await until(pilot, lambda: "host-05" not in row_keys(app), 10, "the reload")
            keys = row_keys(app)
            assert keys == [k for k in hosts if k != "host-05"] + [outcome.host]
            assert app.hosts_pane.selected_key() == "host-40"
            assert scrolled - 1 <= table.scroll_y <= scrolled  # no jump; a row less above

            # A filter narrows the table and clearing it brings every row back, in order.
            await pilot.press("slash")
            await type_text(pilot, "host-41")
            await until(pilot, lambda: row_keys(app) == ["host-41"], 5, "the filter")
            await pilot.press("escape")
            await until(pilot, lambda: len(row_keys(app)) == 60, 5, "the filter cleared")
            assert row_keys(app) == keys

    asyncio.run(run())


def test_a_save_and_a_reload_are_said_on_the_top_line_and_notes_still_pop_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain success is a passing word on the top line (a notification re-lays-out the
    screen, which held keys ~100 ms with 500 hosts); a save with notes still notifies."""
    monkeypatch.setattr(tui.app, "CONFIG_POLL", 0.2)
    app = make_app(tmp_path, {"a": {"hostname": "10.0.0.1"}})

    def top() -> str:
        return str(app.query_one(tui.app.StatusBar).render())

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await app.host_actions._add_line("ssh dev@10.9.9.8")  # what `p`, Enter does
            await pilot.pause()
            assert "✓ Added host" in top()
            assert not list(app._notifications)
            text = app.config.path.read_text()
            app.config.path.write_text(text + '\n[hosts.hand]\nhostname = "10.0.0.9"\n')
            await until(pilot, lambda: "reloaded" in top(), 10, "the reload said on top")
            assert not list(app._notifications)
            await app.host_actions._add_line("ssh -A dev@10.9.9.7")  # agent forwarding: a note
            await pilot.pause()
            said = [n.message for n in app._notifications]
            assert any("agent" in m for m in said), said

    asyncio.run(run())


def test_work_that_ends_while_the_app_quits_touches_nothing(tmp_path: Path) -> None:
    """A job (a tunnel stopped, a save) that ends as the app quits calls back into the panes
    after they are gone: that was a NoMatches traceback at exit, now nothing."""
    app = make_app(tmp_path, {"a": {"hostname": "10.0.0.1"}})

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
        assert not app.is_running
        app.refresh_panes(full=True)
        app.show_status()
        app.log_line("info", "a job ended")
        app._flush_events()
        app._tick()

    asyncio.run(run())


def test_an_exposed_tunnel_s_subtitle_starts_with_its_warning(tmp_path: Path) -> None:
    """At 80 columns the subtitle is clipped at its end: the warning comes first."""
    app = make_app(
        tmp_path,
        {"box": {"hostname": "10.0.0.1"}},
        {
            "share": {
                "host": "box",
                "kind": "remote",
                "listen": "0.0.0.0:48080",
                "target": "127.0.0.1:80",
            }
        },
    )

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("2")
            await until(
                pilot,
                lambda: str(app.tunnels_pane._border_subtitle).startswith("all interfaces! R "),
                5,
                "the warning first in the subtitle",
            )
            shown = str(app.tunnels_pane._border_subtitle)
            assert "0.0.0.0:48080→" in shown and "(all interfaces!)" not in shown

    asyncio.run(run())


def test_a_save_or_a_reload_makes_again_only_the_rows_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a save or a hand edit, the rows of unchanged hosts and tunnels are kept as shown
    (their state is kept current by the core's events): with 500 hosts, making every row
    again held the screen ~10 ms at every save. What changed is shown right."""
    from tui.panes.hosts_pane import HostsPane
    from tui.panes.tunnels_pane import TunnelsPane

    monkeypatch.setattr(tui.app, "CONFIG_POLL", 0.2)
    hosts = {f"host-{i:03d}": {"hostname": f"10.0.0.{i + 1}"} for i in range(30)}
    tunnels = {
        f"t{i}": {
            "host": f"host-{i:03d}",
            "kind": "local",
            "listen": f"127.0.0.1:{41000 + i}",
            "target": f"127.0.0.1:{8000 + i}",
        }
        for i in range(5)
    }
    app = make_app(tmp_path, hosts, tunnels)
    made: list[str] = []
    for pane in (HostsPane, TunnelsPane):
        row = pane._row

        def spy(self: object, name: str, spec: object, _row: object = row) -> object:
            made.append(name)
            return _row(self, name, spec)  # type: ignore[operator]

        monkeypatch.setattr(pane, "_row", spy)

    async def run() -> None:
        async with app.run_test(size=(200, 40)) as pilot:
            await ready(pilot)
            assert app.hosts_pane.wide and app.tunnels_pane.wide  # destinations and routes shown
            made.clear()
            app.refresh_panes()  # a plain refresh makes every row (the spy sees them)
            assert len(made) == 35
            hosts_table, tunnels_table = app.hosts_pane.table, app.tunnels_pane.table

            # A hand edit: host-007 moves, t2 points elsewhere, a host is added at the end.
            made.clear()
            text = app.config.path.read_text()
            text = text.replace('"10.0.0.8"', '"10.7.7.7"').replace(":8002", ":9002")
            app.config.path.write_text(text + '\n[hosts.hand]\nhostname = "10.0.0.99"\n')
            await until(pilot, lambda: "hand" in row_keys(app), 10, "the reload")
            await pilot.pause()
            assert sorted(made) == ["hand", "host-007", "t2"]
            assert "10.7.7.7" in " ".join(cell_texts(hosts_table, "host-007"))
            assert "127.0.0.1:9002" in " ".join(cell_texts(tunnels_table, "t2"))
            assert "10.0.0.99" in " ".join(cell_texts(hosts_table, "hand"))
            assert "10.0.0.9" in " ".join(cell_texts(hosts_table, "host-008"))  # as it was

            # A save in the app (the paste's path): the new host's row alone (its name is no
            # longer than the others: a wider name column would make every row again).
            made.clear()
            outcome = await asyncio.to_thread(ops.add_from_line, app.config, "ssh dev@10.9.9.9")
            await app.after_save(asyncio.sleep(0), "saved")
            await pilot.pause()
            assert made == [outcome.host]
            assert row_keys(app)[-1] == outcome.host

    asyncio.run(run())


def test_changed_cells_are_shown_and_a_wider_one_widens_its_column(tmp_path: Path) -> None:
    """Cells changed in one go (a flush of events updates hundreds): each shows its new
    text, and a cell wider than its column widens it."""
    hosts = {f"h{i}": {"hostname": f"10.0.0.{i + 1}"} for i in range(5)}
    app = make_app(tmp_path, hosts)

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            pane = app.hosts_pane
            table = pane.table
            detail = list(table.columns)[-1]
            before = table.columns[detail].content_width
            rows = {key: pane._shown[key] for key in ("h1", "h3")}
            wide = "x" * (before + 6)
            pane.update_rows({"h1": (*rows["h1"][:-1], "ok"), "h3": (*rows["h3"][:-1], wide)})
            await pilot.pause()
            assert cell_texts(table, "h1")[-1] == "ok"
            assert cell_texts(table, "h3")[-1] == wide
            assert table.columns[detail].content_width == len(wide)
            # The repaint shows them (the table's lines are drawn from the new cells).
            drawn = "\n".join(str(table.render_line(y).text) for y in range(table.size.height))
            assert "ok" in drawn

    asyncio.run(run())


def test_rows_out_of_view_are_made_at_the_tick_or_when_scrolled_into_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush of events makes the rows in view (and the cursor's) at once; rows out of
    view wait for the next tick (1 s) or for a scroll that shows them. With 200 busy
    tunnels every flush named every tunnel: making rows nobody sees was most of it."""
    from sshcore.events import HostLost
    from tui.panes.hosts_pane import HostsPane

    hosts = {f"host-{i:02d}": {"hostname": f"10.0.0.{i + 1}"} for i in range(60)}
    app = make_app(tmp_path, hosts)
    made: list[str] = []
    row = HostsPane._row

    def spy(self: HostsPane, name: str, spec: object) -> object:
        made.append(name)
        return row(self, name, spec)

    monkeypatch.setattr(HostsPane, "_row", spy)

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            assert app.core is not None
            pane, table = app.hosts_pane, app.hosts_pane.table
            made.clear()
            app.core.bus.publish(HostLost("host-01", "in view"))
            app.core.bus.publish(HostLost("host-40", "out of view"))
            app._flush_events()
            assert made == ["host-01"]
            assert pane.stale == {"host-40"}
            made.clear()
            app._tick()
            assert "host-40" in made and not pane.stale

            app.core.bus.publish(HostLost("host-45", "out of view"))
            app._flush_events()
            assert pane.stale == {"host-45"}
            made.clear()
            await app.after_save(asyncio.sleep(0), "saved")  # a save keeps it waiting too
            assert made == [] and pane.stale == {"host-45"}
            table.scroll_to(y=40, animate=False, immediate=True)
            await pilot.pause()
            assert made == ["host-45"] and not pane.stale

    asyncio.run(run())


def test_a_row_added_to_a_long_table_can_be_scrolled_to(tmp_path: Path) -> None:
    """A host added to a long table (a save, a reload): its scrollbar follows and the new
    row can be scrolled to. A table that starts to overflow gets its scrollbar."""
    hosts = {f"host-{i:02d}": {"hostname": f"10.0.0.{i + 1}"} for i in range(60)}
    app = make_app(tmp_path, hosts)

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            table = app.hosts_pane.table
            assert table.show_vertical_scrollbar
            outcome = await asyncio.to_thread(ops.add_from_line, app.config, "ssh dev@10.9.9.9")
            await app.after_save(asyncio.sleep(0), "saved")
            await pilot.pause()
            await pilot.pause()
            assert row_keys(app)[-1] == outcome.host
            assert table.vertical_scrollbar.window_virtual_size == table.virtual_size.height
            table.scroll_end(animate=False, immediate=True)
            await pilot.pause()
            assert table.scroll_y == table.max_scroll_y > 0

    asyncio.run(run())

    (tmp_path / "few").mkdir()
    few = make_app(tmp_path / "few", {"a": {"hostname": "10.0.0.1"}})

    async def overflow() -> None:
        async with few.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            table = few.hosts_pane.table
            assert not table.show_vertical_scrollbar
            for i in range(20):
                await asyncio.to_thread(ops.add_from_line, few.config, f"ssh u@10.8.0.{i + 1}")
            await few.after_save(asyncio.sleep(0), "saved")
            await pilot.pause()
            await pilot.pause()
            assert len(row_keys(few)) == 21
            assert table.show_vertical_scrollbar

    asyncio.run(overflow())


def test_up_and_down_move_the_cursor_without_the_key_going_up_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table moves its cursor on Up/Down itself: the key no longer travels through the
    pane, the grid and the screen to the app first (a trip through the event loop each,
    3-20 ms under load). Other keys still reach the pane (/ filters, Enter, letters)."""
    from tui.panes.base import FilterablePane

    hosts = {f"host-{i}": {"hostname": f"10.0.0.{i + 1}"} for i in range(5)}
    app = make_app(tmp_path, hosts)
    reached: list[str] = []
    on_key = FilterablePane.on_key

    def spy(self: FilterablePane, event: Any) -> None:
        reached.append(event.key)
        on_key(self, event)

    monkeypatch.setattr(FilterablePane, "on_key", spy)

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.press("1", "down", "down", "up")
            await pilot.pause()
            assert app.hosts_pane.selected_key() == "host-1"
            assert "10.0.0.2" in str(app.hosts_pane.border_subtitle)  # host-1's
            await pilot.press("slash")
            await pilot.pause()
            assert "down" not in reached and "up" not in reached
            assert "slash" in reached  # other keys still go through the pane

    asyncio.run(run())


def test_a_rebuild_while_scrolled_down_with_rows_waiting_keeps_the_app_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows out of view wait for the tick; a rebuild of the table (a resize across the
    pane's wide layout, a hand edit that drops many hosts) scrolls it to the top first.
    The waiting rows are made after the rebuild, not in the middle of it (where the table
    had no rows or columns yet, and the app ended with a traceback)."""
    from sshcore.events import HostLost

    monkeypatch.setattr(tui.app, "CONFIG_POLL", 0.2)
    hosts = {f"host-{i:02d}": {"hostname": f"10.0.0.{i + 1}"} for i in range(60)}
    app = make_app(tmp_path, hosts)

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            assert app.core is not None
            pane, table = app.hosts_pane, app.hosts_pane.table

            async def scrolled_with_a_row_waiting(host: str) -> None:
                table.scroll_to(y=40, animate=False, immediate=True)
                await pilot.pause()
                app.core.bus.publish(HostLost(host, "gone quiet"))
                app._flush_events()
                assert host in pane.stale

            await scrolled_with_a_row_waiting("host-02")
            await pilot.resize_terminal(200, 40)  # the pane turns wide: new columns
            await pilot.pause()
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            assert app.is_running and len(row_keys(app)) == 60

            await scrolled_with_a_row_waiting("host-03")
            text = app.config.path.read_text()
            start = text.index("[hosts.host-10]")
            end = text.index("[hosts.host-20]")
            app.config.path.write_text(text[:start] + text[end:])  # ten hosts go at once
            await until(pilot, lambda: len(row_keys(app)) == 50, 10, "the reload")
            await pilot.pause()
            assert app.is_running
            table.scroll_to(y=0, animate=False, immediate=True)
            await until(pilot, lambda: not pane.stale, 5, "the waiting row made")
            assert row_keys(app)[:3] == ["host-00", "host-01", "host-02"]

    asyncio.run(run())
    assert app.return_code in (0, None)
