"""Minari: export keeps every array and the env spec; import gives the demo episodes back (hence the same BC
batches); a Minari copy re-simulates exactly; bad ids, spaces and episodes are one-line errors."""
import warnings
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
from minari.data_collector import EpisodeBuffer
from minari.dataset._storages.hdf5_storage import HDF5Storage

import demos
import main
import minari_io
from env import EnvConfig
from replay_buffer import demo_replay

FRAMES = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
ACTIONS = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two short expert episodes, the second with DART noise (so with executed_actions), recorded once."""
    root = tmp_path_factory.mktemp("recording")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert main.main(["expert", "--dataset", "demo", "--episodes", "1", "--max_frames", "12",
                          "--noise", "0"]) == 0
        assert main.main(["expert", "--dataset", "demo", "--episodes", "1", "--seed", "1",
                          "--max_frames", "12", "--noise", "0.2"]) == 0
    return root / "data" / "demo"


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch) -> Path:
    """Minari datasets of each test in its own directory, never in ~/.minari."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    monkeypatch.chdir(tmp_path)  # a train_bc that got through would write logs/ here
    return root


def one_line_error(capsys, argv) -> str:
    assert main.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    return err


def test_export_keeps_every_array_and_the_env_spec(dataset, minari_root):
    assert main.main(["replay", "--dataset", str(dataset), "--export_minari", "carracing/demo-v0"]) == 0
    exported = minari.load_dataset("carracing/demo-v0")
    originals = demos.load_dataset(dataset)
    metadata = list(exported.storage.get_episode_metadata(exported.episode_indices))
    assert (minari_root / "carracing" / "demo-v0" / "data").is_dir() and len(exported) == 2
    for episode, data, meta in zip(originals, exported.iterate_episodes(), metadata):
        for name in ("observations", "actions", "rewards"):  # same bytes: the frames are not JPEG-encoded
            np.testing.assert_array_equal(getattr(data, name), getattr(episode, name), strict=True)
        last = np.arange(len(episode)) == len(episode) - 1
        np.testing.assert_array_equal(data.terminations, last & episode.terminated)
        np.testing.assert_array_equal(data.truncations, last & episode.truncated)
        assert (meta["seed"], meta["source"]) == (episode.seed, "expert")
        assert data.infos["off_track"].tolist() == [False, *episode.off_track]  # entry 0: the reset
    clean, noisy = exported.iterate_episodes()
    assert "executed_actions" not in clean.infos
    assert np.isnan(noisy.infos["executed_actions"][0]).all()
    np.testing.assert_array_equal(noisy.infos["executed_actions"][1:], originals[1].executed_actions, strict=True)
    assert exported.env_spec == gym.spec("CarRacingFast-v0")
    assert exported.recover_environment(eval_env=True).spec.id == "CarRacing-v3"


def test_import_gives_the_demo_episodes_and_the_same_bc_batches(dataset):
    originals = demos.load_dataset(dataset)
    minari_io.export_episodes(originals, "demo-v1")
    imported = demos.load_named_dataset("minari:demo-v1")
    assert len(imported) == len(originals)
    for got, want in zip(imported, originals):
        for name in ("observations", "actions", "rewards", "off_track", "executed_actions"):
            if getattr(want, name) is None:
                assert getattr(got, name) is None, name
            else:
                np.testing.assert_array_equal(getattr(got, name), getattr(want, name), strict=True)
        assert ((got.terminated, got.truncated, got.seed, got.source)
                == (want.terminated, want.truncated, want.seed, want.source))
    config = EnvConfig(frame_stack=2)
    batch, expected = (demo_replay(episodes, config, 0.99).sample(16, np.random.default_rng(0))
                       for episodes in (imported, originals))
    assert batch.keys() == expected.keys()
    for key in batch:
        np.testing.assert_array_equal(batch[key], expected[key], strict=True)


def test_minari_copy_re_simulates_exactly(dataset, capsys):
    minari_io.export_episodes(demos.load_dataset(dataset), "demo-v2")
    assert main.main(["replay", "--dataset", "minari:demo-v2", "--verify", "--summary"]) == 0
    assert "verified 2/2 episodes byte-for-byte" in capsys.readouterr().out


def foreign_dataset(dataset_id: str, frames=FRAMES, actions=ACTIONS, terminations=(False, False, True)) -> None:
    """A Minari dataset written by someone else: float64 rewards, no seeds, no infos."""
    steps = len(terminations)
    rng = np.random.default_rng(0)
    buffer = EpisodeBuffer(
        observations=rng.integers(0, 256, (steps + 1, *frames.shape), dtype=np.uint8),
        actions=rng.uniform(0, 1, (steps, *actions.shape)).astype(np.float32),
        rewards=[0.5] * steps,
        terminations=list(terminations),
        truncations=[False] * steps,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari's advice about missing authors and env specs
        minari.create_dataset_from_buffers(dataset_id, [buffer], observation_space=frames, action_space=actions,
                                           jpeg_encoding=False)


def test_a_dataset_from_elsewhere_loads_without_seeds(capsys, tmp_path):
    foreign_dataset("other-v0")
    (episode,) = demos.load_named_dataset("minari:other-v0")
    assert episode.rewards.dtype == np.float32 and episode.terminated and episode.seed == demos.UNKNOWN_SEED
    assert main.main(["replay", "--dataset", "minari:other-v0", "--verify"]) == 1
    assert "no track seed recorded" in capsys.readouterr().out
    video = tmp_path / "other.gif"
    assert main.main(["replay", "--dataset", "minari:other-v0", "--video", str(video)]) == 2  # full view: re-driven
    assert "--video_view obs" in capsys.readouterr().err and not video.exists()


@pytest.mark.parametrize("argv, words", [
    (["replay", "--dataset", "minari:nope-v0", "--summary"], "no such Minari dataset"),
    (["train_bc", "--dataset", "minari:nope-v0"], "no such Minari dataset"),
    (["replay", "--dataset", "minari:", "--summary"], "give a Minari dataset id"),
    (["replay", "--dataset", "minari:other-v0", "--episode", "0"], "replayed whole"),
    (["replay", "--dataset", "d", "--export_minari", "no-version"], "name-v<version>"),
    (["replay", "--dataset", "d", "--export_minari", "../escape-v0"], "name-v<version>"),
    (["replay", "--dataset", "d", "--export_minari", "other-v0"], "already exists"),
])
def test_bad_names_are_one_line_errors(capsys, argv, words):
    foreign_dataset("other-v0")
    assert words in one_line_error(capsys, argv)


@pytest.mark.parametrize("kwargs, words", [
    (dict(frames=gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)), "observations must be 96x96x3 uint8"),
    (dict(actions=gym.spaces.Box(-1, 1, (2,), np.float32)), "actions must be (steer, gas, brake)"),
    (dict(terminations=(False, True, False)), "episode 0: it ends before its last step"),
])
def test_wrong_spaces_and_episodes_are_one_line_errors(capsys, kwargs, words):
    foreign_dataset("wrong-v0", **kwargs)
    assert words in one_line_error(capsys, ["train_bc", "--dataset", "minari:wrong-v0"])


def test_interrupted_export_leaves_no_dataset(dataset, minari_root, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(HDF5Storage, "update_episode_metadata", interrupt)  # after the episodes are written
    assert main.main(["replay", "--dataset", str(dataset), "--export_minari", "cut-v0"]) == 130
    assert not (minari_root / "cut-v0").exists()
