"""bench/spread.py: per action, the policy's spread and its average action on the states it drove through."""
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import spread  # noqa: E402
from agent import Agent  # noqa: E402
from env import EnvConfig  # noqa: E402
from networks import OLD_SPREAD_LIMIT, ActorCritic, ModelConfig  # noqa: E402

ENV = EnvConfig(obs_size=48, frame_stack=2)
TINY = ModelConfig(encoder="small", feature_dim=16, hidden_dim=32, bc_actor=True)


def saturated_brake_model(spread_limit: float) -> ActorCritic:
    """Both actors: steer and gas centred, the brake's mean far below its bound with a spread of e^1.4."""
    model = ActorCritic(ENV.obs_shape, replace(TINY, spread_limit=spread_limit))
    for actor in (model.actor, model.bc_actor):
        with torch.no_grad():
            actor.net[-1].weight.zero_()
            actor.net[-1].bias.copy_(torch.tensor([0.0, 0.0, -6.0, -3.0, -3.0, 1.4]))
    return model


def test_drive_collects_one_observation_per_decision():
    agent = Agent(saturated_brake_model(1.0), ENV)
    observations, summary = spread.drive(agent, track=3, frames=10)
    assert observations.shape == (5, *ENV.obs_shape)  # action repeat 2
    assert summary["tiles"] >= 0 and summary["speed"] >= 0


@pytest.mark.parametrize("limit", [OLD_SPREAD_LIMIT, 1.0])
def test_rows_show_the_saturated_brake_braking_on_average_only_with_a_wide_spread(limit):
    observations = np.random.default_rng(0).integers(0, 256, (4, *ENV.obs_shape), dtype=np.uint8)
    rows = {(r["actor"], r["action"]): r for r in spread.spread_rows(saturated_brake_model(limit), observations)}
    assert set(rows) == {(a, b) for a in ("policy", "frozen BC") for b in ("steer", "gas", "brake")}
    brake = rows[("policy", "brake")]
    assert brake["spread"] == pytest.approx(min(np.exp(1.4), limit), rel=1e-4)
    assert brake["tanh_mean"] < 1e-4 and (brake["average"] > 0.03) == (limit == OLD_SPREAD_LIMIT)
    assert rows[("frozen BC", "brake")] == {**brake, "actor": "frozen BC"}
