"""Keyboard driving, headless: posted key events become recorded actions; Escape / window close quit; Enter restarts;
DART noise perturbs the car but not the recorded keys; the autopilot stand-in drives through the same recorder."""
import gymnasium as gym
import numpy as np
import pygame
import pytest

import demos
import human
import main
from env import TRAIN_SEED_LIMIT, EnvConfig
from evaluate import FrameShoves
from expert import SteeringNoise

ACTIONS = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))


@pytest.fixture
def display():
    """pygame's event queue needs the (dummy) video system before events can be posted."""
    pygame.display.init()
    yield
    pygame.quit()


def post_key(key, kind=pygame.KEYDOWN):
    pygame.event.post(pygame.event.Event(kind, key=key))


def script_events(monkeypatch, script: dict[int, list]):
    """Post `script[k]` (a list of (kind, key)) just before the loop reads events for the k-th time."""
    real_get = pygame.event.get
    calls = {"n": 0}

    def get(*args, **kwargs):
        for kind, key in script.get(calls["n"], []):
            pygame.event.post(pygame.event.Event(kind, key=key))
        calls["n"] += 1
        return real_get(*args, **kwargs)

    monkeypatch.setattr(human.pygame.event, "get", get)


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """Where `human --dataset mine` records, in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data" / "mine"


def drive(*extra):
    return main.main(["human", "--dataset", "mine", "--episodes", "1", "--max_frames", "8", *extra])


def test_keys_to_action_mapping():
    K = pygame
    assert human.keys_to_action(set()).tolist() == [0, 0, 0]
    assert human.keys_to_action({K.K_LEFT}).tolist() == [-1, 0, 0]
    assert human.keys_to_action({K.K_RIGHT, K.K_UP}).tolist() == [1, 1, 0]
    assert human.keys_to_action({K.K_DOWN}).tolist() == pytest.approx([0, 0, 0.8])
    assert human.keys_to_action({K.K_LEFT, K.K_RIGHT}).tolist() == [0, 0, 0]
    assert human.keys_to_action({K.K_a}).dtype == np.float32


def test_posted_keys_are_recorded_as_actions(dataset, display, monkeypatch, capsys):
    script_events(monkeypatch, {0: [(pygame.KEYDOWN, pygame.K_UP), (pygame.KEYDOWN, pygame.K_RIGHT)],
                                4: [(pygame.KEYUP, pygame.K_RIGHT)]})
    assert drive("--seed", "3") == 0
    (episode,) = demos.load_dataset(dataset)
    assert episode.source == "human" and len(episode) == 8 and episode.truncated
    assert episode.actions[:4].tolist() == [[1, 1, 0]] * 4
    assert episode.actions[4:].tolist() == [[0, 1, 0]] * 4
    assert episode.seed == next(human.track_seeds(3)) and 0 <= episode.seed < TRAIN_SEED_LIMIT
    assert str(episode.path.relative_to(dataset.parents[1])) in capsys.readouterr().out  # data/mine/episode_0.npz


def test_noise_perturbs_the_car_but_records_the_keys(dataset, display):
    """DART for people: the held keys are the recorded action; the car executes them plus the steering noise."""
    for noise in ("0.3", "0"):
        pygame.display.init()  # the previous recording closed pygame with its window
        post_key(pygame.K_UP)
        assert drive("--seed", "3", "--noise", noise, "--max_frames", "25") == 0
    noisy, clean = demos.load_dataset(dataset)
    assert noisy.seed == clean.seed
    assert noisy.actions.tolist() == clean.actions.tolist() == [[0, 1, 0]] * 25
    perturb = SteeringNoise(0.3, noisy.seed, ACTIONS)
    np.testing.assert_array_equal(noisy.executed_actions, [perturb(a) for a in noisy.actions])
    assert np.all(noisy.executed_actions[:, 0] != 0) and clean.executed_actions is None
    assert not np.array_equal(noisy.observations[-1], clean.observations[-1])  # the car (and the person) felt it


def test_autopilot_stand_in_records_what_expert_records(dataset, tmp_path):
    """`human --autopilot` drives through the keyboard's recorder and gives `expert`'s episode on the same track."""
    assert drive("--autopilot", "--noise", "0.2", "--max_frames", "25") == 0
    track = str(next(human.track_seeds(0)))
    assert main.main(["expert", "--dataset", "ref", "--seed", track, "--episodes", "1", "--max_frames", "25",
                      "--noise", "0.2"]) == 0
    (stand_in,), (reference,) = demos.load_dataset(dataset), demos.load_dataset(tmp_path / "data" / "ref")
    assert stand_in.source == reference.source == "expert"
    for name in ("observations", "actions", "executed_actions", "rewards", "off_track"):
        np.testing.assert_array_equal(getattr(stand_in, name), getattr(reference, name), strict=True)
    assert not np.array_equal(stand_in.executed_actions, stand_in.actions)


def test_shoves_push_the_car_but_record_the_keys(dataset, display):
    """Recovery laps by keyboard: the held keys are the recorded action, the car executes test --shove's pushes at
    the same steps of the same track, and the episode re-simulates from what it executed."""
    post_key(pygame.K_UP)
    assert drive("--seed", "3", "--shove", "0.05", "--max_frames", "120") == 0
    (episode,) = demos.load_dataset(dataset)
    assert episode.actions.tolist() == [[0, 1, 0]] * 120
    shoves, marker = FrameShoves(episode.seed, 0.05, EnvConfig().action_repeat), np.full(3, 9.0, np.float32)
    pushed = np.array([not np.array_equal(shoves(marker), marker) for _ in episode.actions])
    assert pushed.any() and not pushed.all()
    assert (np.all(np.abs(episode.executed_actions[pushed, 0]) == 1)
            and np.all(episode.executed_actions[pushed, 1:] == 0))
    np.testing.assert_array_equal(episode.executed_actions[~pushed], episode.actions[~pushed])
    assert main.main(["replay", "--dataset", "mine", "--verify"]) == 0


@pytest.mark.parametrize("flag", ["--noise", "--shove"])
def test_bad_noise_or_shove_is_a_one_line_error(flag, dataset, capsys):
    assert main.main(["human", "--dataset", "mine", flag, "nan"]) == 2  # before any window opens
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag}") and err.count("\n") == 1


def test_escape_quits_without_saving_the_unfinished_episode(dataset, display):
    post_key(pygame.K_UP)
    post_key(pygame.K_ESCAPE)
    assert drive() == 0
    assert not dataset.exists()  # no empty dataset folder left behind


def test_closing_the_window_quits(dataset, display):
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert drive() == 0
    assert demos.episode_paths(dataset) == []


def test_enter_restarts_the_same_track_and_discards_the_episode(dataset, display, monkeypatch, capsys):
    # Brake for 3 frames, restart, then drive: only the restarted episode is kept.
    script_events(monkeypatch, {0: [(pygame.KEYDOWN, pygame.K_DOWN)],
                                3: [(pygame.KEYUP, pygame.K_DOWN), (pygame.KEYDOWN, pygame.K_RETURN)],
                                4: [(pygame.KEYDOWN, pygame.K_UP)]})
    assert drive() == 0
    (episode,) = demos.load_dataset(dataset)
    assert episode.actions.tolist() == [[0, 1, 0]] * 8
    assert episode.seed == next(human.track_seeds(0))
    assert "discarded" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["../x", "/tmp/x", ".."])
def test_recording_needs_a_plain_dataset_name(name, dataset, capsys):
    assert main.main(["human", "--dataset", name]) == 2  # before any window opens
    err = capsys.readouterr().err
    assert err.startswith("error: --dataset") and name in err and err.count("\n") == 1
