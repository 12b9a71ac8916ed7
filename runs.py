"""A run directory `logs/<run_id>/`: config.json, checkpoints/, TensorBoard events, test results.

Checkpoints are written atomically (temporary file, then rename), so Ctrl-C never leaves a broken one. A
training holds its run (`claim_run`), so no two processes train one run id at once.
"""
from __future__ import annotations

import fcntl
import importlib
import json
import os
import pickle
import shutil
import socket
import sys
import time
import types
import typing
from contextlib import contextmanager, suppress
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import numpy._core.multiarray  # noqa: F401  (submodules named in LEGACY_RNG_GLOBALS)
import numpy.random._pickle  # noqa: F401
import torch

from atomic_files import atomic_write_text, check_writable, remove_stale_temp_files, replacing, signals_held_back
from env import EnvConfig
from errors import UserError, check_plain_name
from networks import ModelConfig, upgrade_state_dict

LOG_ROOT = Path(os.environ.get("BCSAC_LOG_ROOT", "logs"))
RESULTS_DIR = "test_results"  # `test` writes its results JSON here, inside the run
LOCK_FILE = ".lock"
MIN_FREE_BYTES = 64 * 2**20  # room for a dozen checkpoints of the default networks (about 5 MB each)
RUN_KINDS = {"bc": ("bc", "BCConfig"), "rl": ("rl", "RLConfig")}  # kind -> the dataclass of its `train` settings
HPARAMS_SUFFIX = ".hparams"  # the event file holding a run's row of TensorBoard's HParams table


def new_run_id(prefix: str) -> str:
    return f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}"


def run_dir(run_id: str, must_exist: bool = True) -> Path:
    """`logs/<run_id>`; a path to an existing run directory is accepted too. A new run
    (`must_exist=False`, from --run_id) needs a plain name, so it lands in logs/ and nowhere else."""
    if not must_exist:
        return LOG_ROOT / check_plain_name("--run_id", run_id)
    path = Path(run_id)
    if not (path / "config.json").exists() and len(path.parts) == 1:  # a plain id: the run's folder under logs/
        path = LOG_ROOT / run_id
    if not (path / "config.json").exists():
        raise UserError(f"run id {run_id!r}: no run at {path} (expected {path / 'config.json'})")
    return path


def save_config(path: Path, config: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path / "config.json", json.dumps(config, indent=2, sort_keys=True))


