"""Herald's background loops share one idiom: a :class:`Worker` with ``start()`` and ``stop()``.

The dispatcher's claim loop, its batch runners, the outcome writer, the wake-up listener,
retention and the heartbeat each run one task. ``start()`` creates it; ``stop()`` sets the
worker's stop event (which also wakes it), lets the task end by itself for the worker's
``stop_timeout_s`` and cancels it past that, so a loop that must not be interrupted (a purge
batch, a flush of outcomes) gets its time, and one that may stop anywhere uses ``0``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def sleep_or_wake(event: asyncio.Event, timeout_s: float) -> bool:
    """Sleep ``timeout_s`` seconds, or less if ``event`` is set; returns whether it was."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def finish_or_cancel(tasks: Iterable[asyncio.Task[None]], timeout_s: float) -> bool:
    """Let ``tasks`` finish for ``timeout_s``, then cancel the rest and wait for them to end.

    Returns whether every task ended by itself.
    """
    pending = set(tasks)
    if not pending:
        return True
    late = (await asyncio.wait(pending, timeout=timeout_s))[1] if timeout_s > 0 else pending
    late = {task for task in late if not task.done()}
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    return not late


class Worker:
    """One background task: ``run()`` loops until :attr:`stopping`; ``start()`` once, ``stop()`` once."""

    stop_timeout_s: float = 0.0
    """How long ``stop()`` lets the loop end by itself before cancelling it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop_event = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """The loop; it should return soon after :attr:`stopping` becomes true."""
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` (or ``request_stop()``) was called."""
        return self._stop_event.is_set()

    def start(self) -> None:
        """Start :meth:`run` as a task named ``herald-<name>``."""
        self._task = asyncio.create_task(self.run(), name=f"herald-{self.name}")

    def is_alive(self) -> bool:
        """Whether the task was started and has not ended."""
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Cut the loop's current idle wait short."""
        self._wakeup.set()

    def request_stop(self) -> None:
        """Ask the loop to end, without waiting for it."""
        self._stop_event.set()
        self._wakeup.set()

    async def stop(self, timeout_s: float | None = None) -> bool:
        """Ask the loop to end, wait ``timeout_s`` (default ``stop_timeout_s``), then cancel it.

        Returns whether it ended by itself.
        """
        self.request_stop()
        if self._task is None:
            return True
        return await finish_or_cancel([self._task], self.stop_timeout_s if timeout_s is None else timeout_s)

    async def _idle(self, timeout_s: float) -> None:
        """Wait until woken (:meth:`wake`, stop) or ``timeout_s`` passed.

        The wake-up stays set: the loop clears it where a round starts, so a wake-up that comes
        during the round's work is not lost.
        """
        await sleep_or_wake(self._wakeup, timeout_s)

    async def _pause(self, timeout_s: float) -> bool:
        """Wait ``timeout_s`` unless stopped meanwhile (wake-ups do not cut it short).

        Returns whether the loop should go on.
        """
        return not await sleep_or_wake(self._stop_event, timeout_s)
