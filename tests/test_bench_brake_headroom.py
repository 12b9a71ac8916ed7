"""bench/brake_headroom.py: the policy's brake alone is scaled, and reruns replace their own rows."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import brake_headroom  # noqa: E402


def test_braking_less_scales_the_brake_of_every_decided_action():
    agent = SimpleNamespace(decide=lambda obs: np.tile(np.float32([0.5, 0.3, 0.4]), (len(obs), 1)))
    actions = brake_headroom.braking_less(agent, 0.8).decide(np.zeros((2, 4)))
    np.testing.assert_allclose(actions, [[0.5, 0.3, 0.32], [0.5, 0.3, 0.32]], rtol=1e-6)


def test_rows_measured_again_replace_theirs_and_others_stay(tmp_path):
    earlier = tmp_path / "brake_headroom_50.json"
    earlier.write_text(json.dumps([{"run": "a", "brake_scale": 1.0, "raw_mean": 1},
                                   {"run": "a", "brake_scale": 0.8, "raw_mean": 2}]))
    rows = brake_headroom.with_earlier_rows([{"run": "a", "brake_scale": 0.8, "raw_mean": 3},
                                             {"run": "b", "brake_scale": 1.0, "raw_mean": 4}], earlier)
    assert [(r["run"], r["brake_scale"], r["raw_mean"]) for r in rows] == [("a", 1.0, 1), ("a", 0.8, 3), ("b", 1.0, 4)]
