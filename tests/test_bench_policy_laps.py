"""bench/policy_laps.py: a run's own shoved laps, recorded in the demo format as the policy drove them."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import demos  # noqa: E402
import policy_laps  # noqa: E402


class Steady:
    """Stands in for an Agent: steers a little left at half gas, and keeps every frame it was shown."""

    def __init__(self):
        self.frames, self.resets = [], 0

    def reset(self):
        self.resets += 1

    def act(self, frame):
        self.frames.append(frame.copy())
        return np.array([0.1, 0.5, 0.0], np.float32)


def test_the_policy_drives_the_recorded_laps_and_the_shoves_override_it(tmp_path, monkeypatch):
    agent = Steady()
    monkeypatch.setattr(policy_laps.Agent, "load", staticmethod(lambda run: agent))
    monkeypatch.chdir(tmp_path)
    recorded = policy_laps.record_policy_laps("some_run", "own", 3, 1, shove=0.05)
    assert len(recorded) == 1 and agent.resets == 1
    episode = demos.load_dataset(tmp_path / "data" / "own")[0]
    assert episode.seed == 3 and episode.source == ""  # no source: neither a person nor the autopilot drove
    # The stored frames are the ones the policy saw, and its actions are the recorded ones.
    assert np.array_equal(np.stack(agent.frames), episode.observations[:-1])
    assert np.allclose(episode.actions, [0.1, 0.5, 0.0])
    shoved = ~np.isclose(episode.executed_actions, episode.actions).all(axis=1)
    assert shoved.any() and not shoved.all()  # test --shove's shoves, as the car executed them
    # A second recording into the dataset skips the tracks it holds.
    assert policy_laps.record_policy_laps("some_run", "own", 3, 1, shove=0.05) == []
