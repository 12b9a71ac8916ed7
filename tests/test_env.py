"""env.py: registration, off-track detection, penalty/termination, action repeat, frame stack, vector envs."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec
from gymnasium.utils.env_checker import check_env

from types import SimpleNamespace

from env import (TRAIN_SEED_LIMIT, DrivingEnv, EnvConfig, EpisodeMetrics, FrameStacker, SkippedTiles, make_env,
                 make_vec_env, preprocess_frame)

GAS = np.array([0.0, 1.0, 0.0], np.float32)
HARD_LEFT = np.array([-1.0, 1.0, 0.0], np.float32)


def test_registered_id_matches_stock_constructor_and_frames():
    fast = gym.make("CarRacingFast-v0", domain_randomize=True, lap_complete_percent=0.9)
    stock = gym.make("CarRacing-v3", domain_randomize=True, lap_complete_percent=0.9)
    a, _ = fast.reset(seed=3)
    b, _ = stock.reset(seed=3)
    assert np.array_equal(a, b)
    for _ in range(60):
        a, ra, *_ = fast.step(GAS)
        b, rb, *_ = stock.step(GAS)
    assert np.array_equal(a, b) and ra == rb
    assert fast.spec.max_episode_steps == 1000


def test_spec_matches_stock_limits_and_survives_json():
    """A string entry point makes the spec serialisable (Minari stores it); the limits are stock's."""
    spec, stock = gym.spec("CarRacingFast-v0"), gym.spec("CarRacing-v3")
    assert spec.entry_point == "fast_car_racing:CarRacingFast"
    assert ((spec.max_episode_steps, spec.reward_threshold) == (stock.max_episode_steps, stock.reward_threshold)
            == (1000, 900))
    restored = EnvSpec.from_json(spec.to_json())
    assert restored == spec
    env = gym.make(restored)
    frame, _ = env.reset(seed=3)
    assert env.spec.id == "CarRacingFast-v0" and frame.shape == (96, 96, 3)
    env.close()


def drive_off_road(env: DrivingEnv, max_steps: int = 400):
    """Full gas with the wheel locked left: the car leaves the road within a few seconds."""
    infos = []
    for _ in range(max_steps):
        _, reward, terminated, truncated, info = env.step(HARD_LEFT)
        infos.append((reward, info))
        if terminated or truncated:
            return infos, terminated
    return infos, False


def test_off_track_detection_penalty_and_termination():
    env = DrivingEnv(EnvConfig(action_repeat=1, offtrack_penalty=10.0, offtrack_limit=20))
    env.reset(seed=7)
    infos, terminated = drive_off_road(env)
    assert terminated
    off = [info["off_track"] for _, info in infos]
    assert not off[0] and off[-1]  # starts on the road, ends off it
    assert off[-20:] == [True] * 20 and not all(off[-21:])  # ended by exactly 20 consecutive off-track frames
    for reward, info in infos:  # penalized reward = raw - 10 per off-track frame
        assert reward == pytest.approx(info["raw_reward"] - 10.0 * info["off_track"])


def test_no_termination_when_limit_is_zero():
    env = DrivingEnv(EnvConfig(action_repeat=1, offtrack_limit=0, offtrack_penalty=0.0))
    env.reset(seed=7)
    infos, terminated = drive_off_road(env, max_steps=300)
    assert not terminated and infos[-1][1]["off_track"]
    assert all(r == pytest.approx(i["raw_reward"]) for r, i in infos)


