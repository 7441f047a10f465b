"""The dashboard's memory at scale: full garbage collections walk only what changed since the
start, and busy tables keep a few screenfuls of rendered cells (fewer objects to walk).

Both keep keys flowing: with 500 hosts and 200 busy tunnels each full collection held the
screen 100-270 ms (bench/dashboard.py load --trace-slow); the bench has the timings."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from coreutil import write_config
from dashboard_util import make_app, ready

from tui import gc_policy

DEVTUI_PROCESS = textwrap.dedent(
    """
    import asyncio, gc, json, sys

    from sshcore.config import Config
    from tui.launch import build_app


    async def main() -> None:
        before = gc.get_threshold()
        app = build_app(Config.load(sys.argv[1]))  # as `devtui` builds it
        async with app.run_test(size=(80, 24)) as pilot:
            await asyncio.wait_for(app.core_ready.wait(), 15)
            for _ in range(200):
                if gc.get_freeze_count():
                    break
                await pilot.pause(0.05)
            frozen = gc.get_freeze_count()
            oldest = len(gc.get_objects(2))
        print(json.dumps({"before": before, "threshold": gc.get_threshold(),
                          "frozen": frozen, "oldest": oldest}))


    asyncio.run(main())
    """
)


def test_devtui_leaves_its_startup_out_of_full_collections(tmp_path: Path) -> None:
    hosts = {f"host-{i}": {"hostname": f"10.0.0.{i + 1}"} for i in range(50)}
    config = write_config(tmp_path / "config.toml", hosts, log_file=str(tmp_path / "devtui.log"))
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", DEVTUI_PROCESS, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"][0] == 700  # Python's default until the dashboard is built
    assert seen["threshold"][0] == gc_policy.YOUNG
    # Modules, widgets, the config and the core: frozen, so a full collection walks only
    # what came after (a small part of the heap).
    assert seen["frozen"] > 50_000
    assert seen["oldest"] < seen["frozen"] / 5


def test_an_app_in_a_shared_process_leaves_the_collector_alone(tmp_path: Path) -> None:
    """Tests (and any embedding) build the app directly: nothing process-wide changes."""
    import gc

    app = make_app(tmp_path, {"web": {"hostname": "10.0.0.1"}})
    threshold = gc.get_threshold()

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            await pilot.pause(0.2)
            assert gc.get_freeze_count() == 0
            assert gc.get_threshold() == threshold

    asyncio.run(run())


def test_the_dashboard_draws_up_to_120_frames_a_second_unless_told_otherwise(
    tmp_path: Path,
) -> None:
    """Textual waits one to two frames after a long one: at 60 fps a key just after a busy
    repaint was drawn 17-33 ms later. The user's own TEXTUAL_FPS still wins."""
    # The setting is Textual's alone: once the app is built it is gone from the environment
    # that `s` (a shell), an editor or a remote program started from the dashboard inherit.
    probe = (
        "import os, sys, tui.launch, textual.constants as c; from sshcore.config import Config;"
        " tui.launch.build_app(Config.load(sys.argv[1]));"
        " print(c.MAX_FPS, os.environ.get('TEXTUAL_FPS'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}
    config = tmp_path / "config.toml"
    config.write_text("")
    for extra, expected in (({}, "120 None"), ({"TEXTUAL_FPS": "30"}, "30 30")):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, **extra},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
