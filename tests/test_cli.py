"""The command line's process set-up."""

from __future__ import annotations

import gc

from service.serving import GC_YOUNG_THRESHOLD, pause_garbage_collector, tune_garbage_collector


def test_serving_freezes_start_up_objects_and_enlarges_the_young_generation() -> None:
    thresholds = gc.get_threshold()
    try:
        pause_garbage_collector()
        assert not gc.isenabled()
        tune_garbage_collector()
        assert gc.isenabled()
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*thresholds)