def test_a_car_standing_still_ends_the_episode_at_the_stall_limit_at_the_cost_of_leaving_the_road():
    stand = np.array([0.0, 0.0, 1.0], np.float32)  # full brake: the car never moves off its first tiles
    env = DrivingEnv(EnvConfig(action_repeat=1, offtrack_penalty=10.0, offtrack_limit=20, stall_limit=30))
    env.reset(seed=7)
    steps = [env.step(stand) for _ in range(40)]
    ends = [i for i, (_, _, terminated, _, _) in enumerate(steps) if terminated]
    assert ends and 29 <= ends[0] <= 31  # 30 frames after the last new tile (touched in the first frames)
    _, reward, _, _, info = steps[ends[0]]
    assert info["stalled"] and reward == pytest.approx(info["raw_reward"] - 10.0 * 20)
    assert not any(step[4]["stalled"] for step in steps[:ends[0]])
    moving = DrivingEnv(EnvConfig(action_repeat=1, stall_limit=30))  # driving on, new tiles keep coming
    moving.reset(seed=7)
    assert not any(moving.step(np.array([0.0, 0.5, 0.0], np.float32))[2] for _ in range(100))
    never = DrivingEnv(EnvConfig(action_repeat=1, stall_limit=0))
    never.reset(seed=7)
    assert not any(never.step(stand)[2] for _ in range(100))
    priced = DrivingEnv(EnvConfig(action_repeat=1, offtrack_penalty=10.0, offtrack_limit=20, stall_limit=30,
                                  stall_penalty=450.0))  # a stall of its own price, not leaving the road's
    priced.reset(seed=7)
    _, reward, _, _, info = [priced.step(stand) for _ in range(ends[0] + 1)][-1]
    assert info["stalled"] and reward == pytest.approx(info["raw_reward"] - 450.0)


def test_tiles_left_behind_unvisited_are_counted_once_and_only_ahead_of_the_car():
    road = [SimpleNamespace(idx=i, road_visited=False) for i in range(20)]
    car = SimpleNamespace(wheels=[])
    skipped = SkippedTiles(len(road))

    def touch(*indices) -> int:  # the wheels on these tiles, which a contact marks visited
        car.wheels = [SimpleNamespace(tiles=[road[i] for i in indices])]
        for i in indices:
            road[i].road_visited = True
        return skipped.update(car, road)

    assert touch(19, 0, 1) == 0  # the start: the tile behind the car is half a lap ahead along it, not skipped
    assert [touch(i, i + 1) for i in range(1, 4)] == [0, 0, 0]  # driving on, every tile visited
    assert touch(7, 8) == 1  # tiles 5 and 6 cut: 5 is already behind the car, 6 not yet (its margin)
    assert touch(9) == 1 and skipped.count == 2
    assert touch(8, 9) == 0  # backing up counts nothing again
    assert [touch(i) for i in range(10, 20)] == [0] * 10 and touch(0, 1) == 0  # round to the finish
    assert skipped.count == 2


def test_the_skipped_tile_penalty_is_charged_on_the_frame_a_tile_is_left_behind(monkeypatch):
    env = DrivingEnv(EnvConfig(action_repeat=2, offtrack_penalty=0.0, offtrack_limit=0, skipped_tile_penalty=25.0))
    env.reset(seed=7)
    monkeypatch.setattr(env._skipped, "update", lambda car, road: 1)  # a tile left behind on every frame
    _, reward, _, _, info = env.step(GAS)
    assert reward == pytest.approx(info["raw_reward"] - 2 * 25.0)  # once per frame of the repeat
    free = DrivingEnv(EnvConfig(action_repeat=2, offtrack_penalty=0.0, offtrack_limit=0))  # the default charges none
    free.reset(seed=7)
    monkeypatch.setattr(free._skipped, "update", lambda car, road: 1)
    _, reward, _, _, info = free.step(GAS)
    assert reward == info["raw_reward"]


def test_action_repeat_sums_rewards_and_renders_last_frame():
    single = DrivingEnv(EnvConfig(action_repeat=1, offtrack_limit=0, offtrack_penalty=0.0))
    repeat = DrivingEnv(EnvConfig(action_repeat=3, offtrack_limit=0, offtrack_penalty=0.0))
    single.reset(seed=11)
    repeat.reset(seed=11)
    for _ in range(10):
        rewards, frames = [], []
        for _ in range(3):
            frame, reward, *_ = single.step(GAS)
            rewards.append(reward)
            frames.append(frame)
        frame3, reward3, _, _, info = repeat.step(GAS)
        assert reward3 == pytest.approx(sum(rewards))
        assert info["frame_rewards"] == pytest.approx(rewards)
        assert np.array_equal(frame3, frames[-1])


def test_frame_limit_counts_physics_frames():
    env = DrivingEnv(EnvConfig(action_repeat=4, max_frames=10, offtrack_limit=0))
    env.reset(seed=1)
    results = [env.step(GAS) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]  # 4 + 4 + 2 frames
    assert results[-1][4]["frames"] == 10 and len(results[-1][4]["frame_rewards"]) == 2