def load_config(path: Path) -> dict[str, Any]:
    """A run's config.json, checked: kind 'bc' or 'rl' and `train`, `env`, `model` settings of the right types,
    so a damaged or hand-edited file is a one-line error naming it, not a traceback later. Settings this version
    does not know are dropped, missing ones take their defaults (with a warning): other versions' runs still load."""
    file = path / "config.json"
    try:
        saved = json.loads(file.read_text())
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not text at all
        raise UserError(f"{file}: cannot read run config ({error})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("kind"), str) or saved["kind"] not in RUN_KINDS:
        raise UserError(f'{file}: not a run config (expected a JSON object with "kind": "bc" or "rl")')
    module, name = RUN_KINDS[saved["kind"]]
    train_class = getattr(importlib.import_module(module), name)  # imported here: bc and rl import this module
    for section, cls in (("train", train_class), ("env", EnvConfig), ("model", ModelConfig)):
        saved[section] = checked_settings(file, section, saved.get(section), cls)
    return saved


def checked_settings(file: Path, section: str, values: Any, cls: type) -> dict[str, Any]:
    """`values` (the JSON of `section`) as the complete settings of dataclass `cls`, each of its declared type."""
    if not isinstance(values, dict):
        raise UserError(f'{file}: "{section}" must be a JSON object of settings, got {json.dumps(values)[:60]}')
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    for key in sorted(names & set(values)):
        if not _has_type(values[key], hints[key]):
            expected = getattr(hints[key], "__name__", str(hints[key]))
            raise UserError(f"{file}: {section}.{key} must be {expected}, got {json.dumps(values[key])[:60]}")
    unknown, missing = sorted(set(values) - names), sorted(names - set(values))
    notes = [f"ignored (unknown to this version): {', '.join(unknown)}"] if unknown else []
    # A setting that did not exist when the run was saved takes the value it had then (the class's SAVED_BEFORE,
    # where that is not its default).
    before = {key: value for key, value in getattr(cls, "SAVED_BEFORE", {}).items() if key in missing}
    defaulted = [key for key in missing if key not in before and key not in getattr(cls, "QUIET_DEFAULTS", ())]
    notes += [f"missing (defaults used): {', '.join(defaulted)}"] if defaulted else []
    notes += [f"missing (as before they existed): {', '.join(f'{k} {v}' for k, v in before.items())}"] if before else []
    if notes:
        print(f"warning: {file}: {section} settings " + "; ".join(notes), file=sys.stderr)
    return asdict(cls(**{**before, **{key: values[key] for key in names & set(values)}}))


def _has_type(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a setting's type: int, float (an int is fine), bool, str, or one of them or None."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        if option is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True
        elif option in (int, bool, str, type(None)):
            if type(value) is option:  # exact: true is not an int setting
                return True
        else:
            return True  # another kind of setting: left to its own checks
    return False


def save_checkpoint(path: Path, name: str, state: dict[str, Any], copies: tuple[str, ...] = ()) -> Path:
    """Write `checkpoints/<name>.pt` atomically, the same bytes under each name in `copies` (serialized once),
    and point `latest` at `<name>.pt`."""
    folder = path / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.pt"
    # Ctrl-C inside torch.save turns into a RuntimeError from its zip writer (a traceback and exit 1, not a clean
    # stop): an interrupt waits until the checkpoint, its copies and the `latest` pointer are all written.
    with signals_held_back():
        with replacing(target, "wb") as f:  # on disk before it replaces the previous checkpoint
            torch.save(state, f)
        for copy in copies:
            with open(target, "rb") as source, replacing(folder / f"{copy}.pt", "wb") as f:
                shutil.copyfileobj(source, f)
        atomic_write_text(folder / "latest", target.name)
    return target


def set_latest(path: Path, name: str) -> None:
    """Point `latest` (what `test` and Agent.load use by default) at checkpoints/<name>.pt."""
    atomic_write_text(path / "checkpoints" / "latest", f"{name}.pt")


@contextmanager
def claim_run(path: Path, new: bool) -> Iterator[None]:
    """Train the run at `path` in this process alone while the block runs.

    A second training of the same run gets a one-line error naming the process that holds it. The claim is
    an flock on `<run>/.lock`, which the kernel drops when the process ends, however it ends (kill -9 too),
    so a crashed run is never left claimed. On entry, temporary files of killed writers are removed and the
    disk is checked for room. A `new` run that fails before its first checkpoint is removed again: its id
    stays free, and no run without a checkpoint is left behind.
    """
    created = not path.exists()
    lock = _lock(path)
    try:
        check_writable(path, MIN_FREE_BYTES)
        for folder in (path, path / "checkpoints", path / RESULTS_DIR):
            remove_stale_temp_files(folder)
        yield
    except BaseException:
        if new and not (path / "checkpoints" / "latest").exists():
            _remove_failed_run(path, created)
        raise
    finally:
        os.close(lock)


def _lock(path: Path) -> int:
    """`<path>/.lock`, made if missing, opened and locked exclusively; a UserError if another process holds it."""
    lock_file = path / LOCK_FILE
    while True:
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # a failed run removed this directory meanwhile: make it again
            continue
        except OSError as error:
            raise UserError(f"{path}: cannot write the run directory ({error.strerror or error})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"run id {path.name!r} is being trained by {holder} (it holds {lock_file}); "
                            "wait for it to end or pick another --run_id") from None
        if _names_file(lock_file, fd):
            break
        os.close(fd)  # its holder removed the file (a failed new run) after we opened it: lock the current one
    with suppress(OSError):  # only informs the error above; a full disk is reported by claim_run's check
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    return fd


def _names_file(path: Path, fd: int) -> bool:
    """Whether `path` is still the name of the open file `fd`."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except FileNotFoundError:
        return False


def _remove_failed_run(path: Path, created: bool) -> None:
    """Undo a new run that failed before its first checkpoint: its directory if the run made it, else only
    its config.json (what makes an id taken)."""
    if created:
        shutil.rmtree(path, ignore_errors=True)
    else:
        (path / "config.json").unlink(missing_ok=True)


def checkpoint_path(path: Path, checkpoint: str | None = None) -> Path:
    """The named checkpoint (file name or stem) or the latest one (None or "latest", the run's policy), only ever
    inside the run's checkpoints/."""
    folder = path / "checkpoints"
    if checkpoint in (None, "latest"):  # the pointer file names the policy's checkpoint; it is not one itself
        latest = folder / "latest"
        if not latest.exists():
            raise UserError(f"run {path}: no checkpoint yet in {folder}")
        checkpoint = latest.read_text().strip()
    if Path(checkpoint).name != checkpoint or checkpoint in ("", ".", ".."):
        raise UserError(f"run {path}: checkpoint {checkpoint!r} must be a name in {folder}, not a path")
    for candidate in (folder / checkpoint, folder / f"{checkpoint}.pt"):
        if candidate.is_file():
            return candidate
    available = ", ".join(sorted(p.stem for p in folder.glob("*.pt"))) or "none"
    raise UserError(f"run {path}: checkpoint {checkpoint!r} not found (available: {available})")


# Older checkpoints pickled a numpy Generator. These numpy constructors rebuild one (its PCG64 state, seed
# sequence and uint32 arrays) and nothing else, so allowing them keeps old runs loadable without letting a
# file name arbitrary callables.
LEGACY_RNG_GLOBALS = [
    np.random._pickle.__generator_ctor, np.random._pickle.__bit_generator_ctor,
    np.random.bit_generator.__pyx_unpickle_SeedSequence, np.random.bit_generator.SeedSequence,
    np.random.PCG64, np.ndarray, np.dtype, np.dtypes.UInt32DType, np._core.multiarray._reconstruct,
    np._core.multiarray.scalar, np.dtypes.Float64DType,  # numpy floats some runs stored in their counters
]


def rng_state(rng: np.random.Generator) -> dict:
    """A numpy generator as plain data (a checkpoint must load without unpickling objects)."""
    return rng.bit_generator.state


def rng_from_state(state: dict | np.random.Generator) -> np.random.Generator:
    if isinstance(state, np.random.Generator):  # checkpoints written before plain-data random states
        return state
    if state.get("bit_generator") != "PCG64":
        raise UserError(f"checkpoint: unsupported random generator {state.get('bit_generator')!r}")
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def load_checkpoint(file: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint onto `device` whatever device it was saved from; a broken file is a UserError.
    Only tensors and plain data are accepted (`weights_only`): loading never runs code from the file."""
    try:
        with torch.serialization.safe_globals(LEGACY_RNG_GLOBALS):
            state = torch.load(file, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:  # also what a file naming non-allowed callables gives
        lines = [line.strip() for line in str(error).splitlines()
                 if line.strip().startswith(("Unsupported", "Can only"))]
        reason = lines[0] if lines else "not a torch checkpoint"
        raise UserError(f"{file}: cannot load checkpoint: only tensors and plain data are loaded "
                        f"({reason[:200]})") from None
    except Exception as error:  # torch raises many types for a truncated or foreign file
        reason = (str(error).splitlines() or [""])[0]
        raise UserError(f"{file}: cannot load checkpoint ({type(error).__name__}: {reason})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"{file}: not a checkpoint of this project (no 'model' entry)")
    state["model"] = upgrade_state_dict(state["model"])
    return state


def log_hparams(writer) -> None:
    """The run as one row of TensorBoard's HParams table: config.json flattened (`train.lr`, `env.obs_size`,
    ...) and, as metrics, the mean raw return of the last and of the best periodic evaluation (`final/`).
    Call it at the end of training, on the writer of the run's directory."""
    from torch.utils.tensorboard.summary import hparams
    from torch.utils.tensorboard.writer import FileWriter

    path = Path(writer.log_dir)
    for tag, (value, step) in evaluation_scores(writer).items():
        writer.add_scalar(tag, value, step)
    writer.flush()
    # Only the session summaries, not the experiment one: TensorBoard shows the experiment summary of
    # one arbitrary run, which would hide the columns of runs with other settings (BC beside RL); without
    # it, it takes the union of all runs' settings and offers every scalar tag as a metric.
    _, session_start, session_end = hparams(flatten(load_config(path)), {})
    # In a file of their own, replaced each time: TensorBoard keeps a run's first session summary, and a
    # resumed run's settings (more epochs or steps) must replace those of its first session.
    for old in path.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"):
        old.unlink()
    session_writer = FileWriter(str(path), filename_suffix=HPARAMS_SUFFIX)
    session_writer.add_summary(session_start)
    session_writer.add_summary(session_end)
    session_writer.close()


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as `section.name` keys; values other than numbers, text and switches as text."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = (value if isinstance(value, (bool, int, float, str)) or value is None
                                      else str(value))
    return flat


def evaluation_scores(writer) -> dict[str, tuple[float, int]]:
    """{tag: (value, step)} of the last and the best `eval/raw_return`, read back from the run's event files,
    so a resumed run counts the evaluations of its earlier sessions too."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    writer.flush()
    events = EventAccumulator(str(writer.log_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    if "eval/raw_return" not in events.Tags()["scalars"]:
        return {}  # no periodic evaluation (--eval_every 0)
    history = events.Scalars("eval/raw_return")
    last = history[-1]
    return {"final/last_eval_raw_return": (last.value, last.step),
            "final/best_eval_raw_return": (max(e.value for e in history), last.step)}
