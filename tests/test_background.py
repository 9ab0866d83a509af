"""The background-loop idiom, without a server: sleep-or-wake, and how a worker stops."""

from __future__ import annotations

import asyncio

from service.background import Worker, finish_or_cancel, sleep_or_wake


async def test_sleep_or_wake_says_whether_the_event_cut_it_short() -> None:
    event = asyncio.Event()
    assert not await sleep_or_wake(event, 0.01)
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await sleep_or_wake(event, 5)


async def test_finish_or_cancel_cancels_only_what_is_late() -> None:
    quick = asyncio.create_task(asyncio.sleep(0))
    slow = asyncio.create_task(asyncio.sleep(5))
    assert not await finish_or_cancel([quick, slow], 0.1)
    assert not quick.cancelled()
    assert slow.cancelled()
    assert await finish_or_cancel([], 0)


class _Looper(Worker):
    def __init__(self, step_s: float) -> None:
        super().__init__("looper")
        self.step_s = step_s
        self.rounds = 0

    async def run(self) -> None:
        while not self.stopping:
            self._wakeup.clear()
            self.rounds += 1
            await asyncio.sleep(self.step_s)  # work that stop does not interrupt
            await self._idle(60)


async def test_a_worker_that_ends_in_time_is_not_cancelled() -> None:
    worker = _Looper(step_s=0.01)
    worker.start()
    await asyncio.sleep(0.05)
    assert worker.is_alive()
    assert await worker.stop(1)
    assert not worker.is_alive()


async def test_a_worker_past_its_timeout_is_cancelled() -> None:
    worker = _Looper(step_s=5)
    worker.start()
    await asyncio.sleep(0)
    assert not await worker.stop(0.05)
    assert not worker.is_alive()


async def test_wake_cuts_an_idle_wait_short_and_pause_only_stops() -> None:
    worker = _Looper(step_s=0)
    worker.start()
    await asyncio.sleep(0.01)
    worker.wake()
    await asyncio.sleep(0.01)
    assert worker.rounds == 2
    asyncio.get_running_loop().call_later(0.01, worker.request_stop)
    assert not await worker._pause(5)
    assert await worker.stop(1)
