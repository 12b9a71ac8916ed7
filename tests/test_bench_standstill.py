"""bench/standstill.py: the probe stops where the car has stood still long enough, and only there."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import standstill  # noqa: E402


class Pedal:
    """Stands in for an Agent: one fixed action; the observation is the last frame it was shown."""

    def __init__(self, action):
        self.action, self.stacker, self.frame = np.array(action, np.float32), self, None

    def reset(self):
        self.frame = None

    def act(self, frame):
        self.frame = frame
        return self.action

    def observation(self):
        return self.frame


def test_drive_until_still_finds_a_standing_car_and_not_a_moving_one():
    found = standstill.drive_until_still(Pedal([0.0, 0.0, 1.0]), track=3, frames=30)  # braking from the start
    assert found is not None
    observation, frame = found
    assert frame == 29 and observation.shape == (96, 96, 3)  # the 30th still frame in a row
    assert standstill.drive_until_still(Pedal([0.0, 1.0, 0.0]), track=3, frames=30) is None  # full gas never stands
