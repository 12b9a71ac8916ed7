"""Replay buffer: stacks never cross episode starts, next observations, done flags, n-step, memory, mixing."""
import numpy as np
import pytest

import demos
import replay_buffer
from env import EnvConfig
from errors import UserError
from replay_buffer import FrameReplay, demo_replay, encode_replay, sample_mixed


def frame(value: int) -> np.ndarray:
    return np.full((1, 2, 2), value, np.uint8)


def filled_buffer() -> FrameReplay:
    """Stream 0: episode A frames 10,11,12 (terminal), episode B frames 20,21. Frame value = identity."""
    buf = FrameReplay(capacity=50, num_streams=1, frame_shape=(1, 2, 2), frame_stack=3)
    buf.start(0, frame(10))
    buf.add(0, [0.1, 0, 0], 1.0, frame(11), False)
    buf.add(0, [0.2, 0, 0], 2.0, frame(12), True)
    buf.start(0, frame(20))
    buf.add(0, [0.3, 0, 0], 3.0, frame(21), False)
    return buf


def firsts(stack: np.ndarray) -> list[int]:
    return [int(s[0, 0]) for s in stack]


def test_stack_repeats_episode_first_frame_and_never_crosses_start():
    buf = filled_buffer()
    # absolute indices: 0:10 1:11 2:12 3:20 4:21
    assert firsts(buf.stack(np.array([0]), np.array([1]))[0]) == [10, 10, 11]
    assert firsts(buf.stack(np.array([0]), np.array([2]))[0]) == [10, 11, 12]
    assert firsts(buf.stack(np.array([0]), np.array([4]))[0]) == [20, 20, 21]


def test_samples_are_consistent_transitions():
    buf = filled_buffer()
    assert len(buf) == 3
    batch = buf.sample(200, np.random.default_rng(0), gamma=0.5, n_step=1)
    for obs, action, reward, discount, nxt in zip(batch["obs"], batch["action"], batch["reward"], batch["discount"],
                                                  batch["next_obs"]):
        latest, after = obs[-1, 0, 0], nxt[-1, 0, 0]
        assert after == latest + 1  # next obs is the frame the action led to
        assert latest != 12  # a terminal frame never starts a transition
        expected = {10: (0.1, 1.0, 0.5), 11: (0.2, 2.0, 0.0), 20: (0.3, 3.0, 0.5)}[int(latest)]
        assert action[0] == pytest.approx(expected[0]) and reward == expected[1] and discount == expected[2]


def test_n_step_stops_at_terminal_and_episode_end():
    buf = filled_buffer()
    batch = buf.sample(200, np.random.default_rng(1), gamma=0.5, n_step=3)
    for obs, reward, discount, nxt in zip(batch["obs"], batch["reward"], batch["discount"], batch["next_obs"]):
        latest = int(obs[-1, 0, 0])
        if latest == 10:  # 1 + 0.5 * 2, then terminal
            assert (reward, discount, int(nxt[-1, 0, 0])) == (2.0, 0.0, 12)
        if latest == 20:  # only one step stored so far: bootstrap after one step
            assert (reward, discount, int(nxt[-1, 0, 0])) == (3.0, 0.5, 21)


def test_n_step_stops_before_a_forced_action_but_may_start_with_one():
    buf = FrameReplay(capacity=50, num_streams=1, frame_shape=(1, 2, 2), frame_stack=1)
    buf.start(0, frame(0))
    for value, forced in ((1, False), (2, True), (3, True), (4, False), (5, False)):  # a shove drove steps 2 and 3
        buf.add(0, [0, 0, 0], float(value), frame(value), False, forced=forced)
    batch = buf.sample(400, np.random.default_rng(2), gamma=0.5, n_step=3)
    seen = {}
    for obs, reward, discount, nxt in zip(batch["obs"], batch["reward"], batch["discount"], batch["next_obs"]):
        seen[int(obs[0, 0, 0])] = (float(reward), float(discount), int(nxt[0, 0, 0]))
    assert seen[0] == (1.0, 0.5, 1)  # the policy's step, then bootstrap from where the shove interrupted it
    assert seen[1] == (2.0, 0.5, 2)  # a forced first action is data, but the shove's next step is not summed
    assert seen[3] == (4.0 + 0.5 * 5.0, 0.25, 5)  # after the shove the policy's steps sum as usual


