"""Autopilot drives laps; `expert` writes valid, reproducible demos; DART noise; resuming; flag errors."""
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

import demos
import main
from env import EnvConfig
from evaluate import FrameShoves
from expert import Autopilot, SteeringNoise
from fast_car_racing import CarRacingFast

ACTIONS = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))


@pytest.mark.parametrize("seed", [3, 11])
def test_autopilot_completes_a_lap_fast(seed):
    """Physics only: a full lap in well under 1000 frames, never leaving the road."""
    car_racing = CarRacingFast()
    car_racing.reset(seed=seed)
    autopilot = Autopilot()
    autopilot.reset(car_racing)
    total, offtrack = 0.0, 0
    for _ in range(1000):
        _, reward, terminated, _, _ = car_racing.step_physics(autopilot.act(car_racing))
        total += reward
        offtrack += all(len(w.tiles) == 0 for w in car_racing.car.wheels)
        if terminated:
            break
    assert terminated and car_racing.tile_visited_count == len(car_racing.track)
    assert total > 880 and offtrack == 0
    car_racing.close()


def straight_road_with_car(x: float, y: float, angle: float, speed: float = 20.0) -> SimpleNamespace:
    """A stand-in for CarRacing: a straight centre line along +y through x = 0; the car at (x, y) heading
    `angle` (0 = along +y, its right toward +x)."""
    track = [(0.0, 0.0, 0.0, 3.5 * k) for k in range(100)]
    wheel = SimpleNamespace(omega=10.0)
    hull = SimpleNamespace(position=(x, y), linearVelocity=(0.0, speed), angle=angle)
    return SimpleNamespace(track=track, car=SimpleNamespace(hull=hull, wheels=[wheel] * 4))


def test_autopilot_off_the_road_steers_back_slowly():
    """20 units right of the line (road half-width 6.7), heading along it: turn left toward it at a crawl;
    on the line, drive on (straight, gas)."""
    autopilot = Autopilot()
    autopilot.reset(straight_road_with_car(0.0, 0.0, 0.0))
    steer, gas, _ = autopilot.act(straight_road_with_car(20.0, 10.0, 0.0))
    assert steer < -0.5 and gas <= 0.3  # pure pursuit alone steered -0.21 from there
    steer, gas, brake = autopilot.act(straight_road_with_car(20.0, 10.0, 0.0, speed=60.0))
    assert gas == 0 and brake > 0  # too fast to turn back on the grass
    steer, gas, _ = autopilot.act(straight_road_with_car(0.0, 10.0, 0.0))
    assert abs(steer) < 0.05 and gas > 0.3


