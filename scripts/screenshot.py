"""Make docs/dashboard.svg, the README's picture, from the built-in demo (run it again after
a change to the look): `python scripts/screenshot.py [WIDTH HEIGHT]`."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sshcore.config import Config  # noqa: E402
from sshcore.demo import DemoSite  # noqa: E402
from tui.launch import build_app, demo_banner  # noqa: E402


def _fetch(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()


async def main(width: int, height: int) -> Path:
    import os

    os.environ["HOME"] = tempfile.mkdtemp(prefix="devtui-shot-")  # an empty ~/.ssh
    os.environ.pop("SSH_AUTH_SOCK", None)
    async with DemoSite() as demo:
        app = build_app(Config.load(demo.config_path), banner=demo_banner(demo.url))
        async with app.run_test(size=(width, height)) as pilot:
            await asyncio.wait_for(app.core_ready.wait(), 20)
            for _ in range(200):
                status = app.tunnel_status("demo-web")
                if status is not None and status.state.value == "up":
                    break
                await pilot.pause(0.05)
            for _ in range(6):  # a little traffic, so the counters and sparkline move
                await asyncio.to_thread(_fetch, demo.url)
                await pilot.pause(0.4)
            await pilot.press("2")
            await pilot.pause(1.2)
            out = ROOT / "docs" / "dashboard.svg"
            out.parent.mkdir(exist_ok=True)
            app.save_screenshot(filename=out.name, path=str(out.parent))
            await app.action_quit()
    return out


if __name__ == "__main__":
    size = [int(a) for a in sys.argv[1:3]] or [120, 32]
    print(asyncio.run(main(*size)))
