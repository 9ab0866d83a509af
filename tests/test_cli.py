"""The command line's process set-up."""

from __future__ import annotations

import gc

from service.serving import GC_YOUNG_THRESHOLD, tune_garbage_collector


def test_serving_freezes_start_up_objects_and_enlarges_the_young_generation() -> None:
    thresholds = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
