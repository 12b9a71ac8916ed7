"""A run directory `logs/<run_id>/`: config.json, checkpoints/, TensorBoard events, test results.

Checkpoints are written atomically (temporary file, then rename), so Ctrl-C never leaves a broken one.
"""
from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy._core.multiarray  # noqa: F401  (submodules named in LEGACY_RNG_GLOBALS)
import numpy.random._pickle  # noqa: F401
import torch

from errors import UserError, check_plain_name
from networks import upgrade_state_dict

LOG_ROOT = Path(os.environ.get("BCSAC_LOG_ROOT", "logs"))
HPARAMS_SUFFIX = ".hparams"  # the event file holding a run's row of TensorBoard's HParams table


def new_run_id(prefix: str) -> str:
    return f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}"


def run_dir(run_id: str, must_exist: bool = True) -> Path:
    """`logs/<run_id>`; a path to an existing run directory is accepted too. A new run
    (`must_exist=False`, from --run_id) needs a plain name, so it lands in logs/ and nowhere else."""
    if not must_exist:
        return LOG_ROOT / check_plain_name("--run_id", run_id)
    path = Path(run_id)
    if not (path / "config.json").exists():
        path = LOG_ROOT / run_id
    if must_exist and not (path / "config.json").exists():
        raise UserError(f"run id {run_id!r}: no run at {path} (expected {path / 'config.json'})")
    return path


def save_config(path: Path, config: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path / "config.json", json.dumps(config, indent=2, sort_keys=True))


def load_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path / 'config.json'}: cannot read run config ({error})") from None


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:  # a failed or interrupted write leaves no stray temporary file
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, name: str, state: dict[str, Any]) -> Path:
    """Write `checkpoints/<name>.pt` atomically and point `latest` at it."""
    folder = path / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.pt"
    tmp = folder / f".{name}.pt.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before it replaces the previous checkpoint
        os.replace(tmp, target)
    except BaseException:  # a state that cannot be saved, a full disk, Ctrl-C: no half-written file left behind
        tmp.unlink(missing_ok=True)
        raise
    atomic_write_text(folder / "latest", target.name)
    return target


def set_latest(path: Path, name: str) -> None:
    """Point `latest` (what `test` and Agent.load use by default) at checkpoints/<name>.pt."""
    atomic_write_text(path / "checkpoints" / "latest", f"{name}.pt")


def checkpoint_path(path: Path, checkpoint: str | None = None) -> Path:
    """The named checkpoint (file name or stem) or the latest one, only ever inside the run's checkpoints/."""
    folder = path / "checkpoints"
    if checkpoint is None:
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
        lines = [line.strip() for line in str(error).splitlines() if line.strip().startswith(("Unsupported", "Can only"))]
        reason = lines[0] if lines else "not a torch checkpoint"
        raise UserError(f"{file}: cannot load checkpoint: only tensors and plain data are loaded ({reason[:200]})") from None
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
            flat[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) or value is None else str(value)
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
