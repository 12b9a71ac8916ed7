"""bench/failures.py: each unfinished test episode lands in the class that says what went wrong."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import failures  # noqa: E402


def episode(lap: bool, offtrack: int, raw: float, skipped: int = 0) -> dict:
    return {"lap_complete": lap, "offtrack_frames": offtrack, "raw_return": raw, "tiles_skipped": skipped}


def test_unfinished_episodes_are_told_apart_by_road_and_progress():
    assert failures.failure_class(episode(True, 30, 880.0)) == "finished"  # a lap is a lap, excursions or not
    assert failures.failure_class(episode(False, 20, 890.0)) == "left the road"
    assert failures.failure_class(episode(False, 19, 890.0)) == "too slow"
    assert failures.failure_class(episode(False, 0, 424.0)) == "stuck"
    assert failures.failure_class(episode(False, 3, 893.0, skipped=2)) == "skipped tiles"  # a corner cut
    assert failures.failure_class(episode(False, 25, 893.0, skipped=2)) == "left the road"
