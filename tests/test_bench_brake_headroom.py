"""bench/brake_headroom.py: the policy's brake alone is scaled, and reruns replace their own rows."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import brake_headroom  # noqa: E402
from env import TEST_SEED_START, VALIDATION_SEED_START  # noqa: E402


def test_each_scale_loads_the_run_braking_so(monkeypatch):
    loaded = []
    monkeypatch.setattr(brake_headroom.Agent, "load",
                        lambda run, brake_scale, gas_scale, brake_deadzone, steer_scale:
                        loaded.append((run, brake_scale, gas_scale, brake_deadzone, steer_scale)))
    episode = {"raw_return": 900.0, "penalized_return": 900.0, "offtrack_frames": 0, "lap_complete": True,
               "frames": 760}
    driven = []
    monkeypatch.setattr(brake_headroom, "evaluate",
                        lambda agent, seeds, progress: driven.append(seeds) or [episode] * len(seeds))
    row = brake_headroom.measure("run", 0.8, 3)
    assert loaded == [("run", 0.8, 1.0, 0.0, 1.0)] and row["brake_scale"] == 0.8
    assert row["laps"] == 3 and row["frames_per_lap"] == 760
    brake_headroom.measure("run", 0.8, 2, tracks="validation")  # the tracks train_rl's brake trial validates on
    assert driven == [[TEST_SEED_START + k for k in range(3)], [VALIDATION_SEED_START, VALIDATION_SEED_START + 1]]


def test_rows_measured_again_replace_theirs_and_others_stay(tmp_path):
    earlier = tmp_path / "brake_headroom_50.json"
    earlier.write_text(json.dumps([{"run": "a", "brake_scale": 1.0, "raw_mean": 1},
                                   {"run": "a", "brake_scale": 0.8, "raw_mean": 2}]))
    rows = brake_headroom.with_earlier_rows([{"run": "a", "brake_scale": 0.8, "raw_mean": 3},
                                             {"run": "b", "brake_scale": 1.0, "raw_mean": 4}], earlier)
    assert [(r["run"], r["brake_scale"], r["raw_mean"]) for r in rows] == [("a", 1.0, 1), ("a", 0.8, 3), ("b", 1.0, 4)]
