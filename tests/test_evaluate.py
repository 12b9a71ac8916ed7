"""evaluate.py's summary: laps lost to road tiles left behind are counted apart, and shown."""
from evaluate import format_table, summarize


def test_laps_lost_to_skipped_tiles_are_counted_and_shown():
    def episode(lap: bool, skipped: int) -> dict:
        return {"raw_return": 890.0, "penalized_return": 890.0, "offtrack_frames": 0, "lap_complete": lap,
                "frames": 1000, "tiles_skipped": skipped}

    summary = summarize([episode(True, 0), episode(False, 2), episode(False, 0)])
    assert summary["laps_completed"] == 1 and summary["laps_lost_to_skipped_tiles"] == 1
    assert "laps completed: 1/3 (1 lost to road tiles left behind unvisited)" in format_table(summary)
    older = summarize([{key: value for key, value in episode(False, 2).items() if key != "tiles_skipped"}])
    assert "laps_lost_to_skipped_tiles" not in older  # results saved before it was recorded
    assert format_table(older).splitlines()[-1] == "laps completed: 0/1"
