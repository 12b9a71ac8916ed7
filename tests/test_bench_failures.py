"""bench/failures.py: each unfinished test episode lands in the class that says what went wrong."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import failures  # noqa: E402


def episode(lap: bool, offtrack: int, raw: float) -> dict:
    return {"lap_complete": lap, "offtrack_frames": offtrack, "raw_return": raw}


def test_unfinished_episodes_are_told_apart_by_road_and_progress():
    assert failures.failure_class(episode(True, 30, 880.0)) == "finished"  # a lap is a lap, excursions or not
    assert failures.failure_class(episode(False, 20, 890.0)) == "left the road"
    assert failures.failure_class(episode(False, 19, 890.0)) == "too slow"
    assert failures.failure_class(episode(False, 0, 424.0)) == "stuck"
