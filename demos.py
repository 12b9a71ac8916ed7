"""The demonstration file format: one compressed .npz per episode, written atomically, loaded with checks.

``data/<dataset>/episode_<n>.npz`` holds
  observations  uint8   (T+1, 96, 96, 3)  raw frames, the reset frame first
  actions       float32 (T, 3)            (steer, gas, brake) the driver meant
  rewards       float32 (T,)              CarRacing's own (raw) rewards
  terminated, truncated  bool
  seed          int                       the track
  source        str                       'human' | 'expert' (optional)
  off_track     bool    (T,)              optional: no wheel on the road after the step (for penalized rewards)
  executed_actions float32 (T, 3)         only in noisy (DART, ``--noise``) demos: the actions the car
                                          actually executed, which ``replay --verify`` re-simulates
Demos are recorded one frame per action (action_repeat=1), so ``--verify`` can re-simulate them exactly.
``--dataset minari:<id>`` loads a Minari dataset into the same episodes (minari_io.py).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import numpy as np

from atomic_files import check_writable, create_temp, remove_stale_temp_files, signals_held_back
from env import FRAME_SHAPE
from errors import UserError, check_plain_name

MINARI_PREFIX = "minari:"  # --dataset minari:<id> names a Minari dataset instead of data/<dataset>/
EPISODE_PATTERN = re.compile(r"^episode_(\d+)\.npz$")
REQUIRED_KEYS = ("observations", "actions", "rewards", "terminated", "truncated", "seed")
OPTIONAL_KEYS = ("executed_actions", "off_track")
SOURCES = ("human", "expert")
UNKNOWN_SEED = -1  # the track of an episode imported from a dataset that does not record it
ACTION_LOW, ACTION_HIGH = np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32)  # steer, gas, brake
DART_NOISE = 0.05  # the steering noise that makes recorded laps teach recoveries (expert's default)
MIN_FREE_BYTES = 64 * 2**20  # disk room asked before recording: dozens of episodes (about 1.5 MB each)
T = TypeVar("T")


@dataclass
class Episode:
    """One recorded episode; ``path`` is where it was loaded from (None before it is written)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool
    seed: int
    source: str = ""
    executed_actions: np.ndarray | None = None  # only when they differ from `actions` (DART noise)
    off_track: np.ndarray | None = None  # per step, when recorded
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def driven_actions(self) -> np.ndarray:
        """The actions the car really executed (what re-simulation must replay)."""
        return self.actions if self.executed_actions is None else self.executed_actions

    @property
    def raw_return(self) -> float:
        return float(self.rewards.sum(dtype=np.float64))

    @property
    def lap_complete(self) -> bool:
        # CarRacing terminates only on a finished lap (or leaving the playfield, which costs -100).
        return bool(self.terminated and self.rewards[-1] > -100)  # a plain bool: counts of it go into JSON


