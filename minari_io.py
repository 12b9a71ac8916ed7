"""Demonstrations to and from Minari, the Farama Foundation's format for offline RL datasets.

``replay --dataset NAME --export_minari ID`` writes one Minari episode per demo episode, losslessly (HDF5,
frames not JPEG-encoded), into ``$MINARI_DATASETS_PATH/<ID>/`` (default ``~/.minari/datasets``):
  observations  uint8   (T+1, 96, 96, 3)  raw frames, the reset frame first
  actions       float32 (T, 3)            (steer, gas, brake) the driver meant
  rewards       float32 (T,)              CarRacing's own (raw) rewards
  terminations, truncations  bool (T,)    only the last step's can be true
  infos         off_track bool (T+1,), executed_actions float32 (T+1, 3), when recorded: as Minari's
                DataCollector lines infos up with the observations, entry 0 belongs to the reset
                (off_track False: the car starts on the road; executed_actions NaN: no action yet)
  episode metadata  seed (the track), source ('human' | 'expert')
  env spec      CarRacingFast-v0; the evaluation env is stock CarRacing-v3 (byte-identical frames), which
                ``recover_environment(eval_env=True)`` builds without this repository.
``--dataset minari:ID`` reads such a dataset, or any Minari dataset of 96x96x3 frames and 3-number actions,
back into the episodes the demo files give (seed -1 where a dataset has none).
"""
from __future__ import annotations

import shutil
import warnings

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer
from minari.dataset.minari_dataset import DATASET_ID_RE
from minari.storage import get_dataset_path

from demos import UNKNOWN_SEED, Episode, load_each, shape_problem
from env import ENV_ID, FRAME_SHAPE
from errors import UserError

EVAL_ENV_ID = "CarRacing-v3"  # stock: CarRacingFast-v0 renders the same frames
DRIVERS = {"expert": "scripted autopilot (expert.py)", "human": "human driver (human.py)"}


def export_episodes(episodes: list[Episode], dataset_id: str) -> None:
    """Write ``episodes`` as the new Minari dataset ``dataset_id``; a failed or interrupted export leaves nothing."""
    check_new_id(dataset_id)
    try:
        with warnings.catch_warnings():
            # The CLI has no author or code link to give; Minari's warnings about them would bury the result.
            warnings.filterwarnings("ignore", message=r"`(author|author_email|code_permalink)` is set to None")
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                [to_buffer(episode) for episode in episodes],
                env=gym.spec(ENV_ID),
                eval_env=EVAL_ENV_ID,
                algorithm_name=" + ".join(sorted({DRIVERS.get(ep.source, "unknown driver") for ep in episodes})),
                description=describe(episodes),
                data_format="hdf5",
                jpeg_encoding=False,  # JPEG would change the frames; the demos' pixels must survive exactly
            )
            dataset.storage.update_episode_metadata([{"source": episode.source} for episode in episodes])
    except BaseException:
        shutil.rmtree(get_dataset_path(dataset_id), ignore_errors=True)
        raise
    print(f"wrote Minari dataset {dataset_id} ({len(episodes)} episodes, {dataset.total_steps} steps) "
          f"to {get_dataset_path(dataset_id)}")


def check_new_id(dataset_id: str) -> None:
    """A UserError unless ``dataset_id`` is a well-formed Minari id that no local dataset has."""
    match = DATASET_ID_RE.fullmatch(dataset_id)
    if not match or match.group("version") is None:
        raise UserError(f"--export_minari {dataset_id!r}: a Minari id is [namespace/]name-v<version>, "
                        "e.g. carracing/expert-v0 (letters, digits, - and _)")
    if get_dataset_path(dataset_id).exists():
        raise UserError(f"--export_minari {dataset_id}: {get_dataset_path(dataset_id)} already exists; "
                        f"pick another id or version, or delete it (minari delete {dataset_id})")


def to_buffer(episode: Episode) -> EpisodeBuffer:
    """One demo episode as a Minari episode (per-step flags; infos lined up with the observations)."""
    last_step = np.arange(len(episode)) == len(episode) - 1
    infos = {}
    if episode.off_track is not None:
        infos["off_track"] = np.concatenate([[False], episode.off_track])
    if episode.executed_actions is not None:
        infos["executed_actions"] = np.concatenate([np.full((1, 3), np.nan, np.float32), episode.executed_actions])
    return EpisodeBuffer(
        seed=episode.seed,
        observations=episode.observations,
        actions=episode.actions,
        rewards=episode.rewards,
        terminations=last_step & episode.terminated,
        truncations=last_step & episode.truncated,
        infos=infos,
    )


