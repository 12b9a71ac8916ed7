"""bench/expert.py --shove: the autopilot meets `test --shove`'s shoves at the same agent steps."""
import importlib.util
from pathlib import Path

import numpy as np

from evaluate import SHOVE_HOLD_FRAMES, Shoves
from fast_car_racing import CarRacingFast

# bench/expert.py would shadow the root's expert.py on sys.path: load it under another name.
_spec = importlib.util.spec_from_file_location("bench_expert",
                                               Path(__file__).resolve().parents[1] / "bench" / "expert.py")
bench_expert = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_expert)


def test_autopilot_is_shoved_at_the_tests_agent_steps(monkeypatch):
    executed = []
    step_physics = CarRacingFast.step_physics
    monkeypatch.setattr(CarRacingFast, "step_physics", lambda self, action: executed.append(np.array(action)) or
                        step_physics(self, action))
    frames = 120
    result = bench_expert.drive(CarRacingFast(), bench_expert.Autopilot(), seed=5, max_frames=frames, noise=0.0,
                                shove=0.1)
    reference = Shoves(5, 0.1, action_repeat=2)  # what `test --shove 0.1` does on track 5, one draw per agent step
    marker = np.full(3, 9.0, np.float32)
    expected = [reference.apply(marker) for _ in range(frames // 2)]
    for step, push in enumerate(expected):
        for frame in executed[2 * step:2 * step + 2]:
            if push is marker:
                assert not (abs(frame[0]) == 1.0 and frame[1] == 0.0 and frame[2] == 0.0)  # the autopilot drives
            else:
                np.testing.assert_array_equal(frame, push)
    shoved_steps = sum(push is not marker for push in expected)
    held = SHOVE_HOLD_FRAMES // 2  # agent steps per shove; the last one may be cut off by the episode's end
    assert (result["shoves"] == reference.shoves > 1
            and (reference.shoves - 1) * held < shoved_steps <= reference.shoves * held)
    assert 0 <= result["recoveries"] <= result["excursions"]