def episode_paths(dataset_dir: str | Path) -> list[Path]:
    """The dataset's episode files, in episode-number order."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in dataset_dir.iterdir() if (m := EPISODE_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def next_episode_number(dataset_dir: str | Path) -> int:
    """One past the highest existing episode number (0 for a new dataset)."""
    paths = episode_paths(dataset_dir)
    return int(EPISODE_PATTERN.match(paths[-1].name).group(1)) + 1 if paths else 0


def write_episode(
    dataset_dir: str | Path,
    observations: np.ndarray | list,
    actions: np.ndarray | list,
    rewards: np.ndarray | list,
    terminated: bool,
    truncated: bool,
    seed: int,
    source: str = "",
    executed_actions: np.ndarray | list | None = None,
    off_track: np.ndarray | list | None = None,
    number: int | None = None,
) -> Path:
    """Write one episode as ``episode_<n>.npz`` (n continues after existing files unless given); return its path.

    The file appears complete or not at all: it is written under a temporary name in the same
    directory and then given its name, so an interrupted recording never leaves a half-written episode.
    Without ``number`` an existing episode is never replaced: when another recording into the same dataset
    has taken the number meanwhile, the next free one is used. A given ``number`` replaces that episode.
    """
    if source and source not in SOURCES:  # optional (GUIDE): "" writes none, e.g. laps a trained policy drove
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if seed < 0:
        raise ValueError(f"seed must be a track seed >= 0, got {seed}")
    episode = Episode(
        observations=np.asarray(observations, dtype=np.uint8),
        actions=np.asarray(actions, dtype=np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        terminated=bool(terminated),
        truncated=bool(truncated),
        seed=int(seed),
        source=source,
        executed_actions=None if executed_actions is None else np.asarray(executed_actions, dtype=np.float32),
        off_track=None if off_track is None else np.asarray(off_track, dtype=bool),
    )
    problem = shape_problem(episode)
    if problem:
        raise ValueError(f"refusing to write a malformed episode: {problem}")
    dataset_dir = Path(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    extra = {k: getattr(episode, k) for k in OPTIONAL_KEYS if getattr(episode, k) is not None}
    arrays = dict(
        observations=episode.observations,
        actions=episode.actions,
        rewards=episode.rewards,
        terminated=np.bool_(episode.terminated),
        truncated=np.bool_(episode.truncated),
        seed=np.int64(episode.seed),
        **({"source": np.str_(episode.source)} if episode.source else {}),
        **extra,
    )
    with signals_held_back():  # a finished lap is never lost to Ctrl-C or SIGTERM
        fd, tmp = create_temp(dataset_dir / "episode.npz")
        try:
            with os.fdopen(fd, "wb") as f:
                _write_npz(f, arrays)
                f.flush()
                os.fsync(f.fileno())
            if number is not None:  # the caller chose the episode: replace it
                path = dataset_dir / f"episode_{number}.npz"
                os.replace(tmp, path)
                return path
            number = next_episode_number(dataset_dir)
            while True:
                path = dataset_dir / f"episode_{number}.npz"
                try:
                    _claim_name(tmp, path)
                    return path
                except FileExistsError:  # another recording took this number meanwhile
                    number = max(number + 1, next_episode_number(dataset_dir))
        except OSError as error:  # a full disk
            raise UserError(f"{dataset_dir}: cannot write the episode ({error.strerror or error})") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _claim_name(tmp: Path, path: Path) -> None:
    """Give the finished file ``tmp`` the name ``path`` atomically; FileExistsError if the name is taken.
    Unlike a rename, a hard link never replaces a file, so two recordings into one dataset keep all episodes."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: claim the name exclusively, then rename onto it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.replace(tmp, path)


def _write_npz(file, arrays: dict[str, np.ndarray]) -> None:
    """What ``np.savez_compressed`` writes, but with a fixed timestamp in the zip entries, so the same
    episode always gives the same bytes (recording is reproducible file for file)."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, mode="w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


def shape_problem(ep: Episode) -> str | None:
    """What is wrong with the arrays' dtypes and shapes, or None."""
    obs, act, rew = ep.observations, ep.actions, ep.rewards
    if obs.dtype != np.uint8:
        return f"observations must be uint8, got {obs.dtype}"
    if act.dtype != np.float32:
        return f"actions must be float32, got {act.dtype}"
    if rew.dtype != np.float32:
        return f"rewards must be float32, got {rew.dtype}"
    if act.ndim != 2 or act.shape[1] != 3:
        return f"actions must have shape (T, 3), got {act.shape}"
    steps = act.shape[0]
    if steps < 1:
        return "episode has no steps (T = 0)"
    if obs.shape != (steps + 1, *FRAME_SHAPE):
        return f"observations must have shape (T+1, 96, 96, 3) = {(steps + 1, *FRAME_SHAPE)}, got {obs.shape}"
    if rew.shape != (steps,):
        return f"rewards must have shape (T,) = ({steps},), got {rew.shape}"
    if not (np.all(np.isfinite(act)) and np.all(np.isfinite(rew))):
        return "actions or rewards contain NaN or infinity"
    if np.any(act < ACTION_LOW) or np.any(act > ACTION_HIGH):
        return "actions outside CarRacing's bounds (steer in [-1, 1], gas and brake in [0, 1])"
    executed = ep.executed_actions
    if executed is not None and (executed.dtype != np.float32 or executed.shape != act.shape):
        return f"executed_actions must be float32 of shape {act.shape}, got {executed.dtype} {executed.shape}"
    if executed is not None and not np.all(np.isfinite(executed)):
        return "executed_actions contain NaN or infinity"
    if executed is not None and (np.any(executed < ACTION_LOW) or np.any(executed > ACTION_HIGH)):
        return "executed_actions outside CarRacing's bounds (steer in [-1, 1], gas and brake in [0, 1])"
    off = ep.off_track
    if off is not None and (off.dtype != np.bool_ or off.shape != (steps,)):
        return f"off_track must be bool of shape ({steps},), got {off.dtype} {off.shape}"
    return None


