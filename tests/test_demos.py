"""Demo file format: round trip, numbering, atomic writes that never replace an episode, reproducible bytes,
one-line errors naming the file, plain names for recorded datasets, recording folders checked and tidied."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import demos
import main
from errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def fake_episode(steps: int = 4, seed: int = 7, source: str = "expert", lap: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    rewards = np.full(steps, -0.1, np.float32)
    rewards[0] = 3.0
    return dict(
        observations=rng.integers(0, 256, (steps + 1, 96, 96, 3), dtype=np.uint8),
        actions=rng.uniform([-1, 0, 0], [1, 1, 1], (steps, 3)).astype(np.float32),
        rewards=rewards,
        terminated=lap,
        truncated=not lap,
        seed=seed,
        source=source,
    )


def test_round_trip_keeps_every_field(tmp_path):
    ep = fake_episode()
    path = demos.write_episode(tmp_path, **ep, off_track=[False, True, False, False])
    loaded = demos.load_episode(path)
    assert path.name == "episode_0.npz"
    np.testing.assert_array_equal(loaded.observations, ep["observations"])
    np.testing.assert_array_equal(loaded.actions, ep["actions"])
    np.testing.assert_array_equal(loaded.rewards, ep["rewards"])
    assert loaded.observations.dtype == np.uint8 and loaded.actions.dtype == np.float32
    assert (loaded.terminated, loaded.truncated, loaded.seed, loaded.source) == (False, True, 7, "expert")
    assert loaded.off_track.tolist() == [False, True, False, False]
    assert loaded.executed_actions is None and loaded.driven_actions is loaded.actions


def test_numbering_continues_after_existing_files_and_no_temp_files_remain(tmp_path):
    demos.write_episode(tmp_path, **fake_episode())
    demos.write_episode(tmp_path, **fake_episode(), number=7)
    path = demos.write_episode(tmp_path, **fake_episode())
    assert path.name == "episode_8.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_0.npz", "episode_7.npz", "episode_8.npz"]
    assert [p.name for p in demos.episode_paths(tmp_path)] == ["episode_0.npz", "episode_7.npz", "episode_8.npz"]


def test_concurrent_recordings_keep_every_episode(tmp_path, monkeypatch):
    """Another recording into the dataset finishes an episode while this one writes its file: both are kept."""
    real_write = demos._write_npz

    def write_while_another_recording_finishes(file, arrays):
        monkeypatch.setattr(demos, "_write_npz", real_write)
        demos.write_episode(tmp_path, **fake_episode(seed=2))
        real_write(file, arrays)

    monkeypatch.setattr(demos, "_write_npz", write_while_another_recording_finishes)
    demos.write_episode(tmp_path, **fake_episode(seed=1))
    assert sorted(ep.seed for ep in demos.load_dataset(tmp_path)) == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_0.npz", "episode_1.npz"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_write_never_loses_the_episode(tmp_path, monkeypatch, signum):
    """The kernel hands a process signal to any thread that does not block it (pygame's SDL threads, say);
    Python then interrupts the main thread, mid-write, unless the write holds the signal back."""
    previous = signal.signal(signal.SIGTERM, main.stop_on_sigterm)  # as main installs it
    release = threading.Event()
    other_thread = threading.Thread(target=release.wait, args=(60,))
    other_thread.start()
    real_write = demos._write_npz

    def write_and_be_signalled(file, arrays):
        signal.pthread_kill(other_thread.ident, signum)  # the SDL-thread case, on purpose
        release.set()
        # The thread handles the signal before it can exit, so after the join it has reached Python, however
        # loaded the machine (a timed sleep here once lost that race under load).
        other_thread.join()
        time.sleep(0.01)  # an interrupt not held back is raised here, with half a file written
        real_write(file, arrays)

    monkeypatch.setattr(demos, "_write_npz", write_and_be_signalled)
    try:
        with pytest.raises(KeyboardInterrupt):  # the signal still takes effect, after the episode is saved
            demos.write_episode(tmp_path, **fake_episode(seed=5))
    finally:
        signal.signal(signal.SIGTERM, previous)
        release.set()
        other_thread.join()
    assert [ep.seed for ep in demos.load_dataset(tmp_path)] == [5]
    assert [p.name for p in tmp_path.iterdir()] == ["episode_0.npz"]


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_taken_number_is_skipped_never_replaced(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # some filesystems refuse them: the name is then claimed with O_EXCL
        monkeypatch.setattr(demos.os, "link", lambda *args: (_ for _ in ()).throw(PermissionError(1, "no links")))
    demos.write_episode(tmp_path, **fake_episode(seed=1))
    monkeypatch.setattr(demos, "next_episode_number", lambda directory: 0)  # a listing from before that write
    assert demos.write_episode(tmp_path, **fake_episode(seed=2)).name == "episode_1.npz"
    assert [ep.seed for ep in demos.load_dataset(tmp_path)] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_0.npz", "episode_1.npz"]  # no temp files


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "..", ".hidden", "a\nb", "a/b", "sp ace"])
def test_recording_needs_a_plain_dataset_name(name):
    with pytest.raises(UserError, match="--dataset") as info:
        demos.dataset_dir(name, write=True)
    assert "\n" not in str(info.value)


def test_dataset_names_and_paths_for_reading():
    assert demos.dataset_dir("calm-20_v1.2", write=True) == Path("data") / "calm-20_v1.2"
    assert demos.dataset_dir("calm") == Path("data") / "calm"
    assert demos.dataset_dir("/elsewhere/demos") == Path("/elsewhere/demos")  # reading accepts a directory
    assert demos.dataset_dir("data/calm") == Path("data/calm")


def test_same_episode_gives_identical_bytes(tmp_path):
    a = demos.write_episode(tmp_path / "a", **fake_episode())
    b = demos.write_episode(tmp_path / "b", **fake_episode())
    assert a.read_bytes() == b.read_bytes()


def test_malformed_episode_is_not_written(tmp_path):
    ep = fake_episode()
    ep["observations"] = ep["observations"][:-1]  # T frames instead of T+1
    with pytest.raises(ValueError, match="observations"):
        demos.write_episode(tmp_path, **ep)
    assert list(tmp_path.iterdir()) == []


def one_line_error_naming(path, call):
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_corrupt_file_is_reported_by_name(tmp_path):
    path = tmp_path / "episode_0.npz"
    path.write_bytes(b"this is not a zip file at all")
    assert "not a valid .npz" in one_line_error_naming(path, lambda: demos.load_episode(path))


def test_truncated_file_is_reported_by_name(tmp_path):
    path = demos.write_episode(tmp_path, **fake_episode())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    one_line_error_naming(path, lambda: demos.load_episode(path))


def test_damaged_compressed_data_is_reported_by_name(tmp_path):
    path = demos.write_episode(tmp_path, **fake_episode())
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zero a stretch inside the compressed frames
    path.write_bytes(bytes(data))
    assert "unreadable" in one_line_error_naming(path, lambda: demos.load_episode(path))


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("observations", np.zeros((5, 64, 64, 3), np.uint8), "observations must have shape"),
        ("observations", np.zeros((5, 96, 96, 3), np.float32), "observations must be uint8"),
        ("actions", np.zeros((4, 2), np.float32), "actions must have shape"),
        ("actions", np.zeros((4, 3), np.float64), "actions must be float32"),
        ("rewards", np.zeros(3, np.float32), "rewards must have shape"),
        ("seed", np.array([1, 2]), "seed must be a single value"),
    ],
)
def test_misshaped_file_is_reported_by_name(tmp_path, key, value, expected):
    arrays = fake_episode()
    arrays[key] = value
    path = tmp_path / "episode_0.npz"
    np.savez_compressed(path, **arrays)
    assert expected in one_line_error_naming(path, lambda: demos.load_episode(path))


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("seed", np.int64(-5), "seed must be a track seed >= 0, got -5"),
        ("executed_actions", np.full((4, 3), np.nan, np.float32), "executed_actions contain NaN"),
        ("actions", np.full((4, 3), 1e30, np.float32), "actions outside CarRacing's bounds"),
        ("executed_actions", np.full((4, 3), -2.0, np.float32), "executed_actions outside CarRacing's bounds"),
        ("terminated", np.str_("yes"), "terminated must be a bool, got <U3 yes"),
        ("truncated", np.float32(0.5), "truncated must be a bool, got float32 0.5"),
    ],
)
def test_bad_values_are_reported_by_name_even_by_verify(tmp_path, capsys, key, value, expected):
    arrays = fake_episode()
    arrays[key] = value
    path = tmp_path / "episode_0.npz"
    np.savez_compressed(path, **arrays)
    assert expected in one_line_error_naming(path, lambda: demos.load_episode(path))
    assert main.main(["replay", "--dataset", str(tmp_path), "--verify"]) == 2  # before any re-simulation
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_an_episode_with_a_negative_seed_is_not_written(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        demos.write_episode(tmp_path, **{**fake_episode(), "seed": -1})


def test_recording_removes_killed_recorders_temp_files_and_checks_the_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = demos.recording_dir("set")
    killed = "import sys, pathlib, atomic_files; atomic_files.create_temp(pathlib.Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", killed, str(folder.resolve() / "episode.npz")], cwd=ROOT, check=True)
    left = list(folder.iterdir())  # what a recorder killed while writing leaves behind
    assert len(left) == 1 and left[0].name.startswith(".episode.npz.")
    path = demos.write_episode(folder, **fake_episode())
    assert left[0].exists()  # writing episodes never touches other writers' files ...
    demos.recording_dir("set")
    assert list(folder.iterdir()) == [path]  # ... the next recording's start removes a dead one's
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_bavail=1, f_frsize=4096))
    with pytest.raises(UserError, match=r"data/set: only 0\.0 MiB free"):
        demos.recording_dir("set")


def test_missing_key_and_empty_episode_are_reported(tmp_path):
    arrays = fake_episode()
    del arrays["rewards"]
    path = tmp_path / "episode_0.npz"
    np.savez_compressed(path, **arrays)
    assert "missing rewards" in one_line_error_naming(path, lambda: demos.load_episode(path))
    empty = fake_episode(steps=1)
    empty.update(observations=empty["observations"][:1], actions=np.zeros((0, 3), np.float32),
                 rewards=np.zeros(0, np.float32))
    np.savez_compressed(path, **empty)
    assert "T = 0" in one_line_error_naming(path, lambda: demos.load_episode(path))


def test_dataset_missing_or_empty_directory(tmp_path):
    one_line_error_naming(tmp_path / "nope", lambda: demos.load_dataset(tmp_path / "nope"))
    one_line_error_naming(tmp_path, lambda: demos.load_dataset(tmp_path))


def test_bad_file_fails_the_dataset_unless_skipped(tmp_path, capsys):
    demos.write_episode(tmp_path, **fake_episode(seed=1))
    bad = tmp_path / "episode_1.npz"
    bad.write_bytes(b"garbage")
    demos.write_episode(tmp_path, **fake_episode(seed=3))
    assert "--skip_bad" in one_line_error_naming(bad, lambda: demos.load_dataset(tmp_path))
    episodes = demos.load_dataset(tmp_path, skip_bad=True)
    assert [ep.seed for ep in episodes] == [1, 3]
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1 and str(bad) in warnings[0]


def test_summarize_counts_frames_returns_laps_and_sources(tmp_path):
    demos.write_episode(tmp_path, **fake_episode(steps=4, lap=True))
    demos.write_episode(tmp_path, **fake_episode(steps=6, source="human"))
    summary = demos.summarize(demos.load_dataset(tmp_path))
    assert summary["episodes"] == 2 and summary["frames"] == 10 and summary["laps"] == 1
    assert summary["sources"] == {"expert": 1, "human": 1}
    assert summary["mean_return"] == pytest.approx(((3 - 0.3) + (3 - 0.5)) / 2, abs=1e-5)
    assert summary["min_return"] == pytest.approx(2.5, abs=1e-5)
    assert "2 episodes" in demos.format_summary(summary)


def episode_with(off_track=None, executed_delta=None, source="expert") -> demos.Episode:
    """A fake episode that records `off_track` and, with `executed_delta`, executed = intended + delta."""
    ep = fake_episode(source=source)
    executed = None if executed_delta is None else (ep["actions"] + np.float32(executed_delta)).astype(np.float32)
    off = None if off_track is None else np.asarray(off_track, bool)
    return demos.Episode(**ep, executed_actions=executed, off_track=off)


def test_lacks_recoveries_only_when_nothing_perturbed_the_car_or_left_the_road():
    clean = episode_with(off_track=[False] * 4)
    assert demos.lacks_recoveries([clean, clean])
    assert demos.lacks_recoveries([clean, episode_with(off_track=[False] * 4, executed_delta=0.0)])  # noise 0
    assert not demos.lacks_recoveries([clean, episode_with(off_track=[False] * 4, executed_delta=[0.05, 0, 0])])
    assert not demos.lacks_recoveries([clean, episode_with(off_track=[False, True, True, False])])
    assert not demos.lacks_recoveries([clean, episode_with(off_track=None)])  # unknown: not flagged


def test_recovery_warning_is_one_line_naming_the_recorder_to_rerun(capsys):
    demos.warn_no_recoveries([episode_with(off_track=[False] * 4, source="human")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning:") and f"human --noise {demos.DART_NOISE}" in err
    demos.warn_no_recoveries([episode_with(off_track=[False] * 4, source="")])  # unknown source: both
    err = capsys.readouterr().err
    assert "expert --noise" in err and "human --noise" in err


def test_train_bc_warns_before_training_on_laps_without_recoveries(tmp_path, monkeypatch, capsys):
    import bc
    import main

    class Stopped(Exception):
        """Raised where training would begin: the warning must have come before it."""

    def stop(*args, **kwargs):
        raise Stopped

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bc, "split_episodes", stop)
    demos.write_episode(tmp_path / "data" / "clean", **fake_episode(), off_track=[False] * 4)
    with pytest.raises(Stopped):
        main.main(["train_bc", "--dataset", "clean"])
    assert f"expert --noise {demos.DART_NOISE}" in capsys.readouterr().err
    demos.write_episode(tmp_path / "data" / "off_road", **fake_episode(), off_track=[False, True, True, False])
    with pytest.raises(Stopped):
        main.main(["train_bc", "--dataset", "off_road"])
    assert "warning" not in capsys.readouterr().err  # a way back to the road is in the laps: no warning
