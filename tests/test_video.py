"""Pictures: the full view, `test --video` in both views, evaluation clips and hyperparameters in TensorBoard,
and the README's GIF command."""
import importlib.util
import json
import shutil
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

import main
from agent import Agent
from env import TEST_SEED_START, EnvConfig, make_env
from evaluate import CLIP_SHRINK, evaluate
from runs import HPARAMS_SUFFIX
from video import OBS_SCALE, EpisodeRecorder

from flags import TINY
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A one-epoch BC run on one short autopilot lap, evaluated once (one validation track, clip on)."""
    path = tmp_path_factory.mktemp("video")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)
        assert main.main(["expert", "--dataset", "tiny", "--episodes", "1", "--max_frames", "60"]) == 0
        assert main.main(["train_bc", "--dataset", "tiny", "--run_id", "bc", "--epochs", "1", "--batch_size", "16",
                          "--val_fraction", "0", "--eval_every", "1", "--eval_episodes", "1"] + TINY) == 0
    return path


def events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def session_hparams(accumulator: EventAccumulator) -> dict:
    """The settings of the run's HParams row, as TensorBoard's hparams plugin reads them."""
    content = accumulator.PluginTagToContent(hparams_metadata.PLUGIN_NAME)[hparams_metadata.SESSION_START_INFO_TAG]
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}


def test_full_view_is_stock_rgb_array_and_leaves_observations_alone():
    """The fast full view equals stock CarRacing's rgb_array picture (no skid marks on a gentle start), and
    rendering it between steps changes no observation byte."""
    filmed, plain = make_env(EnvConfig(), pixels=False), make_env(EnvConfig(), pixels=False)
    try:
        assert np.array_equal(filmed.reset(seed=7)[0], plain.reset(seed=7)[0])
        for step in range(40):
            view = filmed.render_full_view()
            assert view.shape == (400, 600, 3) and view.dtype == np.uint8
            if step in (3, 39):  # during the zoom-in, and after it
                assert np.array_equal(view, plain.car_racing._render("rgb_array"))
            action = np.array([0.1 * np.sin(step / 5), 0.3, 0.0], np.float32)
            assert np.array_equal(filmed.step(action)[0], plain.step(action)[0])
    finally:
        filmed.close()
        plain.close()


def test_evaluate_films_the_first_track_while_others_run_beside_it(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    agent = Agent.load("logs/bc")
    recorder = EpisodeRecorder("full", max_frames=4)
    episodes = evaluate(agent, [TEST_SEED_START, TEST_SEED_START + 1], num_envs=2, recorder=recorder, progress=False)
    assert len(episodes) == 2 and len(recorder.frames) == 4
    env = make_env(EnvConfig(), pixels=False)
    env.reset(seed=TEST_SEED_START)
    assert np.array_equal(recorder.frames[0], env.render_full_view())  # the first track's own start
    env.close()


@pytest.mark.parametrize("view, suffix, size", [("full", ".mp4", (400, 600)), ("obs", ".gif", (96 * OBS_SCALE,) * 2)])
def test_test_command_writes_video_in_either_view(workdir, monkeypatch, capsys, view, suffix, size):
    monkeypatch.chdir(workdir)
    video = workdir / f"drive_{view}{suffix}"
    assert main.main(["test", "--resume_run_id", "bc", "--episodes", "1", "--num_envs", "1", "--video", str(video),
                      "--video_view", view]) == 0
    assert f"({view} view)" in capsys.readouterr().out
    result = json.loads((workdir / "logs" / "bc" / "test_results" / "latest_seed1000000_n1.json").read_text())
    with imageio.get_reader(video) as reader:
        shapes = [frame.shape[:2] for frame in reader.iter_data()]
    steps = result["episodes"][0]["frames"] // 2  # action repeat 2: one frame per agent step, plus the start
    assert shapes == [size] * (steps + 1)


def test_training_evaluation_writes_clip_and_hparams(workdir):
    accumulator = events(workdir / "logs" / "bc")
    clips = accumulator.Images("eval/episode")
    assert len(clips) == 1 and clips[0].step == accumulator.Scalars("eval/raw_return")[-1].step
    assert clips[0].encoded_image_string[:6] == b"GIF89a"
    assert (clips[0].height, clips[0].width) == (400 // CLIP_SHRINK, 600 // CLIP_SHRINK)
    settings = session_hparams(accumulator)
    assert settings["kind"] == "bc" and settings["train.lr"] == pytest.approx(3e-4) and settings["env.obs_size"] == 48
    evaluation = accumulator.Scalars("eval/raw_return")[-1].value
    assert accumulator.Scalars("final/best_eval_raw_return")[-1].value == pytest.approx(evaluation)
    assert accumulator.Scalars("final/last_eval_raw_return")[-1].value == pytest.approx(evaluation)


def test_resumed_run_replaces_its_hparams_and_scores_every_session(workdir, tmp_path, monkeypatch):
    shutil.copytree(workdir / "logs" / "bc", tmp_path / "logs" / "bc")  # this test's own copy of the run
    shutil.copytree(workdir / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert main.main(["train_bc", "--resume_run_id", "bc", "--epochs", "2"]) == 0
    run = tmp_path / "logs" / "bc"
    assert len(list(run.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"))) == 1
    accumulator = events(run)
    assert session_hparams(accumulator)["train.epochs"] == 2
    evaluations = [e.value for e in accumulator.Scalars("eval/raw_return")]
    assert len(evaluations) == 2 and len(accumulator.Images("eval/episode")) == 2
    assert accumulator.Scalars("final/best_eval_raw_return")[-1].value == pytest.approx(max(evaluations))
    assert accumulator.Scalars("final/last_eval_raw_return")[-1].value == pytest.approx(evaluations[-1])


def test_train_rl_records_hparams_without_evaluations(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "rl", "--total_steps", "20", "--learning_starts",
                      "10", "--batch_size", "8", "--num_envs", "1", "--eval_every", "0", "--eval_video", "0"]) == 0
    accumulator = events(workdir / "logs" / "rl")
    settings = session_hparams(accumulator)
    assert settings["kind"] == "rl" and settings["train.total_steps"] == 20 and settings["train.bc_run"] == "bc"
    assert settings["train.eval_video"] == 0  # switches are stored as numbers
    assert not accumulator.Tags()["images"] and "final/best_eval_raw_return" not in accumulator.Tags()["scalars"]


def test_readme_gif_command_films_a_held_out_track(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    spec = importlib.util.spec_from_file_location("readme_media", ROOT / "bench" / "readme_media.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gif = module.main(["bc", "--max_steps", "5", "--shrink", "4", "--out", str(workdir / "drive.gif")])
    with imageio.get_reader(gif) as reader:
        assert [frame.shape[:2] for frame in reader.iter_data()] == [(100, 150)] * 6
