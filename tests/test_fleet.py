"""`devtui hosts test --all`: every host at once, a bounded number in flight, failures first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from coreutil import isolate_home, make_core, sshd_host, write_config
from harness.net import free_port

from sshcore.host_checks import check_hosts
from tui.cli import main


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


def _hosts(sshd: Any, good: int) -> dict[str, dict[str, Any]]:
    hosts = {f"ok{i}": sshd_host(sshd) for i in range(good)}
    hosts["down"] = {"hostname": "127.0.0.1", "port": free_port(), "user": sshd.user}
    return hosts


def test_cli_tests_every_host_and_lists_failures_first(
    tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known_hosts"
    sshd.write_known_hosts(known)
    path = write_config(tmp_path / "config.toml", _hosts(sshd, 4), known_hosts=str(known))
    status = main(["--config", str(path), "hosts", "test", "--all", "--json"])
    assert status == 1  # one host is down
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["down", "ok0", "ok1", "ok2", "ok3"]
    assert rows[0]["ok"] is False and "refused" in rows[0]["error"].lower()
    for row in rows[1:]:
        assert row["ok"] and row["auth_method"] == "publickey"
        assert row["connect_ms"] > 0 and row["round_trip_ms"] > 0
        assert row["server_version"].startswith("SSH-2.0-OpenSSH")


def test_cli_table_and_exit_zero_when_all_answer(
    tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known_hosts"
    sshd.write_known_hosts(known)
    hosts = {f"ok{i}": sshd_host(sshd) for i in range(3)}
    path = write_config(tmp_path / "config.toml", hosts, known_hosts=str(known))
    assert main(["--config", str(path), "hosts", "test", "--all"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split()[:2] == ["HOST", "STATE"]
    assert "3 OK, 0 failed" in err


async def test_at_most_n_in_flight_and_idle_hosts_disconnected_after(
    tmp_path: Path, sshd: Any
) -> None:
    known = tmp_path / "known_hosts"
    sshd.write_known_hosts(known)
    core, _, _ = make_core(tmp_path, _hosts(sshd, 6), known_hosts=str(known))
    in_flight = peak = 0
    connect = core.connect

    async def counting(name: str) -> Any:
        # A host is in flight from its connect until its result (connect, then round trip).
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        return await connect(name)

    def done(check: Any) -> None:
        nonlocal in_flight
        in_flight -= 1
        seen.append(check.name)

    async with core:
        await core.connect("ok0")  # connected before: stays connected
        core.connect = counting  # type: ignore[method-assign]
        seen: list[str] = []
        checks = await check_hosts(core, list(core.config.hosts), concurrency=2, on_result=done)
        assert peak == 2
        assert len(seen) == 7 and checks[0].name == "down"
        assert core.host_state("ok0").state.value == "connected"
        assert all(core.host_state(f"ok{i}").state.value == "idle" for i in range(1, 6))
