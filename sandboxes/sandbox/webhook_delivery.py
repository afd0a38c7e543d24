"""The webhook delivery machinery the sandboxes share: a background worker fed from any thread, the count of
deliveries in flight, ``hold()``/``release()``, and the drop/duplicate/delay faults.

``DeliveryQueue`` is the part every dispatcher has; ``DeliveryLoop`` adds an asyncio worker that sends first
attempts with the faults applied (and reorders within ``reorder_window``). Each platform keeps its delivery
shape, signing, retry policy and records.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

__all__ = ["DeliveryFaults", "DeliveryLoop", "DeliveryQueue", "ReorderableFaults"]


@dataclass
class DeliveryFaults:
    drop_next: int = 0  # lose the next N deliveries outright
    duplicate_next: int = 0  # send the next N deliveries twice
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay: float = 0.0  # seconds before each first attempt


@dataclass
class ReorderableFaults(DeliveryFaults):
    reorder_window: float = 0.0  # gather deliveries this long, then send them shuffled


Item = TypeVar("Item")
Faults = TypeVar("Faults", bound=DeliveryFaults)
LoopFaults = TypeVar("LoopFaults", bound=ReorderableFaults)


class DeliveryQueue(Generic[Item, Faults]):
    """Deliveries in flight, held back on demand, for one worker thread that a subclass runs."""

    thread_name = "sandbox-webhooks"

    def __init__(self, faults: Faults, *, seed: int) -> None:
        self.faults = faults
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._pending = 0
        self._held: list[Item] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # --- worker hooks ----------------------------------------------------------------------------------

    def _work(self) -> None:
        """The worker thread's body; sets ``_ready`` once it accepts deliveries."""
        raise NotImplementedError

    def _submit(self, deliveries: list[Item]) -> None:
        """Hand deliveries to the running worker."""
        raise NotImplementedError

    def _stop_worker(self, thread: threading.Thread) -> None:
        """Make the worker return, and wait for it."""
        raise NotImplementedError

    def _admit(self, deliveries: Sequence[Item]) -> list[Item]:
        """The deliveries to queue (called under the lock)."""
        return list(deliveries)

    def _forget_in_flight(self) -> None:
        """Drop what the stopped worker had in flight (called under the lock)."""
        self._pending = 0
        self._held = None

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._ready.clear()
            self._thread = threading.Thread(target=self._work, name=self.thread_name, daemon=True)
            self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop_worker(thread)
        with self._lock:
            self._forget_in_flight()

    # --- public API ------------------------------------------------------------------------------------

    def enqueue(self, deliveries: Sequence[Item]) -> int:
        """Queue first attempts; returns how many were queued."""
        if not deliveries:
            return 0
        self.start()
        with self._lock:
            fresh = self._admit(deliveries)
            self._pending += len(fresh)
            if self._held is not None:
                self._held.extend(fresh)
                return len(fresh)
        self._submit(fresh)
        return len(fresh)

    def hold(self) -> None:
        """Buffer new deliveries until ``release`` (lets a test build a batch, e.g. to reorder it)."""
        with self._lock:
            if self._held is None:
                self._held = []

    def release(self, *, shuffle: bool = False) -> None:
        with self._lock:
            held, self._held = self._held or [], None
        if shuffle:
            self._rng.shuffle(held)
        if held:
            self._submit(held)

    def take_held(self) -> list[Item]:
        """The held deliveries, handed to the caller instead of sent (a test delivers them in its own order);
        holding stops."""
        with self._lock:
            held, self._held = self._held or [], None
            self._pending -= len(held)
        return held

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every enqueued delivery finished (delivered, dropped or given up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.01)
        return False

    # --- for the worker --------------------------------------------------------------------------------

    def _roll(self, counter: str, rate: float) -> bool:
        """Whether a fault fires: ``faults.<counter>`` counts down first, then ``rate`` is drawn (seeded)."""
        with self._lock:
            if getattr(self.faults, counter) > 0:
                setattr(self.faults, counter, getattr(self.faults, counter) - 1)
                return True
            return rate > 0 and self._rng.random() < rate

    def _done(self, n: int = 1) -> None:
        with self._lock:
            self._pending -= n


class DeliveryLoop(DeliveryQueue[Item, LoopFaults]):
    """An asyncio loop in the worker thread sends first attempts; a subclass makes each ``_attempt``."""

    def __init__(self, faults: LoopFaults, *, seed: int, timeout: float, connect_timeout: float) -> None:
        super().__init__(faults, seed=seed)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Item] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- platform hooks --------------------------------------------------------------------------------

    async def _attempt(self, client: httpx.AsyncClient, d: Item) -> None:
        """Send one attempt, record it, and either retry (``_spawn(_delayed(...))``) or call ``_done``."""
        raise NotImplementedError

    def _record_dropped(self, d: Item) -> None:
        raise NotImplementedError

    def _duplicate_of(self, d: Item) -> Item:
        raise NotImplementedError

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout))

    # --- worker ----------------------------------------------------------------------------------------

    def _work(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._queue = asyncio.Queue()
        client = self._client()
        main = loop.create_task(self._run(client))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            main.cancel()
            for task in list(self._tasks):
                task.cancel()
            loop.run_until_complete(asyncio.gather(main, *self._tasks, return_exceptions=True))
            loop.run_until_complete(client.aclose())
            loop.close()
            self._loop = None

    def _submit(self, deliveries: list[Item]) -> None:
        loop, queue = self._loop, self._queue
        assert loop is not None and queue is not None
        for d in deliveries:
            loop.call_soon_threadsafe(queue.put_nowait, d)

    def _stop_worker(self, thread: threading.Thread) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, client: httpx.AsyncClient) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            window = self.faults.reorder_window
            if window > 0:
                deadline = loop.time() + window
                while (remaining := deadline - loop.time()) > 0:
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                self._rng.shuffle(batch)
            for d in batch:
                await self._first_attempt(client, d)

    async def _first_attempt(self, client: httpx.AsyncClient, d: Item) -> None:
        if self._roll("drop_next", self.faults.drop_rate):
            self._record_dropped(d)
            self._done()
            return
        copies = [d]
        if self._roll("duplicate_next", self.faults.duplicate_rate):
            dup = self._duplicate_of(d)
            with self._lock:
                self._pending += 1
            copies.append(dup)
        for c in copies:
            if self.faults.delay > 0:
                self._spawn(self._delayed(client, c, self.faults.delay))
            else:
                await self._attempt(client, c)

    async def _delayed(self, client: httpx.AsyncClient, d: Item, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._attempt(client, d)
