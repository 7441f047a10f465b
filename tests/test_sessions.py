"""Sessions against a real OpenSSH sshd: host keys (TOFU, changed), auth, jump hosts, run."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from coreutil import isolate_home, make_core, of_type, sshd_host, wait_for
from harness.asyncssh_server import AsyncsshServer
from harness.net import free_port
from harness.sshd import keygen, sha256_fingerprint

import sshcore.core
from sshcore import hostkeys
from sshcore.errors import DevtuiError
from sshcore.events import AuthFailed, HostConnected, HostKeyLearned, HostKeyRejected
from sshcore.session import AuthError, ConnectError, HostKeyError, HostState


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_home(monkeypatch, tmp_path)


async def _reconnected(events: list, host: str, timeout: float = 20) -> None:
    """Wait until `host` has connected once more after the first time (after a restart).

    Waiting for "connected" alone may return at once: the old connection's end may not
    have been noticed yet.
    """
    await wait_for(
        lambda: len([e for e in of_type(events, HostConnected) if e.host == host]) >= 2,
        timeout,
        what=f"{host} to reconnect",
    )


async def test_unknown_key_is_asked_saved_and_accepted_by_openssh(sshd, tmp_path: Path) -> None:
    core, prompts, events = make_core(tmp_path, {"box": sshd_host(sshd)})
    async with core:
        status = await core.connect("box")
    assert status.state == HostState.CONNECTED and status.auth_method == "publickey"
    # The user saw the fingerprint ssh-keygen would show.
    (question,) = prompts.questions
    assert question.fingerprint == sshd.host_key_sha256()
    assert question.address == f"[127.0.0.1]:{sshd.port}"
    assert of_type(events, HostKeyLearned)[0].fingerprint == sshd.host_key_sha256()
    known = tmp_path / "known_hosts"
    found = subprocess.run(
        ["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(known)],
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout
    # OpenSSH with strict checking accepts the line devtui wrote.
    login = subprocess.run(
        sshd.ssh_argv("echo", "trusted", known_hosts=known),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "trusted"


async def test_second_connect_does_not_ask_again(sshd, tmp_path: Path) -> None:
    core, prompts, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    async with core:
        await core.connect("box")
        await core.disconnect("box")
        await core.connect("box")
    assert len(prompts.questions) == 1


async def test_declined_key_is_not_saved_and_nothing_is_sent(sshd, tmp_path: Path) -> None:
    core, prompts, events = make_core(tmp_path, {"box": sshd_host(sshd)})
    prompts.trust = False
    async with core:
        with pytest.raises(HostKeyError, match="not trusted"):
            await core.connect("box")
    assert not (tmp_path / "known_hosts").exists()
    assert of_type(events, HostKeyRejected)
    assert "Accepted publickey" not in sshd.log_text()  # no login happened


async def test_changed_host_key_is_refused_loudly(sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    before = sshd.known_hosts_line() + "\n"
    known.write_text(before)
    old = sshd.host_key_sha256()
    sshd.regenerate_host_key()
    core, prompts, events = make_core(tmp_path, {"box": sshd_host(sshd)})
    async with core:
        with pytest.raises(HostKeyError) as caught:
            await core.connect("box")
        assert core.host_state("box").state == HostState.FAILED
    message = str(caught.value)
    assert "HOST KEY CHANGED" in message
    assert old in message and sshd.host_key_sha256() in message
    assert f"{known}:1" in message
    assert prompts.questions == []  # never offered as "trust this new key?"
    (mismatch,) = prompts.mismatches
    assert (mismatch.old_fingerprint, mismatch.new_fingerprint) == (old, sshd.host_key_sha256())
    assert known.read_text() == before  # never auto-replaced
    assert of_type(events, HostKeyRejected)


async def test_forget_key_then_trust_the_rebuilt_machine(sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts_line())  # no final newline, as some tools write it
    sshd.regenerate_host_key()
    assert hostkeys.forget(known, "127.0.0.1", sshd.port) == 1
    core, prompts, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    async with core:
        await core.connect("box")
    assert prompts.questions[0].fingerprint == sshd.host_key_sha256()


async def test_wrong_key_says_what_was_tried(sshd, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    host = sshd_host(sshd, identity_file=str(stranger))
    core, _, events = make_core(tmp_path, {"box": host})
    async with core:
        with pytest.raises(AuthError) as caught:
            await core.connect("box")
        assert core.host_state("box").state == HostState.FAILED
    message = str(caught.value)
    assert "login refused" in message and "publickey" in message
    assert "password" in message  # the server offered passwords; nobody typed one
    assert of_type(events, AuthFailed)


def _accepted_fingerprints(sshd) -> list[str]:
    """The keys sshd let in, in its log order."""
    return [
        line.rsplit(" ", 1)[-1]
        for line in sshd.log_text().splitlines()
        if "Accepted publickey" in line
    ]


async def test_the_second_identity_file_logs_in_when_the_first_is_refused(
    sshd, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    keygen(stranger, "not authorized")
    good = sshd.client_key("second")
    host = sshd_host(sshd, identity_files=[str(stranger), str(good)])
    del host["identity_file"]
    core, _, _ = make_core(tmp_path, {"box": host})
    assert core.config.hosts["box"].identity_files == (str(stranger), str(good))
    async with core:
        await core.connect("box")
        assert core.host_state("box").state == HostState.CONNECTED
    public = good.with_name("second.pub").read_text()
    assert _accepted_fingerprints(sshd) == [sha256_fingerprint(public)]


async def test_identity_files_are_offered_in_their_order(sshd, tmp_path: Path) -> None:
    """Both keys would do: the one listed first is the one the server accepts (as ssh)."""
    first, second = sshd.client_key("alpha"), sshd.client_key("beta")
    for order in ([second, first], [first, second]):
        host = sshd_host(sshd, identity_files=[str(k) for k in order])
        del host["identity_file"]
        folder = tmp_path / order[0].name
        folder.mkdir()
        core, _, _ = make_core(folder, {"box": host})
        before = len(_accepted_fingerprints(sshd))
        async with core:
            await core.connect("box")
        public = order[0].with_name(order[0].name + ".pub").read_text()
        assert _accepted_fingerprints(sshd)[before:] == [sha256_fingerprint(public)]


async def test_password_login_wrong_then_right(sshd, throwaway_user, tmp_path: Path) -> None:
    host = {"hostname": "127.0.0.1", "port": sshd.port, "user": throwaway_user.name}
    core, prompts, _ = make_core(tmp_path, {"pw": host})
    prompts.passwords = ["wrong-1", "wrong-2", "wrong-3"]
    async with core:
        with pytest.raises(AuthError) as caught:
            await core.connect("pw")
        assert "password (refused)" in str(caught.value)
    assert "wrong-1" not in (tmp_path / "devtui.log").read_text()  # never in logs
    core, prompts, events = make_core(tmp_path, {"pw": host})
    prompts.passwords = [throwaway_user.password]
    async with core:
        status = await core.connect("pw")
        assert status.auth_method in ("password", "keyboard-interactive")
        # A reconnect uses the password kept in memory: no second prompt.
        sshd.restart()
        await _reconnected(events, "pw")
        conn = await core.connection("pw")
        result = await conn.run("whoami", check=True)
    assert str(result.stdout).strip() == throwaway_user.name
    assert len(prompts.password_prompts) == 1
    log = (tmp_path / "devtui.log").read_text()
    assert throwaway_user.password not in log
    assert throwaway_user.password not in (tmp_path / "config.toml").read_text()


async def test_run_streams_output_and_exit_status(sshd, tmp_path: Path) -> None:
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    chunks: list[tuple[str, bytes]] = []
    async with core:
        status = await core.run(
            "box",
            ["sh", "-c", "echo out; echo err >&2; exit 7"],
            lambda s, b: chunks.append((s, b)),
        )
        # Arguments arrive as separate words, never re-split by the remote shell.
        await core.run(
            "box", ["printf", "%s|", "a b", "$HOME", ";x"], lambda s, b: chunks.append((s, b))
        )
    assert status == 7
    out = b"".join(b for s, b in chunks if s == "stdout")
    assert out == b"out\na b|$HOME|;x|"
    assert b"".join(b for s, b in chunks if s == "stderr") == b"err\n"


@pytest.mark.parametrize("traps_term", [False, True])
async def test_cancelling_run_ends_the_remote_command(
    sshd, tmp_path: Path, traps_term, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Following a quiet command's output and then stopping must not leave it, or what it
    # started, running on the host (GNU tail notices a closed pipe by itself, most commands
    # never do). One that ignores TERM gets KILL. The sshd here is local, so its child
    # processes are ours to look at.
    # The wrapper as it is, with KILL 0.3 s after TERM instead of 2 s (the wait, not the kill).
    wrapper = sshcore.core._RUN_WRAPPER
    assert 'kill -TERM "$t"; sleep 2; kill -KILL "$t"' in wrapper
    monkeypatch.setattr(
        sshcore.core,
        "_RUN_WRAPPER",
        wrapper.replace("; sleep 2; kill -KILL", "; sleep 0.3; kill -KILL"),
    )
    trap = "trap '' TERM; " if traps_term else ""
    script = trap + 'sleep 300 & echo "$$ $!"; exec sleep 301'
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd)})
    chunks: list[bytes] = []
    async with core:
        follow = asyncio.ensure_future(
            core.run("box", ["sh", "-c", script], lambda s, b: chunks.append(b))
        )
        await wait_for(lambda: b"\n" in b"".join(chunks), 10, what="the pids")
        pids = [int(word) for word in b"".join(chunks).split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        follow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(follow, 10)  # and the cancel itself does not hang
        for pid in pids:
            await wait_for(lambda p=pid: not _alive(p), 8, what=f"remote pid {pid} to end")
        # The shared connection is still good for the next command.
        assert await core.run("box", ["true"]) == 0


async def test_run_a_line_in_the_login_shell_and_a_lost_link_is_one_clear_error(
    sshd, tcp_proxy, tmp_path: Path
) -> None:
    import pwd

    proxy = tcp_proxy("127.0.0.1", sshd.port)
    core, _, _ = make_core(tmp_path, {"box": sshd_host(sshd, port=proxy.port)})
    out: list[bytes] = []
    async with core:
        # A string is a shell line for the user's login shell, as `ssh box 'LINE'` runs it.
        status = await core.run("box", 'echo "$0"; exit 5', lambda _, b: out.append(b))
        assert status == 5
        assert b"".join(out).decode().strip() == pwd.getpwnam(sshd.user).pw_shell
        started: list[bytes] = []
        running = asyncio.ensure_future(
            core.run(
                "box", ["sh", "-c", "echo started; exec sleep 30"], lambda _, b: started.append(b)
            )
        )
        await wait_for(lambda: bool(started), 10, what="the command to start")
        proxy.cut()
        with pytest.raises(DevtuiError, match="box: the command did not finish"):
            await asyncio.wait_for(running, 30)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_jump_host_carries_the_connection(sshd_factory, tmp_path: Path) -> None:
    jump = sshd_factory()
    target = sshd_factory()
    target.authorize(target.user, jump.client_key().with_suffix(".pub").read_text())
    hosts = {
        "bastion": sshd_host(jump),
        "inner": sshd_host(target, identity_file=str(jump.client_key()), jump="bastion"),
    }
    core, prompts, events = make_core(tmp_path, hosts)
    async with core:
        await core.connect("inner")
        assert core.host_state("bastion").state == HostState.CONNECTED
        conn = await core.connection("inner")
        result = await conn.run("echo $SSH_CONNECTION", check=True)
    # The inner sshd saw the connection arrive from the jump host, not from us directly.
    assert str(result.stdout).split()[2] == "127.0.0.1" and str(target.port) in str(result.stdout)
    assert {q.host for q in prompts.questions} == {"bastion", "inner"}
    assert [e.host for e in of_type(events, HostConnected)] == ["bastion", "inner"]
    assert "direct-tcpip" in jump.log_text() or "Accepted" in jump.log_text()


async def test_an_inner_host_only_the_jump_host_can_reach(sshd, tmp_path: Path) -> None:
    # The inner address leads nowhere from this machine (nothing listens there); only the
    # bastion's network maps it to the real sshd, as a private subnet behind a bastion
    # would. Reaching "inner" at all proves the connection went through the bastion.
    hidden = free_port()
    route = {("127.0.0.1", hidden): ("127.0.0.1", sshd.port)}
    async with AsyncsshServer(routes=route) as bastion:
        key = bastion.client_key("jumper")
        hosts = {
            "bastion": {
                "hostname": "127.0.0.1",
                "port": bastion.port,
                "user": "jumper",
                "identity_file": str(key),
            },
            "inner": sshd_host(sshd, port=hidden, jump="bastion"),
            "direct": sshd_host(sshd, port=hidden),  # the same address without the bastion
        }
        core, prompts, _ = make_core(tmp_path, hosts)
        async with core:
            with pytest.raises(ConnectError):
                await core.connect("direct")
            assert bastion.forwarded == []
            await core.connect("inner")
            conn = await core.connection("inner")
            result = await conn.run("echo $SSH_CONNECTION", check=True)
    # (Asked more than once: learning the inner host key takes a first attempt.)
    assert set(bastion.forwarded) == {("127.0.0.1", hidden)}
    # The inner sshd saw the bastion's connection to its real port.
    assert str(result.stdout).split()[2:] == ["127.0.0.1", str(sshd.port)]
    assert [q.address for q in prompts.questions] == [
        f"[127.0.0.1]:{bastion.port}",
        f"[127.0.0.1]:{hidden}",  # the inner host is known by the name the user gave it
    ]


async def test_agent_is_forwarded_only_to_hosts_that_ask_for_it(
    sshd, ssh_agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Forwarding the agent lets the host's root use your keys while you are logged in:
    # off unless the host's config says `forward_agent = true`.
    monkeypatch.setenv("SSH_AUTH_SOCK", str(ssh_agent.socket))
    hosts = {"plain": sshd_host(sshd), "trusted": sshd_host(sshd, forward_agent=True)}
    core, _, _ = make_core(tmp_path, hosts)
    seen: dict[str, tuple[int, str]] = {}
    async with core:
        for name in hosts:
            out: list[bytes] = []
            # `ssh-add -l`: 1 = an agent answered (it holds no keys), 2 = no agent to ask.
            status = await core.run(
                name,
                ["sh", "-c", 'echo "${SSH_AUTH_SOCK:-none}"; ssh-add -l >/dev/null 2>&1'],
                lambda _, b, o=out: o.append(b),
            )
            seen[name] = (status, b"".join(out).decode().strip())
    assert seen["plain"] == (2, "none")
    status, path = seen["trusted"]
    assert status == 1 and path.startswith("/") and path != str(ssh_agent.socket)


async def test_passphrase_key_is_unlocked_once_and_reused(sshd, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret phrase", "-f", str(locked)], check=True
    )
    sshd.authorize(sshd.user, locked.with_suffix(".pub").read_text())
    host = sshd_host(sshd, identity_file=str(locked))
    core, prompts, events = make_core(tmp_path, {"box": host})
    prompts.passphrases = ["s3cret phrase"]
    typed = prompts.passphrase
    typing = 0.5  # seconds the user takes at the prompt

    async def slow_typist(key_path: str) -> str | None:
        await asyncio.sleep(typing)
        return await typed(key_path)

    prompts.passphrase = slow_typist  # type: ignore[method-assign]
    async with core:
        start = time.monotonic()
        status = await core.connect("box")
        took_ms = (time.monotonic() - start) * 1000
        assert status.auth_method == "publickey"
        # Time at the prompt is the user's, not the network's: the connect time leaves out
        # the typing (measured against this very connect, so load cannot blur it).
        assert status.connect_ms is not None and status.connect_ms > 0
        assert status.connect_ms <= took_ms - typing * 1000 * 0.9, (status.connect_ms, took_ms)
        sshd.restart()
        await _reconnected(events, "box")
        await core.connection("box")
    assert prompts.passphrases == []  # asked exactly once, reused for the reconnect
    assert "s3cret" not in (tmp_path / "devtui.log").read_text()