def test_ring_overwrite_never_returns_stale_frames():
    buf = FrameReplay(capacity=8, num_streams=2, frame_shape=(1, 2, 2), frame_stack=2)
    for s in range(2):
        buf.start(s, frame(0))
        for v in range(1, 30):
            buf.add(s, [0, 0, 0], float(v), frame(v), False)
    batch = buf.sample(500, np.random.default_rng(0))
    obs_latest = batch["obs"][:, -1, 0, 0].astype(int)
    assert np.all(batch["next_obs"][:, -1, 0, 0] == obs_latest + 1)
    assert np.all(batch["obs"][:, 0, 0, 0] == obs_latest - 1)  # stacks are consecutive
    assert obs_latest.min() >= 30 - 8  # only frames still in the ring
    assert np.all(batch["reward"] == obs_latest + 1)


def test_memory_is_about_one_frame_per_transition():
    buf = FrameReplay(capacity=1000, num_streams=2, frame_shape=(1, 96, 96), frame_stack=3)
    per_transition = buf.nbytes / 2000
    assert 96 * 96 <= per_transition < 96 * 96 * 1.01


class FakeEpisode:
    def __init__(self, T: int, terminated: bool = False):
        self.observations = np.zeros((T + 1, 96, 96, 3), np.uint8)
        self.observations[:, 0, 0, 0] = np.arange(T + 1)  # frame index readable after grayscale (approx)
        self.actions = np.stack([np.linspace(-1, 1, T), np.full(T, 0.5), np.zeros(T)], 1).astype(np.float32)
        self.rewards = np.ones(T, np.float32)
        self.terminated = terminated
        self.off_track = None
        self.executed_actions = None

    driven_actions = demos.Episode.driven_actions


def test_demo_replay_phases_actions_rewards_and_returns():
    config = EnvConfig(action_repeat=2, frame_stack=2, obs_size=96)
    ep = FakeEpisode(T=10, terminated=True)
    buf = demo_replay([ep], config, gamma=0.5)
    assert buf.num_streams == 2  # one stream per action-repeat phase
    assert len(buf) == 5 + 4  # decisions 0,2,4,6,8 and 1,3,5,7
    batch = buf.sample(300, np.random.default_rng(0), gamma=0.5)
    assert np.all(batch["reward"] == 2.0)  # two raw frames per decision
    # The last decision of phase 0 ends the (terminated) episode: return 2; earlier ones follow the recursion.
    assert set(np.round(batch["mc_return"], 4)) == {2.0, 3.0, 3.5, 3.75, 3.875}  # every decision is sampled
    assert set(np.round(batch["action"][:, 0], 4)) <= set(np.round(ep.actions[:, 0], 4))


def test_sample_mixed_ratio():
    demo, online = filled_buffer(), filled_buffer()
    batch = sample_mixed(demo, online, 40, 0.25, np.random.default_rng(0), 0.99, 1)
    assert batch["is_demo"].sum() == 10 and len(batch["reward"]) == 40
    only_demo = sample_mixed(demo, None, 8, 0.25, np.random.default_rng(0), 0.99, 1)
    assert only_demo["is_demo"].all()
    assert not batch["critic_only"].any()


def test_sample_mixed_marks_critic_only_rows_apart_from_demos_and_online():
    demo, online, critic = filled_buffer(), filled_buffer(), filled_buffer()
    batch = sample_mixed(demo, online, 40, 0.25, np.random.default_rng(0), 0.99, 1, critic, 0.5)
    assert batch["is_demo"].sum() == 10 and batch["critic_only"].sum() == 20 and len(batch["reward"]) == 40
    assert not (batch["is_demo"] & batch["critic_only"]).any()
    before_online = sample_mixed(demo, None, 8, 0.25, np.random.default_rng(0), 0.99, 1, critic, 0.5)
    assert before_online["is_demo"].sum() == 4 and before_online["critic_only"].sum() == 4