@pytest.fixture(autouse=True)
def data(tmp_path, monkeypatch):
    """Recordings go to data/<dataset>/ in the working directory: a fresh one per test."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def record(dataset, *extra):
    return main.main(["expert", "--dataset", dataset, "--episodes", "2", "--max_frames", "25", *extra])


def test_expert_writes_valid_reproducible_files(data, capsys):
    assert record("a", "--seed", "5") == 0
    assert "recorded 2 episodes" in capsys.readouterr().out
    assert record("b", "--seed", "5") == 0
    episodes = demos.load_dataset(data / "a")
    assert [ep.seed for ep in episodes] == [5, 6]
    assert all(ep.source == "expert" and len(ep) == 25 and ep.truncated for ep in episodes)
    assert all(ep.actions[:, 1].max() > 0 for ep in episodes)  # it drives off
    for name in ("episode_0.npz", "episode_1.npz"):
        assert (data / "a" / name).read_bytes() == (data / "b" / name).read_bytes()


def test_noise_executes_perturbed_actions_but_records_the_experts(data):
    assert record("clean", "--noise", "0") == 0
    assert record("noisy", "--noise", "0.3") == 0
    clean, noisy = (demos.load_episode(data / d / "episode_0.npz") for d in ("clean", "noisy"))
    assert clean.executed_actions is None
    assert not np.array_equal(noisy.executed_actions, noisy.actions)
    # Perturbed driving shows in the frames, and the expert reacts to what it sees.
    assert not np.array_equal(noisy.observations[-1], clean.observations[-1])
    assert not np.array_equal(noisy.actions, clean.actions)


def test_shoves_push_the_car_but_the_autopilots_action_is_recorded(data):
    """expert --shove: the executed action is test --shove's push while one holds (the same steps on the track),
    the recorded one the autopilot's; the episode still re-simulates from its executed actions."""
    assert record("shoved", "--noise", "0", "--shove", "0.05", "--seed", "7", "--max_frames", "120") == 0
    episode = demos.load_episode(data / "shoved" / "episode_0.npz")
    expected = FrameShoves(7, 0.05, EnvConfig().action_repeat)
    marker = np.full(3, 9.0, np.float32)
    pushed = np.array([not np.array_equal(expected(marker), marker) for _ in episode.actions])
    assert pushed.any() and not pushed.all()
    assert (np.all(np.abs(episode.executed_actions[pushed, 0]) == 1)
            and np.all(episode.executed_actions[pushed, 1:] == 0))
    np.testing.assert_array_equal(episode.executed_actions[~pushed], episode.actions[~pushed])
    assert not np.array_equal(episode.actions[pushed], episode.executed_actions[pushed])
    assert main.main(["replay", "--dataset", "shoved", "--verify"]) == 0


def test_dart_noise_is_on_by_default(data):
    """Defaults that work: plain `expert` laps carry the DART steering noise that BC needs."""
    assert record("default") == 0
    episode = demos.load_episode(data / "default" / "episode_0.npz")
    perturb = SteeringNoise(demos.DART_NOISE, episode.seed, ACTIONS)
    np.testing.assert_array_equal(episode.executed_actions, [perturb(a) for a in episode.actions])
    assert not np.array_equal(episode.executed_actions, episode.actions)


def test_skip_existing_resumes_and_appending_continues_numbering(data):
    assert record("d") == 0
    assert main.main(["expert", "--dataset", "d", "--episodes", "3", "--max_frames", "5", "--skip_existing"]) == 0
    assert [ep.seed for ep in demos.load_dataset(data / "d")] == [0, 1, 2]
    assert main.main(["expert", "--dataset", "d", "--episodes", "1", "--max_frames", "5"]) == 0
    assert [p.name for p in demos.episode_paths(data / "d")][-1] == "episode_3.npz"


@pytest.mark.parametrize(
    "flags, named",
    [(["--episodes", "0"], "--episodes"), (["--noise", "-1"], "--noise"), (["--noise", "nan"], "--noise"),
     (["--noise", "inf"], "--noise"), (["--shove", "1.5"], "--shove"), (["--seed", "1000000"], "--seed"),
     (["--dataset", "../x"], "--dataset"), (["--dataset", "/tmp/x"], "--dataset"), (["--dataset", ".."], "--dataset"),
     (["--dataset", "a\nb"], "--dataset")],
)
def test_bad_flags_give_one_line_errors(data, capsys, flags, named):
    assert main.main(["expert", "--dataset", "d", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and named in err and err.count("\n") == 1
    assert not data.exists()  # nothing recorded


def test_ctrl_c_keeps_finished_episodes(data, monkeypatch, capsys):
    import expert

    real_record = expert.record_episode
    calls = []

    def interrupted_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_record(*args, **kwargs)

    monkeypatch.setattr(expert, "record_episode", interrupted_on_second)
    assert main.main(["expert", "--dataset", "d", "--episodes", "3", "--max_frames", "5"]) == 130
    assert sorted(p.name for p in (data / "d").iterdir()) == ["episode_0.npz"]  # no half-written temp files
    assert demos.load_episode(data / "d" / "episode_0.npz").seed == 0
    assert "kept 1 finished episodes" in capsys.readouterr().out
