"""`devtui cp` against a real OpenSSH sshd (and, for what sshd will not do on demand, an
in-process asyncssh SFTP server that runs out of space or lies in its listings)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from cliutil import run_cli
from coreutil import make_core, sshd_host, write_config
from harness.asyncssh_server import AsyncsshServer

from sshcore import file_progress, file_sides
from sshcore.errors import DevtuiError, UsageError
from sshcore.file_exec import open_remote
from sshcore.file_sides import SftpSide, check_name
from sshcore.files import PART_SUFFIX, CopyProgress, copy_files, parse_location

MIB = 1024 * 1024
BIG = 64 * MIB


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def _cli(config: Path, *argv: str) -> Any:
    return run_cli("--config", str(config), *argv)


def _config(tmp_path: Path, sshd: Any) -> Path:
    """A config with host `box` on `sshd`, its host key already known."""
    key = Path(str(sshd.host_key_path) + ".pub").read_text().split()
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {key[0]} {key[1]}\n")
    return write_config(tmp_path / "config.toml", {"box": sshd_host(sshd)})


# -- paths ---------------------------------------------------------------------------------------


def test_paths_host_drive_and_local() -> None:
    hosts = {"box", "gpu"}
    assert parse_location("box:data/x", hosts).host == "box"
    assert parse_location("box:", hosts).path == ""
    assert parse_location(r"C:\Users\me\x", hosts).host is None  # a drive, never host "C"
    assert parse_location("./box:x", hosts).host is None
    assert parse_location("/tmp/a:b", hosts).host is None
    assert parse_location("plain", hosts).host is None
    with pytest.raises(UsageError, match="no saved host named 'nohost'"):
        parse_location("nohost:x", hosts)


# -- both directions, through the command line -------------------------------------------------


def test_upload_and_download_carry_their_own_bytes(sshd, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd)
    up_src = _random_file(tmp_path / "up.bin", 3 * MIB + 17)
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    down_src = _random_file(remote_dir / "down.bin", 2 * MIB + 5)  # different bytes each way
    os.chmod(up_src, 0o4751)  # setuid must not travel

    up = _cli(config, "cp", "--json", "--progress", str(up_src), f"box:{remote_dir}/")
    assert up.returncode == 0, up.stderr
    assert "[1/1] up.bin" in up.stderr and "100%" in up.stderr  # --progress on a pipe: lines
    record = json.loads(up.stdout)
    landed = remote_dir / "up.bin"
    assert landed.read_bytes() == up_src.read_bytes()
    assert record["sha256"] == _sha(up_src) and record["bytes"] == up_src.stat().st_size
    assert record["resumed_from"] == 0 and record["target"] == f"box:{landed}"
    assert landed.stat().st_mode & 0o7777 == 0o751

    local_dir = tmp_path / "local"
    local_dir.mkdir()
    down = _cli(config, "cp", "--json", f"box:{down_src}", str(local_dir))
    assert down.returncode == 0, down.stderr
    assert down.stderr == ""  # a pipe without --progress: no bar
    assert (local_dir / "down.bin").read_bytes() == down_src.read_bytes()
    assert json.loads(down.stdout)["sha256"] == _sha(down_src)
    assert _sha(up_src) != _sha(down_src)
    assert not list(tmp_path.rglob("*" + PART_SUFFIX))

    again = _cli(config, "cp", "--json", str(up_src), f"box:{landed}")  # same: no error
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    assert record["unchanged"] is True and record["sha256"] == _sha(up_src)  # both hashed


def test_recursive_copy_skips_symlinks_unless_L(sshd, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha")
    (tree / "sub" / "b.txt").write_text("beta")
    (tree / "link").symlink_to(tree / "a.txt")
    out = tmp_path / "out"
    done = _cli(config, "cp", "-r", str(tree), f"box:{out}")
    assert done.returncode == 0, done.stderr
    assert (out / "a.txt").read_text() == "alpha" and (out / "sub" / "b.txt").read_text() == "beta"
    assert not (out / "link").exists() and "skipped symlink" in done.stderr
    out2 = tmp_path / "out2"
    done = _cli(config, "cp", "-r", "-L", str(tree), f"box:{out2}")
    assert done.returncode == 0, done.stderr
    assert (out2 / "link").read_text() == "alpha" and not (out2 / "link").is_symlink()


# -- resume after a cancel, heal after a cut -------------------------------------------------------


async def _cancel_at_half(core: Any, src: str, dst: str) -> int:
    """Start a copy, cancel its task once progress passes 50 %; the bytes it had done."""
    seen: list[CopyProgress] = []
    task: asyncio.Task[Any] | None = None

    def progress(p: CopyProgress) -> None:
        seen.append(p)
        if p.file_done >= p.file_size // 2 and task is not None:
            task.cancel()

    task = asyncio.ensure_future(copy_files(core, [src], dst, on_progress=progress))
    with pytest.raises(asyncio.CancelledError):
        await task
    return seen[-1].file_done


@pytest.mark.parametrize("direction", ["upload", "download"])
@pytest.mark.parametrize("sftp", [True, False], ids=["sftp", "exec"])
async def test_a_cancelled_copy_resumes_from_its_part_file(
    sshd_factory, tmp_path: Path, direction: str, sftp: bool, monkeypatch
) -> None:
    monkeypatch.setattr(file_progress, "_PROGRESS_EVERY", 0.0)  # see the 50 % mark however fast
    sshd = sshd_factory([] if sftp else ["Subsystem none /bin/false"])
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    src = _random_file(tmp_path / "src.bin", BIG)
    target = tmp_path / "dst.bin"
    args = (str(src), f"box:{target}") if direction == "upload" else (f"box:{src}", str(target))
    notices: list[str] = []
    try:
        done = await _cancel_at_half(core, *args)
        part = Path(str(target) + PART_SUFFIX)
        assert not target.exists() and part.exists()  # the final name never holds a half
        kept = part.stat().st_size
        # SFTP counts bytes the server confirmed; exec counts bytes handed to the channel.
        assert done >= BIG // 2 and BIG * 0.4 <= kept < BIG
        (result,) = await copy_files(core, [args[0]], args[1], on_notice=notices.append)
    finally:
        await core.close()
    assert target.read_bytes() == src.read_bytes()
    assert result.sha256 == _sha(src)
    assert result.resumed_from >= BIG * 0.4
    assert done + result.sent <= BIG * 1.10  # re-sent at most 10 % of the file
    assert not part.exists()
    assert any("refuses SFTP" in n for n in notices) is not sftp


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_a_copy_killed_at_half_resumes_in_a_new_process(
    sshd, tmp_path: Path, direction: str
) -> None:
    # The process itself killed (SIGKILL: no cleanup at all) at about half; a new `devtui cp`
    # takes the part file up and re-sends at most 10 % of the file.
    config = _config(tmp_path, sshd)
    size = 2 * BIG
    src = _random_file(tmp_path / "src.bin", size)
    target = tmp_path / "dst.bin"
    part = Path(str(target) + PART_SUFFIX)
    args = (str(src), f"box:{target}") if direction == "upload" else (f"box:{src}", str(target))
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    argv = [sys.executable, "-m", "tui", "--config", str(config), "cp", "--json", *args]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size >= size // 2):
            assert first.poll() is None, "the copy ended before half"
            assert time.monotonic() < deadline, "the copy never reached half"
            time.sleep(0.002)
        first.kill()
    finally:
        first.communicate(timeout=30)
    kept = part.stat().st_size
    assert first.returncode == -9 and not target.exists() and size * 0.4 <= kept < size
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    assert record["sha256"] == _sha(src) and target.read_bytes() == src.read_bytes()
    assert record["resumed_from"] >= size * 0.4
    assert kept - record["resumed_from"] <= size * 0.10  # re-sent at most 10 % of the file
    assert not part.exists()


async def test_a_part_file_that_does_not_match_starts_over(sshd, tmp_path: Path) -> None:
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    src = _random_file(tmp_path / "src.bin", 12 * MIB)
    target = tmp_path / "dst.bin"
    Path(str(target) + PART_SUFFIX).write_bytes(os.urandom(8 * MIB))  # not this file's start
    notices: list[str] = []
    try:
        (result,) = await copy_files(core, [str(src)], f"box:{target}", on_notice=notices.append)
    finally:
        await core.close()
    assert result.resumed_from == 0 and target.read_bytes() == src.read_bytes()
    assert any("does not match the source" in n for n in notices)


@pytest.mark.parametrize("direction", ["upload", "download"])
@pytest.mark.parametrize("sftp", [True, False], ids=["sftp", "exec"])
async def test_a_link_cut_mid_copy_heals_and_finishes(
    sshd_factory, tcp_proxy, tmp_path: Path, direction: str, sftp: bool
) -> None:
    sshd = sshd_factory([] if sftp else ["Subsystem none /bin/false"])
    proxy = tcp_proxy("127.0.0.1", sshd.port)
    core, _, _ = make_core(
        tmp_path, {"box": sshd_host(sshd, port=proxy.port)}, reconnect_max_delay=1
    )
    src = _random_file(tmp_path / "src.bin", BIG)
    target = tmp_path / "dst.bin"
    args = (str(src), f"box:{target}") if direction == "upload" else (f"box:{src}", str(target))
    loop = asyncio.get_running_loop()
    cuts: list[int] = []
    notices: list[str] = []

    def progress(p: CopyProgress) -> None:
        if not cuts and p.file_done >= p.file_size // 3:
            cuts.append(p.file_done)
            proxy.cut()
            loop.call_later(0.5, proxy.restore)

    try:
        (result,) = await asyncio.wait_for(
            copy_files(core, [args[0]], args[1], on_progress=progress, on_notice=notices.append),
            90,
        )
    finally:
        await core.close()
    assert cuts, "the copy never reached a third"
    assert any("link lost" in n for n in notices)
    assert target.read_bytes() == src.read_bytes() and result.sha256 == _sha(src)
    assert not Path(str(target) + PART_SUFFIX).exists()
    # What went over the link counts the bytes before the cut too (a rate from it is true).
    assert result.sent >= BIG


# -- bad input: one line, non-zero, nothing under the final name -------------------------------


def _one_line(done: Any) -> str:
    err = done.stderr.strip()
    assert done.returncode != 0, done
    assert err and "\n" not in err and "Traceback" not in err, err
    return str(err)


def test_bad_inputs_say_one_line(sshd, tmp_path: Path) -> None:
    config = _config(tmp_path, sshd)
    (tmp_path / "dir").mkdir()
    src = _random_file(tmp_path / "f.bin", 1000)
    there = tmp_path / "there.bin"
    there.write_bytes(b"other content")

    assert "no saved host named 'nohost'" in _one_line(_cli(config, "cp", str(src), "nohost:x"))
    assert "no such file" in _one_line(_cli(config, "cp", str(tmp_path / "nope"), "box:"))
    assert "is a directory (use -r)" in _one_line(_cli(config, "cp", str(tmp_path / "dir"), "box:"))
    err = _one_line(_cli(config, "cp", str(src), f"box:{there}"))
    assert "exists and differs; --force" in err
    assert there.read_bytes() == b"other content"
    assert "not a directory" in _one_line(_cli(config, "cp", str(src), str(src), f"box:{there}"))
    assert "does not exist" in _one_line(_cli(config, "cp", str(src), f"box:{tmp_path}/no/x"))
    forced = _cli(config, "cp", "--force", str(src), f"box:{there}")
    assert forced.returncode == 0 and there.read_bytes() == src.read_bytes()


def test_a_bad_input_is_one_line_where_sftp_is_refused_too(sshd_factory, tmp_path: Path) -> None:
    # The "refuses SFTP" notice comes when bytes are about to move, not in front of an error.
    config = _config(tmp_path, sshd_factory(["Subsystem none /bin/false"]))
    assert "no such file" in _one_line(_cli(config, "cp", str(tmp_path / "nope"), "box:x"))
    src = _random_file(tmp_path / "f.bin", 1000)
    done = _cli(config, "cp", str(src), f"box:{tmp_path}/copy.bin")
    assert done.returncode == 0 and done.stderr.count("refuses SFTP") == 1, done.stderr
    assert (tmp_path / "copy.bin").read_bytes() == src.read_bytes()


def test_host_colon_and_tilde_start_where_sftp_starts(sshd_factory, tmp_path: Path) -> None:
    # `box:` and `box:~/x` are where the server's SFTP starts (here `internal-sftp -d`, as
    # some gateways set it), which is not the login's home where a hash command starts:
    # large files are hashed on the host by their full path.
    start = tmp_path / "start"
    (start / "sub").mkdir(parents=True)
    config = _config(tmp_path, sshd_factory([f"Subsystem sftp internal-sftp -d {start}"]))
    big = _random_file(tmp_path / "big.bin", file_sides.EXEC_HASH_MIN + 5)
    for dest, landed in (("box:", start / "big.bin"), ("box:~/sub/", start / "sub/big.bin")):
        done = _cli(config, "cp", str(big), dest)
        assert done.returncode == 0, done.stderr
        assert landed.read_bytes() == big.read_bytes()
    back = tmp_path / "back"
    back.mkdir()
    done = _cli(config, "cp", "--json", "box:sub/big.bin", str(back))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sha256"] == _sha(big)
    assert (back / "big.bin").read_bytes() == big.read_bytes()


def test_sources_that_collide_or_have_no_name_are_refused_first(
    sshd, tmp_path: Path, monkeypatch
) -> None:
    config = _config(tmp_path, sshd)
    for folder in ("p1", "p2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x").write_text(folder)
    dest = tmp_path / "dest"
    dest.mkdir()
    # Two sources with one name: refused before anything is written, not raced.
    err = _one_line(
        _cli(config, "cp", str(tmp_path / "p1/x"), str(tmp_path / "p2/x"), f"box:{dest}")
    )
    assert "would be copied there" in err and not list(dest.iterdir())
    # A target of another size is refused before the sources before it are copied.
    (dest / "m").mkdir()
    (dest / "m" / "small.txt").write_text("different")
    big = _random_file(tmp_path / "big.bin", 3 * MIB)
    (tmp_path / "small.txt").write_text("mine")
    err = _one_line(_cli(config, "cp", str(big), str(tmp_path / "small.txt"), f"box:{dest}/m"))
    assert "exists and differs" in err
    assert sorted(p.name for p in (dest / "m").iterdir()) == ["small.txt"]
    # `..` lands under its own name, never in the destination's parent.
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "top.txt").write_text("top")
    monkeypatch.chdir(tree / "sub")
    done = _cli(config, "cp", "-r", "..", f"box:{dest}")
    assert done.returncode == 0, done.stderr
    assert (dest / "tree" / "top.txt").read_text() == "top"
    assert not (tmp_path / "top.txt").exists()
    # The host's root has no name to copy it under.
    assert "the root has no name" in _one_line(_cli(config, "cp", "-r", "box:/", str(dest)))


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB filesystem (a tmpfs) under tmp_path: a real "no space left on device"."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("POSIX: mounting a 1 MiB tmpfs needs root")
    where = tmp_path / "tiny"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"POSIX: this machine lets no one mount a tmpfs ({done.stderr!r})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_a_full_disk_says_so_on_one_line(
    sshd, tmp_path: Path, tiny_disk: Path, direction: str
) -> None:
    # OpenSSH's sftp-server sends ENOSPC as a plain "Failure": the host's free space is
    # asked then. The whole process runs (an error a side job raised while the copy ended
    # must not print "Task exception was never retrieved").
    config = _config(tmp_path, sshd)
    src = _random_file(tmp_path / "src.bin", 3 * MIB)
    target = tiny_disk / "f.bin"
    args = (str(src), f"box:{target}") if direction == "upload" else (f"box:{src}", str(target))
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    done = subprocess.run(
        [sys.executable, "-m", "tui", "--config", str(config), "cp", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    err = _one_line(done)
    assert ("no space left on the host" if direction == "upload" else "No space left") in err
    assert not target.exists()


class _TrickySftp(asyncssh.SFTPServer):
    """An SFTP server that runs out of space after 1 MiB, and whose listing of `evil` holds
    names that climb out (`..`, an absolute path, a separator)."""

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        async for name in super().scandir(path):
            yield name
        if path.rstrip(b"/").endswith(b"evil"):
            attrs = asyncssh.SFTPAttrs(type=asyncssh.FILEXFER_TYPE_REGULAR, size=3)
            for bad in (b"../escaped", b"/etc/escaped"):
                yield asyncssh.SFTPName(bad, b"", attrs)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if offset + len(data) > MIB:
            raise asyncssh.SFTPNoSpaceOnFilesystem("No space left on device")
        result = super().write(file_obj, offset, data)
        assert isinstance(result, int)
        return result


class _TrickyServer(AsyncsshServer):
    def _sftp(self, chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        return _TrickySftp(chan, chroot=str(self.home).encode())


def _host_on(server: AsyncsshServer, tmp_path: Path) -> dict[str, Any]:
    """Host `box` on an in-process asyncssh server (user u), its host key known."""
    (tmp_path / "known_hosts").write_text(server.known_hosts_line() + "\n")
    return {
        "hostname": "127.0.0.1",
        "port": server.port,
        "user": "u",
        "identity_file": str(server.client_key("u")),
    }


@pytest.fixture
async def tricky(tmp_path: Path) -> AsyncIterator[tuple[_TrickyServer, Path]]:
    async with _TrickyServer({"u": "unused"}, real_commands=True) as server:
        yield server, write_config(tmp_path / "config.toml", {"box": _host_on(server, tmp_path)})


@pytest.mark.parametrize("direction", ["upload", "download"])
async def test_a_host_without_a_posix_sh_is_checked_by_reading_back(
    tmp_path: Path, direction: str
) -> None:
    """A host whose shell cannot run `sh` (a Windows host's cmd.exe, say): the hash command,
    sent beside the POSIX check, is dropped there, and the copy is checked by reading back."""
    async with AsyncsshServer({"u": "unused"}) as server:  # no real commands: no sh
        core, _, _ = make_core(tmp_path, {"box": _host_on(server, tmp_path)})
        size = file_sides.EXEC_HASH_MIN + 3 * MIB  # hashed by a command where one runs
        if direction == "upload":
            src, there = _random_file(tmp_path / "src.bin", size), server.home / "dst.bin"
            args = (str(src), "box:dst.bin")
        else:
            src, there = _random_file(server.home / "src.bin", size), tmp_path / "dst.bin"
            args = ("box:src.bin", str(there))
        try:
            (result,) = await asyncio.wait_for(copy_files(core, [args[0]], args[1]), 60)
        finally:
            await core.close()
        assert result.sha256 == _sha(src) and there.read_bytes() == src.read_bytes()
        assert server.total_connections == 1  # no drop was mistaken for a failed command


async def test_no_space_on_the_far_side(tricky, tmp_path: Path) -> None:
    server, config = tricky
    src = _random_file(tmp_path / "big.bin", 3 * MIB)
    done = await asyncio.to_thread(_cli, config, "cp", str(src), "box:big.bin")
    assert "no space left on the host" in _one_line(done)
    assert not (server.home / "big.bin").exists()


async def test_a_hostile_listing_cannot_escape(tricky, tmp_path: Path) -> None:
    server, config = tricky
    (server.home / "evil").mkdir()
    (server.home / "evil" / "fine.txt").write_text("fine")
    out = tmp_path / "out"
    done = await asyncio.to_thread(_cli, config, "cp", "-r", "box:evil", str(out))
    assert "could leave the directory; refused" in _one_line(done)
    assert not (tmp_path / "escaped").exists() and not Path("/etc/escaped").exists()
    assert not any(p.name == "escaped" for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("direction", ["upload", "download"])
async def test_verify_catches_a_damaged_part_file(sshd, tmp_path: Path, direction: str) -> None:
    """A part file whose last block matches but whose start is damaged resumes, fails the
    SHA-256 check, is removed, and the target is never written; a rerun then succeeds."""
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    src = _random_file(tmp_path / "src.bin", 12 * MIB)
    target = tmp_path / "dst.bin"
    damaged = bytearray(src.read_bytes()[: 10 * MIB])
    damaged[100] ^= 0xFF
    part = Path(str(target) + PART_SUFFIX)
    part.write_bytes(bytes(damaged))
    try:
        args = (str(src), f"box:{target}") if direction == "upload" else (f"box:{src}", str(target))
        with pytest.raises(DevtuiError, match="SHA-256 differs"):
            await copy_files(core, [args[0]], args[1])
        assert not target.exists() and not part.exists()
        (result,) = await copy_files(core, [args[0]], args[1])
    finally:
        await core.close()
    assert result.resumed_from == 0 and target.read_bytes() == src.read_bytes()


async def test_progress_counts_files_and_bytes(sshd, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(file_progress, "_PROGRESS_EVERY", 0.0)
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    sources = [_random_file(tmp_path / f"s{i}.bin", (i + 1) * MIB) for i in range(3)]
    out = tmp_path / "out"
    out.mkdir()
    seen: list[CopyProgress] = []
    try:
        results = await copy_files(
            core, [str(s) for s in sources], f"box:{out}", on_progress=seen.append
        )
    finally:
        await core.close()
    total = 6 * MIB
    assert [r.bytes for r in results] == [MIB, 2 * MIB, 3 * MIB]
    assert {p.file_count for p in seen} == {3} and {p.total for p in seen} == {total}
    assert [p.file_index for p in seen] == sorted(p.file_index for p in seen)
    assert seen[-1].done == total and seen[-1].file_index == 3 and seen[-1].eta == 0
    assert all(p.done <= total and p.file_done <= p.file_size for p in seen)
    assert seen[-1].rate > 0


@pytest.mark.parametrize("name", ["..", ".", "", "../x", "/etc/passwd", "a/b", "nul\0"])
def test_listing_names_that_could_leave_are_refused(name: str) -> None:
    with pytest.raises(DevtuiError, match="could leave the directory"):
        check_name(name, "box:dir")
    assert check_name("ok name..txt", "box:dir") == "ok name..txt"


@pytest.mark.parametrize("prefix", [0, 3 * MIB])
@pytest.mark.parametrize("reader", ["python3", "dd"])
async def test_the_hosts_hash_follows_the_written_blocks(
    sshd, tmp_path: Path, prefix: int, reader: str, monkeypatch
) -> None:
    """The host hashes an upload's part file as the server confirms its blocks: the digest
    is its own (the full re-hash, a fallback, is made to fail here); by python3 where the
    host has it, else by dd and openssl."""
    if reader == "dd":
        monkeypatch.setattr(file_sides, "_SHA256_FOLLOW", file_sides._FOLLOW_PIPE)
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    data = os.urandom(10 * MIB + 12345)
    part = tmp_path / "f.devtui-part"
    part.write_bytes(data[:prefix])
    try:
        conn = await core.connection("box")

        async def posix() -> bool:
            return await core.is_posix("box", conn)

        side = await open_remote("box", conn, posix, lambda: None)
        assert isinstance(side, SftpSide)

        async def no_fallback(path: str) -> str:
            raise AssertionError("fell back to a full hash")

        side.sha256 = no_fallback  # type: ignore[method-assign]
        later = await side.hash_later(str(part), (prefix, len(data), side.write_len))
        assert later is not None
        with part.open("r+b") as f:  # the writer: blocks from the prefix on, told as written
            for at in range(prefix, len(data), side.write_len):
                f.seek(at)
                f.write(data[at : at + side.write_len])
                f.flush()
                later.advance(min(at + side.write_len, len(data)))
        digest = await later.result()
    finally:
        await core.close()
    assert digest == hashlib.sha256(data).hexdigest()


async def test_the_passing_hash_keeps_order_behind_a_resumed_prefix(
    tmp_path: Path, monkeypatch
) -> None:
    """A resumed copy's prefix is hashed from disk in a thread; bytes that pass meanwhile
    wait their turn, and once it is done they are hashed as they come."""
    import threading

    data = os.urandom(MIB + 5 * 256 * 1024)
    part = tmp_path / "f.part"
    part.write_bytes(data[:MIB])
    gate = threading.Event()  # the prefix's read waits until the passing bytes are fed

    def gated_open(*args: Any, **kwargs: Any) -> Any:
        assert gate.wait(10)
        return open(*args, **kwargs)

    monkeypatch.setattr(file_progress, "open", gated_open, raising=False)
    stream = file_progress.StreamHash()
    try:
        stream.feed_file(str(part), MIB)
        for at in range(MIB, len(data), 256 * 1024):
            await stream.feed(data[at : at + 256 * 1024])
        gate.set()
        assert await stream.hexdigest() == hashlib.sha256(data).hexdigest()
        more = os.urandom(1000)
        await stream.feed(more)  # nothing queued now: hashed here, still in order
        assert await stream.hexdigest() == hashlib.sha256(data + more).hexdigest()
    finally:
        stream.close()


def test_one_file_on_a_case_blind_disk_is_one_target() -> None:
    # Windows and macOS tell a/X and a/x apart only by case by default: one file there.
    from sshcore.files import same_file_key

    assert same_file_key(r"C:\d\X", True, "win32") == same_file_key(r"c:/d/x", True, "win32")
    assert same_file_key("/d/X", True, "darwin") == same_file_key("/d/x", True, "darwin")
    assert same_file_key("/d/X", True, "linux") != same_file_key("/d/x", True, "linux")
    assert same_file_key("/d/X", False, "win32") != same_file_key("/d/x", False, "win32")
