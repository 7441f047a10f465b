"""Text from servers, remote programs and the user is shown as it is, never read as markup:
`[/]` in it once ended the dashboard (MarkupError), `[reverse]` restyled it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dashboard_util import make_app, ready, type_text, until

from sshcore.events import TargetRefused

HOSTILE = "x[/] [reverse]EVIL[/reverse] [b"


def test_hostile_text_in_a_subtitle_a_cell_a_toast_and_the_filter(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        {"box": {"hostname": "10.0.0.1"}},
        {
            "rsocks": {
                "host": "box",
                "kind": "remote",
                "listen": "127.0.0.1:1080",
                "target": "socks",
            }
        },
    )

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            # What a client on the remote names as its SOCKS destination, when it refuses.
            assert app.core is not None
            app.core.bus.publish(TargetRefused("rsocks", HOSTILE, "connection refused"))
            await pilot.press("2")
            await until(
                pilot,
                lambda: "at x[/] [reverse]" in str(app.tunnels_pane._border_subtitle),
                5,
                "the refused destination in the subtitle, as sent",
            )
            # A cell (a server's error, a remote program's name) and a toast.
            app.tunnels_pane.table.update_cell(
                "rsocks", list(app.tunnels_pane.table.columns)[1], HOSTILE
            )
            app.notify(f"{HOSTILE} is listening on box")
            await pilot.pause()
            shown = [n for n in app._notifications if HOSTILE in n.message]
            assert shown and not any(n.markup for n in shown)
            # The Logs filter shows what was typed.
            await pilot.press("4", "slash")
            await type_text(pilot, "[/]")
            await until(
                pilot,
                lambda: "filter '[/]'" in str(app.logs_pane._border_subtitle),
                5,
                "the typed filter in the subtitle",
            )
            await pilot.pause(0.2)
            assert app.is_running  # nothing above ended the app
            screen = app.export_screenshot()
            assert "EVIL" in screen

    asyncio.run(run())