def load_episode(path: str | Path) -> Episode:
    """Load and validate one episode file; any problem raises UserError naming the file, in one line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such episode file")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a valid .npz archive (truncated or corrupt file?)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in REQUIRED_KEYS if k not in data.files]
            if missing:
                raise UserError(f"{path}: not an episode file, missing {', '.join(missing)}")
            arrays = {k: data[k] for k in data.files}
    except UserError:
        raise
    except Exception as error:  # damaged archives fail in many ways (zlib, CRC, EOF, ...): report them alike
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{path}: unreadable episode file ({type(error).__name__}: {detail})") from None
    for key in ("terminated", "truncated", "seed"):
        if arrays[key].shape != ():
            raise UserError(f"{path}: {key} must be a single value, got shape {arrays[key].shape}")
    for key in ("terminated", "truncated"):
        if arrays[key].dtype != np.bool_:  # bool() would read any number or text as a flag
            raise UserError(f"{path}: {key} must be a bool, got {arrays[key].dtype} {arrays[key]!s:.40}")
    if arrays["seed"].dtype.kind not in "iu":
        raise UserError(f"{path}: seed must be an integer, got {arrays['seed'].dtype}")
    if int(arrays["seed"]) < 0:
        raise UserError(f"{path}: seed must be a track seed >= 0, got {int(arrays['seed'])}")
    source = str(arrays["source"]) if "source" in arrays else ""
    episode = Episode(
        observations=arrays["observations"],
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        terminated=bool(arrays["terminated"]),
        truncated=bool(arrays["truncated"]),
        seed=int(arrays["seed"]),
        source=source,
        executed_actions=arrays.get("executed_actions"),
        off_track=arrays.get("off_track"),
        path=path,
    )
    problem = shape_problem(episode)
    if problem:
        raise UserError(f"{path}: {problem}")
    return episode


def load_dataset(dataset_dir: str | Path, skip_bad: bool = False) -> list[Episode]:
    """All episodes of a dataset, in order. A bad file raises UserError, or with ``skip_bad`` warns and is skipped."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise UserError(f"dataset directory {dataset_dir} does not exist")
    paths = episode_paths(dataset_dir)
    if not paths:
        raise UserError(f"dataset directory {dataset_dir} has no episode_<n>.npz files")
    episodes = load_each(load_episode, paths, skip_bad)
    if not episodes:
        raise UserError(f"dataset directory {dataset_dir} has no readable episodes")
    return episodes


def load_each(load: Callable[[T], Episode], sources: Iterable[T], skip_bad: bool) -> list[Episode]:
    """``load`` applied to each source; its UserError stops the loading, or with ``skip_bad`` is a warning."""
    episodes = []
    for source in sources:
        try:
            episodes.append(load(source))
        except UserError as error:
            if not skip_bad:
                raise UserError(f"{error} (pass --skip_bad to use the other episodes)") from None
            print(f"warning: skipping {error}", file=sys.stderr)
    return episodes


