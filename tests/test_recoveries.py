"""Self-imitation of recoveries: which training steps are kept, and that the actor learns them."""
from dataclasses import replace

import numpy as np
import torch

from recoveries import RecoveryMemory
from rl import RLConfig, SACLearner
from test_rl import TINY, feature_batch, fine_tuning_model

ON, OFF = False, True


def drive(memory: RecoveryMemory, off_road_after: list[bool], chosen: list[bool] | None = None,
          done: list[bool] | None = None) -> None:
    """One environment's steps; step t's features are all t (so kept steps can be read back)."""
    for t, off in enumerate(off_road_after):
        memory.add(np.full((1, 4), t, np.float32), np.full((1, 3), t / 10, np.float32),
                   np.array([True if chosen is None else chosen[t]]), np.array([off]),
                   np.array([False if done is None else done[t]]))


def kept_steps(memory: RecoveryMemory) -> list[int]:
    return sorted(int(f[0]) for f in memory.features[:len(memory)])


def test_a_recovery_keeps_the_policys_actions_from_off_the_road_until_back():
    memory = RecoveryMemory(1, 4, window=5)
    # On the road, pushed off at step 1 (a shove: not the policy's), off through step 3, back after step 4.
    drive(memory, [ON, OFF, OFF, OFF, ON, ON], chosen=[True, False, False, True, True, True])
    assert kept_steps(memory) == [3, 4]  # steps 2 (shoved) and 0, 1, 5 (on the road) are not kept
    assert memory.recoveries == 1
    assert np.allclose(memory.actions[:2], [[0.3] * 3, [0.4] * 3])


def test_excursions_longer_than_the_window_or_ending_the_episode_keep_nothing():
    slow = RecoveryMemory(1, 4, window=3)
    drive(slow, [OFF, OFF, OFF, OFF, OFF, ON])  # back after 5 steps off the road
    assert len(slow) == 0 and slow.recoveries == 0
    ended = RecoveryMemory(1, 4, window=3)
    drive(ended, [OFF, OFF, ON], done=[False, True, False])  # the episode ended off the road
    assert len(ended) == 0
    drive(ended, [OFF, ON])  # the next episode's recovery is kept on its own
    assert kept_steps(ended) == [1]


def test_recovery_loss_pulls_the_deterministic_action_toward_the_kept_actions():
    rng = np.random.default_rng(0)
    batch = feature_batch(rng, n=32, demo=False)  # online rows only: the BC term has nothing to fit
    states = torch.as_tensor(rng.uniform(-1, 1, (16, TINY.feature_dim)).astype(np.float32))
    actions = torch.tensor([[-0.8, 0.3, 0.0]]).repeat(16, 1)

    def distance(imitate: bool) -> float:
        model = fine_tuning_model(seed=3, selection=False)
        learner = SACLearner(model, replace(RLConfig(), train_encoder=False, actor_lr=1e-3), torch.device("cpu"))
        for _ in range(60):
            learner.update(batch, bc_weight=10.0, recovered=(states.numpy(), actions.numpy()) if imitate else None)
        with torch.no_grad():
            return float((model.actor.deterministic(states) - actions).norm(dim=-1).mean())

    assert distance(True) < 0.5 * distance(False)


def test_exploration_shifts_the_steering_by_one_offset_per_excursion_and_only_off_the_road():
    memory = RecoveryMemory(2, 4, window=5, steer_offset=1.0)
    rng = np.random.default_rng(0)
    policy = np.tile(np.array([[0.2, 0.5, 0.0]], np.float32), (2, 1))
    assert np.array_equal(memory.explore(policy, rng), policy)  # both on the road
    memory.add(np.zeros((2, 4), np.float32), policy, np.ones(2, bool), np.array([True, False]), np.zeros(2, bool))
    first = memory.explore(policy, rng)
    assert first[0, 0] != policy[0, 0] and np.array_equal(first[0, 1:], policy[0, 1:])  # env 0 off: steering only
    assert np.array_equal(first[1], policy[1])
    memory.add(np.zeros((2, 4), np.float32), first, np.ones(2, bool), np.array([True, False]), np.zeros(2, bool))
    assert np.array_equal(memory.explore(policy, rng)[0], first[0])  # the same offset through the excursion
    assert -1.0 <= first[0, 0] <= 1.0
