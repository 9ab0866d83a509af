"""The dispatcher's slot bookkeeping, without a server: bounds per claim, windows, the refill rule."""

from __future__ import annotations

from uuid import UUID, uuid4

from service.delivery.slots import ClaimBounds, Slots


def _slow(slots: Slots, subscriber: UUID) -> None:
    # Requests of 50 ms lately: slots, not the CPU, bound the rate.
    for _ in range(100):
        _claim(slots, [subscriber])
        slots.release(subscriber, duration_s=0.05)


def _claim(slots: Slots, subscribers: list[UUID]) -> bool:
    bounds = slots.bounds()
    assert bounds is not None
    return slots.claimed(bounds, subscribers)


def test_a_cut_subscriber_is_claimed_for_soon_after_a_slot_frees_and_at_once_after_a_quarter() -> None:
    slots = Slots(total=64, per_subscriber=16, initial_window=16)
    subscriber, other = uuid4(), uuid4()
    _slow(slots, uuid4())
    _claim(slots, [subscriber] * 16 + [other] * 2)  # all the room it had: cut
    assert not slots.worth_claiming([subscriber])
    assert not slots.refill_soon(subscriber)
    worth = [slots.release(subscriber) for _ in range(4)]
    assert worth == [False, False, False, True]  # 12 of 16 busy: 4 slots free
    assert slots.refill_soon(subscriber)
    assert not slots.release(other)  # not cut: its freed slots need no claim
    assert not slots.refill_soon(other)


def test_a_bound_of_one_is_refilled_at_once() -> None:
    slots = Slots(total=64, per_subscriber=1)
    subscriber = uuid4()
    _claim(slots, [subscriber])
    assert not slots.worth_claiming([subscriber])
    assert slots.release(subscriber)


def test_a_claim_cut_by_the_process_bound_is_repeated_soon_after_a_slot_frees() -> None:
    slots = Slots(total=8, per_subscriber=16, initial_window=16)
    subscribers = [uuid4() for _ in range(8)]
    _slow(slots, uuid4())
    _claim(slots, subscribers)
    assert slots.free == 0
    assert not slots.release(subscribers[0])  # 1 of 8 free: soon
    assert slots.refill_soon(subscribers[0])
    assert slots.release(subscribers[1])  # 2 of 8 free: at once


def test_a_claim_that_got_less_than_it_could_take_cuts_nothing() -> None:
    slots = Slots(total=8, per_subscriber=4)
    subscriber = uuid4()
    assert not _claim(slots, [subscriber] * 3)
    assert not slots.release(subscriber)
    assert not slots.release(subscriber)


def test_every_slot_taken_means_no_claim_and_any_freed_quarter_is_worth_one() -> None:
    slots = Slots(total=4, per_subscriber=4)
    subscriber = uuid4()
    _claim(slots, [subscriber] * 3)
    _claim(slots, [uuid4()])
    assert slots.bounds() is None  # the process is cut: nothing left to claim with
    assert slots.release(subscriber)


def test_bounds_count_what_each_subscriber_holds_and_a_held_one_as_full() -> None:
    slots = Slots(total=16, per_subscriber=4)
    busy, held = uuid4(), uuid4()
    _claim(slots, [busy, busy])
    slots.hold(held)
    bounds = slots.bounds()
    assert bounds is not None
    assert bounds.limit == 14
    assert bounds.busy == {busy: 2, held: 4}
    slots.claimed(bounds, [])
    assert slots.by_subscriber() == {busy: 2}
    slots.unhold(held)
    assert slots.bounds() == ClaimBounds(14, {busy: 2}, {})


def test_a_subscriber_full_before_the_claim_is_cut_though_it_got_nothing() -> None:
    slots = Slots(total=16, per_subscriber=8, initial_window=8)
    subscriber = uuid4()
    _slow(slots, uuid4())
    _claim(slots, [subscriber] * 4)
    _claim(slots, [subscriber] * 4)  # now full
    _claim(slots, [])  # it could get nothing: still cut
    assert not slots.release(subscriber)
    assert slots.refill_soon(subscriber)
    assert slots.release(subscriber)  # 6 of 8 busy


def test_fast_requests_make_no_claim_before_a_quarter_is_free() -> None:
    slots = Slots(total=64, per_subscriber=16, initial_window=16)
    subscriber = uuid4()
    _claim(slots, [subscriber] * 16)
    assert not slots.release(subscriber, duration_s=0.001)
    assert not slots.refill_soon(subscriber)


def test_a_window_starts_at_one_widens_with_fast_successes_and_halves_on_failures() -> None:
    slots = Slots(total=64, per_subscriber=16, timeout_s=4.0)
    subscriber = uuid4()
    assert slots.window(subscriber) == 1
    for expected in (2, 3, 4):
        _claim(slots, [subscriber])
        slots.release(subscriber, duration_s=0.01)  # fast: under a quarter of the timeout
        assert slots.window(subscriber) == expected
    _claim(slots, [subscriber])
    slots.release(subscriber, duration_s=2.0)  # a slow success leaves it
    assert slots.window(subscriber) == 4
    bounds = slots.bounds()
    assert bounds is not None
    assert bounds.windows == {subscriber: 4}
    for expected in (2, 1, 1):
        _claim(slots, [subscriber])
        slots.release(subscriber, failed=True)
        assert slots.window(subscriber) == expected
    assert slots.bounds() == ClaimBounds(64, {}, {})  # back at the initial window: nothing to pass


def test_slots_freed_while_a_claim_runs_are_noticed_when_it_reports() -> None:
    slots = Slots(total=4, per_subscriber=4)
    first = [uuid4() for _ in range(4)]
    _claim(slots, first)
    slots.release(first[0])
    bounds = slots.bounds()  # one slot: the claim will take it
    assert bounds is not None
    assert bounds.limit == 1
    assert slots.release(first[1])  # during the claim the process counts as cut
    assert slots.claimed(bounds, [uuid4()])  # filled its one slot: cut, and one more is free
    assert slots.in_use == 3
