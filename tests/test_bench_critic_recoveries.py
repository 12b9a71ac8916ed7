"""bench/critic_recoveries.py: the comparison counts where the critic values the recorded action above the run's own."""
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import critic_recoveries  # noqa: E402


class SteerToward:
    """Stands in for an ActorCritic: features are the observation; the policy steers straight; both critic members
    value steering by its distance from the steering the feature asks for (raw return = 10 * Q)."""

    reward_scale = 0.1

    def encoder(self, obs):
        return obs.float()

    def policy(self, features):
        return torch.tensor([[0.0, 0.5, 0.0]]).expand(len(features), 3)

    def critic(self, features, action):
        q = -(action[:, 0] - features[:, 0]).abs()
        return torch.stack([q, q + 1])  # the min over the ensemble is the first


def test_the_recorded_action_counts_where_the_critic_values_it_higher():
    wanted = np.array([[0.8], [-0.6], [0.0], [0.05]], np.float32)  # the steering each state's critic values most
    recorded = np.array([[0.8, 0.0, 0.0], [0.6, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    result = critic_recoveries.compare(SimpleNamespace(model=SteerToward()), {"obs": wanted, "action": recorded})
    # State 0: the recorded steering is the wanted one; 1: further from it than straight; 2: straight is wanted;
    # 3: straight is as near as the recorded action (a tie is not "higher").
    assert result["states"] == 4 and result["recorded_above_own"] == 0.25
    assert result["recorded_steer_above_own"] == 0.25  # the same with the run's own pedals
    assert np.isclose(result["q_recorded_minus_own"], 10 * np.mean([0.8, -0.6, -0.5, 0.0]), atol=1e-5)
    assert np.isclose(result["steer_gap"], np.mean([0.8, 0.6, 0.5, 0.0]))
    # Over the steering grid (-1 to 1 by 0.25) the values span from the grid point nearest the wanted steering
    # (0.75, -0.5, 0, 0) to the farther end.
    assert np.isclose(result["q_steer_range"], 10 * np.mean([1.8 - 0.05, 1.6 - 0.1, 1.0, 1.05 - 0.05]), atol=1e-4)