def test_stepping_a_finished_episode_simulates_nothing():
    env = DrivingEnv(EnvConfig(action_repeat=4, max_frames=4, offtrack_limit=0))
    env.reset(seed=3)
    frame, _, _, truncated, _ = env.step([0.0, 1.0, 0.0])
    assert truncated
    car_position = tuple(env.car_racing.car.hull.position)
    again = env.step([0.0, 1.0, 0.0])  # what `test` does to a slot whose track is done
    assert np.array_equal(again[0], frame) and again[1] == 0.0 and again[3]
    assert again[4]["frames"] == 4 and again[4]["frame_rewards"] == []
    assert tuple(env.car_racing.car.hull.position) == car_position
    env.reset(seed=3)
    assert env.step([0.0, 1.0, 0.0])[4]["frames"] == 4  # a reset starts simulating again


def test_frame_stack_and_preprocessing():
    config = EnvConfig(frame_stack=3, obs_size=48, grayscale=True)
    env = make_env(config)
    obs, _ = env.reset(seed=2)
    assert obs.shape == (3, 48, 48) and obs.dtype == np.uint8
    assert np.array_equal(obs[0], obs[2])  # reset fills the stack with the first frame
    previous = obs
    for _ in range(3):
        obs, *_ = env.step(GAS)
        assert np.array_equal(obs[:2], previous[1:])  # the stack shifts by one frame per step
        previous = obs
    frame = np.zeros((96, 96, 3), np.uint8)
    frame[:48, :, 1] = 200
    gray = preprocess_frame(frame, EnvConfig(obs_size=96))
    assert gray.shape == (1, 96, 96) and gray[0, 0, 0] == round(200 * 0.587) and gray[0, 95, 0] == 0
    rgb = preprocess_frame(frame, EnvConfig(obs_size=48, grayscale=False))
    assert rgb.shape == (3, 48, 48) and rgb[1, 0, 0] == 200
    stacker = FrameStacker(EnvConfig(frame_stack=2, obs_size=96, grayscale=False))
    assert stacker.reset(frame).shape == (6, 96, 96)


def test_check_env_on_learning_env():
    check_env(make_env(EnvConfig(obs_size=48)).unwrapped, skip_render_check=True)


def test_vector_env_shapes_and_deterministic_seeding():
    config = EnvConfig(obs_size=48)

    def rollout():
        envs = make_vec_env(2, config, asynchronous=False)
        obs, info = envs.reset(seed=123)
        seeds = list(info["track_seed"])
        for _ in range(5):
            obs, reward, *_ = envs.step(np.tile(GAS, (2, 1)))
        envs.close()
        return obs, reward, seeds

    obs, reward, seeds = rollout()
    assert obs.shape == (2, 3, 48, 48) and reward.shape == (2,)
    assert seeds == [123, 124]
    obs2, reward2, _ = rollout()
    assert np.array_equal(obs, obs2) and np.array_equal(reward, reward2)


def test_unseeded_resets_draw_training_tracks():
    env = DrivingEnv(EnvConfig())
    env.reset(seed=5)
    seeds = {env.reset()[1]["track_seed"] for _ in range(3)}
    assert all(0 <= s < TRAIN_SEED_LIMIT for s in seeds) and len(seeds) == 3


def test_episode_metrics_cut_penalized_return_at_limit():
    metrics = EpisodeMetrics(penalty=10.0, limit=3)
    metrics.add([1.0] * 6, [False, True, True, True, True, False])
    assert metrics.raw_return == 6.0 and metrics.offtrack_frames == 4
    assert metrics.penalized_return == pytest.approx(4 * 1.0 - 30.0)  # frames 1-4, three penalties, then cut


@pytest.mark.parametrize("field, value", [("action_repeat", 0), ("frame_stack", 0), ("obs_size", 50),
                                          ("offtrack_penalty", -1.0), ("max_frames", 0), ("stall_limit", -1),
                                          ("skipped_tile_penalty", -1.0), ("skipped_tile_penalty", float("nan")),
                                          ("stall_penalty", -1.0), ("stall_penalty", float("inf"))])
def test_bad_config_is_a_clear_error(field, value):
    with pytest.raises(ValueError, match=field):
        DrivingEnv(EnvConfig(**{field: value}))
    with pytest.raises(ValueError, match="num_envs"):
        make_vec_env(0)


def test_bad_action_is_a_clear_error():
    env = DrivingEnv(EnvConfig())
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([0.0, np.nan, 0.0]))
