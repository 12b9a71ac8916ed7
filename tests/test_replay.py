"""Replay: videos, window playback, byte-exact re-simulation (--verify), summary, bad files."""
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import pygame
import pytest

import demos
import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two short expert episodes (one with DART noise), recorded once for this module."""
    root = tmp_path_factory.mktemp("recording")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # expert records into data/<dataset>/ here
        assert main.main(["expert", "--dataset", "demo", "--episodes", "1", "--max_frames", "30",
                          "--noise", "0"]) == 0
        assert main.main(["expert", "--dataset", "demo", "--episodes", "1", "--seed", "1",
                          "--max_frames", "30", "--noise", "0.2"]) == 0
    return root / "data" / "demo"


@pytest.fixture
def copy(dataset, tmp_path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(dataset, target)
    return target


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_file_holds_every_frame(dataset, tmp_path, suffix):
    video = tmp_path / f"replay{suffix}"
    assert main.main(["replay", "--dataset", str(dataset), "--video", str(video), "--video_view", "obs",
                      "--scale", "2"]) == 0
    with imageio.get_reader(video) as reader:
        frames = [frame.shape[:2] for frame in reader.iter_data()]
    assert frames == [(192, 192)] * (2 * 31)


def test_full_view_video_re_drives_every_frame(dataset, tmp_path, capsys):
    video = tmp_path / "replay.mp4"
    assert main.main(["replay", "--dataset", str(dataset), "--video", str(video)]) == 0  # the default view
    with imageio.get_reader(video) as reader:
        frames = [frame.shape[:2] for frame in reader.iter_data()]
    assert frames == [(400, 600)] * (2 * 31)
    assert "(full view)" in capsys.readouterr().out


def test_full_view_warns_when_the_re_drive_differs(copy, tmp_path, capsys):
    episode = demos.load_episode(copy / "episode_0.npz")
    actions = episode.actions.copy()
    actions[10, 0] = -actions[10, 0] - 0.5  # the file no longer holds what was driven
    demos.write_episode(copy, episode.observations, actions, episode.rewards, episode.terminated,
                        episode.truncated, episode.seed, episode.source, off_track=episode.off_track, number=0)
    assert main.main(["replay", "--dataset", str(copy), "--video", str(tmp_path / "a.gif")]) == 0
    out = capsys.readouterr().out
    assert "episode_0.npz re-simulates differently" in out and "episode_1.npz" not in out
    # An episode without a track seed (only imported ones: tests/test_minari_io.py) cannot be re-driven.


def test_video_with_unknown_extension_is_a_user_error(dataset, tmp_path, capsys):
    assert main.main(["replay", "--dataset", str(dataset), "--video", str(tmp_path / "x.avi")]) == 2
    assert "--video" in capsys.readouterr().err


def test_window_playback_runs_headless_and_escape_stops_it(dataset):
    assert main.main(["replay", "--dataset", str(dataset), "--episode", "0", "--fps", "1000"]) == 0
    pygame.display.init()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
    assert main.main(["replay", "--dataset", str(dataset), "--fps", "1"]) == 0  # would take a minute otherwise


def test_verify_passes_untouched_demos(dataset, capsys):
    assert main.main(["replay", "--dataset", str(dataset), "--verify", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "verified 2/2" in out and "2 episodes, 60 frames" in out


def test_verify_fails_a_tampered_action_and_names_episode_and_step(copy, capsys):
    episode = demos.load_episode(copy / "episode_0.npz")
    actions = episode.actions.copy()
    actions[10, 0] = -actions[10, 0] - 0.5  # steer differently at step 11
    demos.write_episode(copy, episode.observations, actions, episode.rewards, episode.terminated,
                        episode.truncated, episode.seed, episode.source, off_track=episode.off_track, number=0)
    assert main.main(["replay", "--dataset", str(copy), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "episode_0.npz: step 11: frame differs" in out and "verified 1/2" in out


def test_verify_fails_a_tampered_reward(copy, capsys):
    episode = demos.load_episode(copy / "episode_1.npz")
    rewards = episode.rewards.copy()
    rewards[3] += 1e-3
    demos.write_episode(copy, episode.observations, episode.actions, rewards, episode.terminated,
                        episode.truncated, episode.seed, episode.source, episode.executed_actions,
                        episode.off_track, number=1)
    assert main.main(["replay", "--dataset", str(copy), "--verify", "--episode", "1"]) == 1
    assert "episode_1.npz: step 4: reward" in capsys.readouterr().out


def test_bad_file_is_named_and_skip_bad_uses_the_rest(copy, capsys):
    bad = copy / "episode_1.npz"
    bad.write_bytes(bad.read_bytes()[:1000])  # truncated
    assert main.main(["replay", "--dataset", str(copy), "--summary"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and err.count("\n") == 1
    assert main.main(["replay", "--dataset", str(copy), "--summary", "--skip_bad"]) == 0
    captured = capsys.readouterr()
    assert "1 episodes" in captured.out and str(bad) in captured.err


def test_missing_dataset_and_episode_are_user_errors(dataset, tmp_path, capsys):
    assert main.main(["replay", "--dataset", str(tmp_path / "none"), "--summary"]) == 2
    assert main.main(["replay", "--dataset", str(dataset), "--episode", "9", "--summary"]) == 2
    assert "episode_9.npz" in capsys.readouterr().err


def test_end_to_end_command_line(dataset):
    """The real entry point in a fresh process: exit codes and output."""
    result = subprocess.run([sys.executable, "main.py", "replay", "--dataset", str(dataset), "--summary"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "2 episodes" in result.stdout
    result = subprocess.run([sys.executable, "main.py", "replay", "--dataset", str(dataset / "missing")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr
