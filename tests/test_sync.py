"""`devtui sync` against a real OpenSSH sshd: add, change, delete, dry run, excludes,
.gitignore, both directions, and a second sync that sends nothing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from cliutil import run_cli
from coreutil import make_core, sshd_host, write_config

from sshcore.file_sync import sync_dirs
from sshcore.files import CopyProgress


def _config(tmp_path: Path, sshd: Any, extra: dict[str, Any] | None = None) -> Path:
    key = Path(str(sshd.host_key_path) + ".pub").read_text().split()
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {key[0]} {key[1]}\n")
    return write_config(tmp_path / "config.toml", {"box": sshd_host(sshd)})


def _sync(config: Path, *argv: str) -> Any:
    done = run_cli("--config", str(config), "sync", "--json", *argv)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _changes(report: Any) -> set[tuple[str, str]]:
    return {(c["action"], c["path"]) for c in report["changes"]}


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _make(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_sync_adds_changes_deletes_and_a_second_run_sends_nothing(sshd, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {"a.txt": b"alpha", "sub/b.bin": os.urandom(70_000), "sub/deep/c": b"c"})
    _make(dst, {"a.txt": b"old alpha!", "stale.txt": b"gone soon", "sub/old/x": b"x"})

    dry = _sync(config, "--dry-run", "--delete", str(src), f"box:{dst}")
    assert dry["dry_run"] and dry["sent"] == 0
    assert _changes(dry) == {
        ("change", "a.txt"),
        ("add", "sub/b.bin"),
        ("add", "sub/deep/"),
        ("add", "sub/deep/c"),
        ("delete", "stale.txt"),
        ("delete", "sub/old/"),
        ("delete", "sub/old/x"),
    }
    sizes = {c["path"]: c["bytes"] for c in dry["changes"]}
    assert sizes["sub/b.bin"] == 70_000 and sizes["stale.txt"] == len(b"gone soon")
    assert (dst / "a.txt").read_bytes() == b"old alpha!" and (dst / "stale.txt").exists()

    done = _sync(config, "--delete", str(src), f"box:{dst}")
    assert _changes(done) == _changes(dry)
    assert _tree(dst) == _tree(src)
    assert (dst / "sub" / "b.bin").stat().st_mtime == int((src / "sub" / "b.bin").stat().st_mtime)

    again = _sync(config, "--delete", str(src), f"box:{dst}")
    assert again["changes"] == [] and again["sent"] == 0

    # Only the mtime moved: the hashes match, so nothing is sent, the mtime is set.
    os.utime(src / "a.txt", (1_600_000_000, 1_600_000_000))
    touched = _sync(config, str(src), f"box:{dst}")
    assert _changes(touched) == {("touch", "a.txt")} and touched["sent"] == 0
    assert (dst / "a.txt").stat().st_mtime == 1_600_000_000
    # Same size and a new mtime, different bytes: sent.
    (src / "a.txt").write_bytes(b"ALPHA")
    changed = _sync(config, str(src), f"box:{dst}")
    assert _changes(changed) == {("change", "a.txt")} and (dst / "a.txt").read_bytes() == b"ALPHA"


def test_excludes_and_gitignore_on_both_sides(sshd, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(
        src,
        {
            ".gitignore": b"*.log\nbuild/\n",
            "keep.py": b"print(1)",
            "run.log": b"log",
            "build/out.o": b"o",
            "data/big.ckpt": b"ckpt",
            "data/small.txt": b"s",
        },
    )
    _make(dst, {"old.log": b"excluded there too: --delete keeps it"})
    done = _sync(config, "--delete", "--exclude", "*.ckpt", str(src), f"box:{dst}")
    assert set(_tree(dst)) == {".gitignore", "keep.py", "data/small.txt", "old.log"}
    assert ("delete", "old.log") not in _changes(done)

    dst2 = tmp_path / "dst2"
    _sync(config, "--no-gitignore", str(src), f"box:{dst2}")
    assert "run.log" in _tree(dst2) and "build/out.o" in _tree(dst2)


def test_sync_down_from_the_host(sshd, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd)
    remote, local = tmp_path / "remote", tmp_path / "local"
    _make(remote, {"r1": os.urandom(5000), "d/r2": b"two"})
    _make(local, {"extra": b"not on the host"})
    done = _sync(config, "--delete", f"box:{remote}", str(local))
    assert _changes(done) == {("add", "r1"), ("add", "d/"), ("add", "d/r2"), ("delete", "extra")}
    assert _tree(local) == _tree(remote)
    assert _sync(config, "--delete", f"box:{remote}", str(local))["changes"] == []


def test_a_hosts_file_names_reach_the_terminal_as_text(sshd, tmp_path: Path) -> None:
    """A name on the host holding a terminal escape (clear the screen, retitle the window)
    is listed as visible escapes, never sent to the terminal as a command."""
    config = _config(tmp_path, sshd)
    remote, local = tmp_path / "remote", tmp_path / "local"
    local.mkdir()
    _make(remote, {"a\x1b[2J\x1b]0;owned\x07b": b"x"})
    done = run_cli("--config", str(config), "sync", "--dry-run", f"box:{remote}", str(local))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "a\\033[2J" in done.stdout  # shown, escaped


async def test_sync_lists_over_sftp_where_the_host_refuses_it(sshd_factory, tmp_path) -> None:
    sshd = sshd_factory(["Subsystem none /bin/false"])
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {"a": b"a", "s/b": b"bb"})
    notices: list[str] = []
    try:
        first = await sync_dirs(core, str(src), f"box:{dst}", on_notice=notices.append)
        second = await sync_dirs(core, str(src), f"box:{dst}", on_notice=notices.append)
    finally:
        await core.close()
    assert {c.path for c in first.changes} == {"a", "s/", "s/b"} and second.changes == []
    assert _tree(dst) == _tree(src)
    assert any("refuses SFTP" in n for n in notices)


def test_sync_bad_input(sshd, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd)
    (tmp_path / "f").write_text("file")
    for argv, words in [
        (["nohost:x", str(tmp_path)], "no saved host"),
        ([str(tmp_path / "missing"), "box:x"], "not a directory"),
        ([str(tmp_path / "f"), "box:x"], "not a directory"),
        ([str(tmp_path), str(tmp_path / "y")], "one local directory and one HOST:DIR"),
    ]:
        done = run_cli("--config", str(config), "sync", *argv)
        assert done.returncode != 0 and words in done.stderr, done.stderr
        assert done.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("count", [300])
def test_an_unchanged_tree_is_one_listing(sshd, tmp_path: Path, count: int) -> None:
    config = _config(tmp_path, sshd)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {f"d{i % 10}/f{i}": str(i).encode() for i in range(count)})
    _sync(config, str(src), f"box:{dst}")
    log_before = sshd.log_path.read_text().count("Starting session: command")
    assert _sync(config, str(src), f"box:{dst}")["changes"] == []
    commands = sshd.log_path.read_text().count("Starting session: command") - log_before
    assert commands <= 3  # the POSIX check and one find, not a command per file


async def test_a_link_cut_during_a_sync_of_many_small_files_heals(
    sshd, tcp_proxy, tmp_path: Path
) -> None:
    """Small files go several at a time: each copy in flight sees the drop, one reopens the
    side, all resume, and the tree arrives whole."""
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    core, _, _ = make_core(
        tmp_path, {"box": sshd_host(sshd, port=proxy.port)}, reconnect_max_delay=1
    )
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {f"d{i % 7}/f{i}": os.urandom(20_000 + i) for i in range(300)})
    loop = asyncio.get_running_loop()
    cuts: list[int] = []
    notices: list[str] = []

    def progress(p: CopyProgress) -> None:
        if not cuts and p.done >= p.total // 3:
            cuts.append(p.done)
            proxy.cut()
            loop.call_later(0.5, proxy.restore)

    try:
        result = await asyncio.wait_for(
            sync_dirs(core, str(src), f"box:{dst}", on_progress=progress, on_notice=notices.append),
            120,
        )
        again = await sync_dirs(core, str(src), f"box:{dst}")
    finally:
        await core.close()
    assert cuts and any("link lost" in n for n in notices)
    assert _tree(dst) == _tree(src) and again.changes == []
    assert len([c for c in result.changes if c.action == "add" and not c.path.endswith("/")]) == 300
    assert not list(dst.rglob("*.devtui-part"))


@pytest.mark.parametrize("up", [True, False], ids=["up", "down"])
def test_delete_keeps_a_directory_that_holds_excluded_files(sshd, tmp_path: Path, up: bool) -> None:
    """Like rsync without --delete-excluded: an excluded file on the destination stays, so
    does the directory around it (said once), and every other deletion still happens."""
    config = _config(tmp_path, sshd)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {"keep.txt": b"k"})
    _make(dst, {"gone/keep.log": b"log", "gone/deep/x.log": b"x", "gone/y": b"y"})
    _make(dst, {"extra.txt": b"extra", "z/old": b"old"})
    argv = [str(src), f"box:{dst}"] if up else [f"box:{src}", str(dst)]
    done = run_cli("--config", str(config), "sync", "--delete", "--exclude", "*.log", *argv)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("kept gone/: it holds excluded files") == 1, done.stderr
    assert "gone/deep" not in done.stderr  # the outermost kept directory only
    assert set(_tree(dst)) == {"keep.txt", "gone/keep.log", "gone/deep/x.log"}
    assert not (dst / "z").exists()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


@pytest.mark.parametrize("up", [True, False], ids=["up", "down"])
def test_permission_bits_are_synced_without_resending(sshd, tmp_path: Path, up: bool) -> None:
    config = _config(tmp_path, sshd)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {"a.sh": b"echo a", "b.txt": b"bee", "sub/c": b"c"})
    (src / "a.sh").chmod(0o644)
    argv = [str(src), f"box:{dst}"] if up else [f"box:{src}", str(dst)]
    _sync(config, *argv)

    (src / "a.sh").chmod(0o4700)  # setuid is never carried over, only rwx
    (src / "sub").chmod(0o750)
    (src / "b.txt").write_bytes(b"BEE")  # content and mode both change
    os.utime(src / "b.txt", (1_600_000_000, 1_600_000_000))  # within the second: same mtime
    (src / "b.txt").chmod(0o600)
    dry = _sync(config, "--dry-run", *argv)
    assert _changes(dry) == {("mode", "a.sh"), ("mode", "sub/"), ("change", "b.txt")}
    assert {c["path"]: c.get("mode") for c in dry["changes"]}["a.sh"] == "700"
    assert _mode(dst / "a.sh") == 0o644

    done = _sync(config, *argv)
    assert _changes(done) == _changes(dry) and done["sent"] == 3
    assert _mode(dst / "a.sh") == 0o700 and (dst / "a.sh").read_bytes() == b"echo a"
    assert _mode(dst / "sub") == 0o750
    assert _mode(dst / "b.txt") == 0o600 and (dst / "b.txt").read_bytes() == b"BEE"
    assert _sync(config, *argv)["changes"] == []

    text = run_cli("--config", str(config), "sync", *argv)
    assert text.returncode == 0 and "0 changed" in text.stderr
    (src / "a.sh").chmod(0o755)
    text = run_cli("--config", str(config), "sync", *argv)
    assert text.returncode == 0, text.stderr
    assert text.stdout.split() == ["mode", "755", "a.sh"]
    assert "1 changed (1 mode)" in text.stderr


async def test_modes_over_exec_channels_and_in_the_sftp_listing(sshd_factory, tmp_path) -> None:
    """A host without SFTP gets its modes and mtimes by a shell command; the SFTP walk (a
    host without find -printf) sees the same modes as find."""
    from sshcore.file_sync import _remote_tree, _walk_tree
    from sshcore.files import Endpoint

    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {"a": b"a", "-dash": b"d", "s/b": b"bb"})
    (src / "a").chmod(0o751)
    (src / "-dash").chmod(0o600)
    (src / "s").chmod(0o700)
    os.utime(src / "s", (1_500_000_000, 1_500_000_000))
    for options in (["Subsystem none /bin/false"], []):
        sshd = sshd_factory(options)
        core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
        try:
            await sync_dirs(core, str(src), f"box:{dst}")
            (dst / "a").chmod(0o644)
            (dst / "-dash").chmod(0o644)
            done = await sync_dirs(core, str(src), f"box:{dst}")
            again = await sync_dirs(core, str(src), f"box:{dst}")
            end = Endpoint(core, "box", lambda _: None)
            side = await end.side()
            walked, found = await _walk_tree(side, str(dst)), await _remote_tree(side, str(dst))
            await end.close()
        finally:
            await core.close()
        assert {(c.action, c.path) for c in done.changes} == {("mode", "a"), ("mode", "-dash")}
        assert again.changes == []
        assert _mode(dst / "a") == 0o751 and _mode(dst / "-dash") == 0o600
        assert _mode(dst / "s") == 0o700 and (dst / "s").stat().st_mtime == 1_500_000_000
        assert {r: i.mode for r, i in walked.items()} == {r: i.mode for r, i in found.items()}
        assert found["a"].mode == 0o751
        shutil.rmtree(dst)


@pytest.mark.parametrize("up", [True, False], ids=["up", "down"])
def test_directory_mtimes_are_kept(sshd, tmp_path: Path, up: bool) -> None:
    config = _config(tmp_path, sshd)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {"a": b"a", "d/e/f": b"f", "d/g": b"g"})
    _make(dst, {"d/old": b"old"})
    for n, d in enumerate([src / "d" / "e", src / "d", src]):
        os.utime(d, (1_400_000_000 + n, 1_400_000_000 + n))
    argv = [str(src), f"box:{dst}"] if up else [f"box:{src}", str(dst)]
    _sync(config, "--delete", *argv)
    for rel in ("d/e", "d", "."):
        assert (dst / rel).stat().st_mtime == (src / rel).stat().st_mtime, rel
    assert _sync(config, *argv)["changes"] == []
    # Only a directory's mtime moved (a file excluded there came and went): it is set back.
    os.utime(dst / "d", (1_600_000_000, 1_600_000_000))
    assert _changes(_sync(config, *argv)) == {("touch", "d/")}
    assert (dst / "d").stat().st_mtime == (src / "d").stat().st_mtime


def test_dry_run_shows_a_directory_deletion_as_a_directory(sshd, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _make(dst, {"old/x": b"12345"})
    done = run_cli("--config", str(config), "sync", "--dry-run", "--delete", str(src), f"box:{dst}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{'delete':<7} {'5 B':>10}  old/x",
        f"{'delete':<7} {'dir':>10}  old/",
    ]
    report = _sync(config, "--dry-run", "--delete", str(src), f"box:{dst}")
    assert {c["path"]: c["bytes"] for c in report["changes"]} == {"old/x": 5, "old/": 0}


def test_a_relative_dir_is_where_sftp_starts(sshd_factory, tmp_path: Path) -> None:
    # `box:synced` is in the folder SFTP starts in (`internal-sftp -d` here, as some
    # gateways set it), not the login's home where the listing command starts.
    start = tmp_path / "start"
    start.mkdir()
    config = _config(tmp_path, sshd_factory([f"Subsystem sftp internal-sftp -d {start}"]))
    src = tmp_path / "src"
    _make(src, {"a.txt": b"alpha", "sub/b.txt": b"beta"})
    first = _sync(config, str(src), "box:synced")
    assert _tree(start / "synced") == _tree(src) and first["sent"] > 0
    again = _sync(config, str(src), "box:synced")  # listed where it was written
    assert again["changes"] == [] and again["sent"] == 0


def test_a_read_only_folder_keeps_its_owners_rwx_there(sshd, tmp_path: Path) -> None:
    # A folder without its owner's w or x could not be synced into again (nor entered):
    # the owner keeps rwx there, the rest of its bits follow, and the next sync is quiet.
    config = _config(tmp_path, sshd)
    src, dst = tmp_path / "src", tmp_path / "dst"
    _make(src, {"ro/f.txt": b"f"})
    (src / "ro").chmod(0o550)
    try:
        _sync(config, str(src), f"box:{dst}")
        assert (dst / "ro").stat().st_mode & 0o777 == 0o750
        assert _sync(config, str(src), f"box:{dst}")["changes"] == []
    finally:
        (src / "ro").chmod(0o750)


def test_windows_has_no_permission_bits_to_sync() -> None:
    # Windows makes up 0666 / 0777 (0444 read-only): a copy from there gets 0644 / 0755 (a
    # host's usual umask), and a sync with a local side there neither compares nor sets modes.
    from sshcore.file_sides import KIND_DIR, KIND_FILE, LocalSide, local_mode
    from sshcore.file_sync import modes_known

    assert local_mode(0o100666, KIND_FILE, windows=True) == 0o644
    assert local_mode(0o100444, KIND_FILE, windows=True) == 0o444
    assert local_mode(0o040777, KIND_DIR, windows=True) == 0o755
    assert local_mode(0o104751, KIND_FILE, windows=False) == 0o751  # no setuid, elsewhere
    local: Any = LocalSide()
    remote: Any = type("Remote", (), {"remote": True})()
    assert not modes_known(local, remote, windows=True)
    assert modes_known(local, remote, windows=False) and modes_known(remote, remote, True)
