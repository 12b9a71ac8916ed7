"""bench/speed_probe.py: the ridge probe scores held-out rows, high where the inputs carry the target."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import speed_probe  # noqa: E402


def test_ridge_probe_scores_held_out_rows_by_what_the_inputs_carry():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    speed = 30 + 10 * x[:, 0] - 4 * x[:, 3] + rng.normal(scale=0.5, size=400)
    train = np.arange(400) < 300
    r2, mae = speed_probe.ridge_score(x, speed, train, ridge=1.0)
    assert r2 > 0.99 and mae < 1.0  # the speed is linear in the inputs: the probe finds it on unseen rows
    r2_noise, mae_noise = speed_probe.ridge_score(rng.normal(size=(400, 5)), speed, train, ridge=1.0)
    assert r2_noise < 0.1 and mae_noise > 5  # inputs that do not carry the speed cannot predict it
    x_shifted = x.copy()
    x_shifted[~train] += 100.0  # unlike the training rows: the score is on the held-out rows only
    assert speed_probe.ridge_score(x_shifted, speed, train, ridge=1.0)[0] < 0