def describe(episodes: list[Episode]) -> str:
    laps = sum(episode.lap_complete for episode in episodes)
    return (f"{len(episodes)} CarRacing demonstrations ({laps} completed laps) from BC-SAC for CarRacing. "
            "Observations: raw 96x96x3 frames, reset frame first; actions: (steer, gas, brake) as the driver meant "
            "them; rewards: CarRacing's own. infos, entry 0 for the reset: off_track (no wheel on the road), "
            "executed_actions (only with DART noise: what the car executed). Episode metadata: seed (the track), "
            "source.")


def load_episodes(dataset_id: str, skip_bad: bool = False) -> list[Episode]:
    """The episodes of the local Minari dataset ``dataset_id``, as ``demos.load_dataset`` would give them."""
    where = f"--dataset minari:{dataset_id}"
    dataset = open_dataset(dataset_id, where)
    try:
        metadata = list(dataset.storage.get_episode_metadata(dataset.episode_indices))
        episodes = load_each(lambda pair: to_episode(*pair, where), zip(dataset.iterate_episodes(), metadata), skip_bad)
    except UserError:
        raise
    except Exception as error:  # a damaged HDF5 file fails in many ways: report them alike
        raise UserError(f"{where}: unreadable Minari dataset ({type(error).__name__}: {first_line(error)})") from None
    if not episodes:
        raise UserError(f"{where}: no readable episodes")
    return episodes


def open_dataset(dataset_id: str, where: str) -> minari.MinariDataset:
    """The Minari dataset, if it is local and holds CarRacing frames and actions; else a UserError."""
    if not dataset_id:
        raise UserError(f"{where}: give a Minari dataset id after 'minari:', e.g. minari:carracing/expert-v0")
    if not (get_dataset_path(dataset_id) / "data").is_dir():
        raise UserError(f"{where}: no such Minari dataset in {get_dataset_path()} "
                        "(set MINARI_DATASETS_PATH, or list them with `minari list local`)")
    try:
        dataset = minari.load_dataset(dataset_id)
    except Exception as error:
        raise UserError(f"{where}: unreadable Minari dataset ({type(error).__name__}: {first_line(error)})") from None
    frames, actions = dataset.observation_space, dataset.action_space
    if not (isinstance(frames, gym.spaces.Box) and frames.shape == FRAME_SHAPE and frames.dtype == np.uint8):
        raise UserError(f"{where}: observations must be 96x96x3 uint8 CarRacing frames, the dataset has {frames}")
    if not (isinstance(actions, gym.spaces.Box) and actions.shape == (3,)):
        raise UserError(f"{where}: actions must be (steer, gas, brake), a Box of shape (3,); the dataset has {actions}")
    return dataset


def to_episode(data: minari.EpisodeData, metadata: dict, where: str) -> Episode:
    """One Minari episode as a demo episode, checked as a demo file is; a UserError names what is wrong."""
    infos = data.infos or {}
    ends = np.asarray(data.terminations, bool) | np.asarray(data.truncations, bool)
    episode = Episode(
        observations=np.asarray(data.observations),
        actions=np.asarray(data.actions, np.float32),  # datasets from elsewhere may hold float64
        rewards=np.asarray(data.rewards, np.float32),
        terminated=bool(len(data) and data.terminations[-1]),
        truncated=bool(len(data) and data.truncations[-1]),
        seed=int(metadata.get("seed", UNKNOWN_SEED)),
        source=str(metadata.get("source", "")),
        executed_actions=after_reset(infos.get("executed_actions")),
        off_track=after_reset(infos.get("off_track")),
    )
    problem = shape_problem(episode) or ("it ends before its last step" if ends[:-1].any() else None)
    if problem:
        raise UserError(f"{where} episode {data.id}: {problem}")
    return episode


def after_reset(values) -> np.ndarray | None:
    """A per-step info without the reset's entry (Minari's infos line up with the observations)."""
    if values is None:
        return None
    values = np.asarray(values)
    return values[1:] if values.ndim else values


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else ""
