"""What a copy tells as it goes and when it ends (progress, results), the SHA-256 of bytes as
they pass, and several small copies at once."""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

_PROGRESS_EVERY = 0.1  # seconds between progress callbacks


@dataclass(frozen=True)
class CopyProgress:
    """Where a copy is: this file (N of M) and all of them."""

    source: str
    target: str
    file_index: int  # 1-based
    file_count: int
    file_done: int  # bytes of this file in the target so far
    file_size: int
    done: int  # bytes of all files
    total: int
    rate: float  # bytes per second sent in this run
    eta: float | None  # seconds left, None before the rate is known
    resumed_from: int  # bytes of this file that a part file already held


@dataclass(frozen=True)
class CopyResult:
    """One file copied (or found already there)."""

    source: str
    target: str
    bytes: int
    seconds: float
    sha256: str | None  # None with verify=False
    resumed_from: int
    sent: int  # bytes that went over the link
    unchanged: bool = False  # the target already had this content


ProgressCallback = Callable[[CopyProgress], None]
FileCallback = Callable[[CopyResult], None]
NoticeCallback = Callable[[str], None]


class Meter:
    """Progress over all files, handed to the callback a few times a second."""

    def __init__(self, callback: ProgressCallback | None, count: int, total: int) -> None:
        self.callback = callback
        self.count = count
        self.total = total
        self.done_before = 0  # bytes of the files finished
        self.sent = 0  # bytes over the link in this run
        self.start = time.monotonic()
        self.last = 0.0

    def report(
        self, source: str, target: str, index: int, done: int, size: int, resumed: int, force: bool
    ) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self.last < _PROGRESS_EVERY:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-6)
        rate = self.sent / elapsed
        all_done = self.done_before + done
        eta = (self.total - all_done) / rate if rate > 0 else None
        self.callback(
            CopyProgress(
                source,
                target,
                index,
                self.count,
                done,
                size,
                all_done,
                self.total,
                rate,
                eta,
                resumed,
            )
        )


class StreamHash:
    """SHA-256 of the bytes as they pass, in order. They are hashed right here, on the event
    loop: handing each 256 KiB to a thread (hashlib lets go of the GIL) measured slower, the
    handoff and the GIL's back and forth costing more than the hash (512 MiB up on loopback,
    the two alternating in one process, medians of 5: 1.80 s with a thread, 1.47 s here;
    down 1.51 s and 1.46 s). A resumed copy's prefix
    is read from disk and hashed in a thread while the copy starts; passing bytes queue
    behind it there until it is done."""

    _QUEUED = 32  # chunks waiting at most (8 MiB): a slow hash slows the copy, not memory

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pool: ThreadPoolExecutor | None = None
        self._queued: collections.deque[Future[None]] = collections.deque()

    def feed_file(self, path: str, end: int) -> None:
        """The first `end` bytes of a local file (a resumed copy's prefix)."""

        def read() -> None:
            with open(path, "rb") as f:
                left = end
                while left > 0 and (data := f.read(min(left, 1 << 20))):
                    self._digest.update(data)
                    left -= len(data)

        self._submit(read)

    def _submit(self, job: Callable[[], None]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="devtui-sha256")
        self._queued.append(self._pool.submit(job))

    async def feed(self, data: bytes) -> None:
        while self._queued and self._queued[0].done():
            self._queued.popleft().result()
        if not self._queued:  # nothing ahead of these bytes
            self._digest.update(data)
            return
        self._submit(functools.partial(self._digest.update, data))
        if len(self._queued) > self._QUEUED:
            await asyncio.wrap_future(self._queued.popleft())

    async def hexdigest(self) -> str:
        for job in self._queued:
            await asyncio.wrap_future(job)
        self._queued.clear()
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


SMALL_FILE = 1024 * 1024  # files below this go several at a time
IN_FLIGHT = 8  # small files copied at once: each is a dozen round trips, mostly waiting


async def run_copies(
    jobs: Sequence[tuple[int, Callable[[], Awaitable[CopyResult]]]],
    on_file: FileCallback | None = None,
) -> list[CopyResult]:
    """Run copy jobs (size, job) in order: small files up to IN_FLIGHT at once, a large one
    alone (it fills the link by itself). The first error cancels the rest and is raised."""
    results: dict[int, CopyResult] = {}
    running: dict[asyncio.Future[CopyResult], int] = {}

    def done(number: int, result: CopyResult) -> None:
        results[number] = result
        if on_file is not None:
            on_file(result)

    async def settle(until: int) -> None:
        while len(running) > until:
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                done(running.pop(task), task.result())

    try:
        for number, (size, job) in enumerate(jobs):
            if size >= SMALL_FILE:
                await settle(0)
                done(number, await job())
            else:
                await settle(IN_FLIGHT - 1)
                running[asyncio.ensure_future(job())] = number
        await settle(0)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
    return [results[number] for number in range(len(jobs))]