def load_named_dataset(name: str, skip_bad: bool = False) -> list[Episode]:
    """The episodes of ``--dataset name``: ``data/<name>/``, a directory path, or ``minari:<dataset id>``."""
    if name.startswith(MINARI_PREFIX):
        import minari_io  # here, not at the top: minari_io builds on this module

        return minari_io.load_episodes(name.removeprefix(MINARI_PREFIX), skip_bad)
    return load_dataset(dataset_dir(name), skip_bad)


def summarize(episodes: list[Episode]) -> dict:
    """Dataset statistics: episode and frame counts, raw returns, sources, completed laps."""
    returns = np.array([ep.raw_return for ep in episodes], dtype=np.float64)
    sources: dict[str, int] = {}
    for ep in episodes:
        sources[ep.source or "unknown"] = sources.get(ep.source or "unknown", 0) + 1
    return {
        "episodes": len(episodes),
        "frames": int(sum(len(ep) for ep in episodes)),
        "mean_return": float(returns.mean()) if len(returns) else 0.0,
        "std_return": float(returns.std()) if len(returns) else 0.0,
        "min_return": float(returns.min()) if len(returns) else 0.0,
        "max_return": float(returns.max()) if len(returns) else 0.0,
        "laps": int(sum(ep.lap_complete for ep in episodes)),
        "sources": sources,
    }


def lacks_recoveries(episodes: list[Episode]) -> bool:
    """Whether the episodes certainly show no recovery to learn from: no episode's executed steering was
    perturbed (DART) and every episode records ``off_track`` without a single off-track frame.
    An episode that does not record ``off_track`` (some imported datasets) may hold recoveries: not flagged."""
    perturbed = any(ep.executed_actions is not None and not np.array_equal(ep.executed_actions, ep.actions)
                    for ep in episodes)
    maybe_off_road = any(ep.off_track is None or ep.off_track.any() for ep in episodes)
    return not (perturbed or maybe_off_road)


def warn_no_recoveries(episodes: list[Episode]) -> None:
    """One line on stderr, naming the recording option that fixes it, for episodes that show no recovery
    (`lacks_recoveries`): the clone of laps that never leave the ideal line has never seen how to come back to it."""
    recorders = sorted({ep.source for ep in episodes} & set(SOURCES)) or list(SOURCES)
    fixes = " or ".join(f"{recorder} --noise {DART_NOISE}" for recorder in recorders)
    print(f"warning: no episode shows a recovery (no perturbed steering, never off the road), so the clone will "
          f"drift off at its first mistake; record with DART noise: {fixes}", file=sys.stderr)


def format_summary(summary: dict) -> str:
    """One readable line for the terminal."""
    sources = ", ".join(f"{k} {v}" for k, v in sorted(summary["sources"].items()))
    return (
        f"{summary['episodes']} episodes, {summary['frames']} frames; raw return mean "
        f"{summary['mean_return']:.1f} ± {summary['std_return']:.1f}, min {summary['min_return']:.1f}, "
        f"max {summary['max_return']:.1f}; laps completed {summary['laps']}/{summary['episodes']}; "
        f"sources: {sources}"
    )


def add_epilog(parser: argparse.ArgumentParser, module_doc: str) -> None:
    """The module docstring minus its first line becomes the subcommand's --help epilog."""
    parser.epilog = module_doc.split("\n", 1)[1].strip("\n")  # keep the first example's indentation


def recording_dir(name: str) -> Path:
    """``data/<name>``, ready for recording: a plain name, a writable folder with room for episodes (checked
    now, not after a hand-driven lap), and no temporary files of recorders that were killed."""
    path = dataset_dir(name, write=True)
    check_writable(path, MIN_FREE_BYTES)
    remove_stale_temp_files(path)
    return path


def dataset_dir(name: str, root: str | Path = "data", write: bool = False) -> Path:
    """``data/<name>``; for reading, a name with a path separator is taken as a directory as-is.
    Recording (``write``) needs a plain name, so new episodes land in data/ and nowhere else."""
    if not name:
        raise UserError("--dataset must not be empty")
    if write:
        return Path(root) / check_plain_name("--dataset", name)
    return Path(name) if (os.sep in name or "/" in name) else Path(root) / name