def test_demo_replay_teaches_executed_actions_on_request():
    """A shove overrides what the driver meant; a critic must learn from what the car did."""
    config = EnvConfig(action_repeat=2, frame_stack=2, obs_size=96)
    ep = FakeEpisode(T=8)
    ep.executed_actions = ep.actions + np.float32(0.25)
    meant = demo_replay([ep], config, gamma=0.5).sample(50, np.random.default_rng(0))["action"]
    done = demo_replay([ep], config, gamma=0.5, executed=True).sample(50, np.random.default_rng(0))["action"]
    assert np.allclose(done, meant + 0.25)


def test_demo_replay_of_executed_actions_keeps_the_meant_ones_for_imitation():
    """Recovery laps: the critic learns from the shove's override, the BC term imitates what the driver meant."""
    config = EnvConfig(action_repeat=2, frame_stack=2, obs_size=96)
    ep = FakeEpisode(T=8)
    ep.executed_actions = ep.actions + np.float32(0.25)
    buffer = demo_replay([ep], config, gamma=0.5, executed=True)
    encoded = encode_replay(buffer, lambda stacks: stacks.reshape(len(stacks), -1)[:, :4].astype(np.float32))
    for replay in (buffer, encoded):
        batch = replay.sample(50, np.random.default_rng(0))
        assert np.allclose(batch["action"], batch["bc_action"] + 0.25)
        assert set(np.round(batch["bc_action"][:, 0], 4)) <= set(np.round(ep.actions[:, 0], 4))
    plain = demo_replay([ep], config, gamma=0.5).sample(50, np.random.default_rng(0))
    assert np.array_equal(plain["action"], plain["bc_action"])


def test_demo_replay_penalizes_off_track_frames():
    config = EnvConfig(action_repeat=2, frame_stack=2, obs_size=96, offtrack_penalty=10.0)
    ep = FakeEpisode(T=8)
    ep.off_track = np.array([False, False, True, True, False, True, False, False])
    buf = demo_replay([ep], config, gamma=0.5)
    phase0 = buf.rewards[0, 1:5]  # decisions at frames 0, 2, 4, 6
    assert phase0.tolist() == [2.0, 2.0 - 20.0, 2.0 - 10.0, 2.0]


def test_a_buffer_is_refused_before_allocation_when_it_exceeds_the_ram(monkeypatch):
    fits = FrameReplay(capacity=100, num_streams=2, frame_shape=(1, 48, 48), frame_stack=3)
    monkeypatch.setattr(replay_buffer, "physical_memory", lambda: fits.nbytes)  # the estimate is exact
    FrameReplay(capacity=100, num_streams=2, frame_shape=(1, 48, 48), frame_stack=3)
    with pytest.raises(UserError, match=r"a replay buffer of 202 transitions needs 0\.0 GiB, more .*--buffer_size"):
        FrameReplay(capacity=101, num_streams=2, frame_shape=(1, 48, 48), frame_stack=3)


def test_off_track_flags_follow_their_frames():
    buf = FrameReplay(capacity=50, num_streams=1, frame_shape=(1, 2, 2), frame_stack=1)
    buf.start(0, frame(10))
    for value in range(11, 16):
        buf.add(0, [0.0, 0, 0], 0.0, frame(value), False, off_track=value in (12, 13))  # frames 12, 13 off the road
    batch = buf.sample(200, np.random.default_rng(0), gamma=0.5, n_step=2)
    for obs, off in zip(batch["obs"], batch["off_track"]):
        assert off == (obs[-1, 0, 0] in (12, 13))
    assert batch["off_track"].any() and (~batch["off_track"]).any()


def test_demo_replay_marks_the_frames_a_decision_leads_off_the_road():
    config = EnvConfig(action_repeat=2, frame_stack=2, obs_size=96)
    ep = FakeEpisode(T=8)
    ep.off_track = np.array([False, False, False, True, False, False, False, False])  # after frame 3's action
    buf = demo_replay([ep], config, gamma=0.5)
    assert buf.off_track[0, 1:5].tolist() == [False, True, False, False]  # phase 0: decision 2 leads to frame 4
    assert not buf.off_track[1].any()  # phase 1: decisions 1, 3, 5 lead to frames 3, 5, 7
