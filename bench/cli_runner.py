"""Benchmarks drive the public CLI in-process, exactly as a user would type it."""
import filecmp
import json
import sys
from pathlib import Path

import main
from agent import own_driving_setting
from env import TEST_SEED_START
from evaluate import results_file
from errors import UserError
from networks import ModelConfig
from runs import checkpoint_path, run_dir


def cli(*argv) -> None:
    print("$ python main.py " + " ".join(map(str, argv)), flush=True)
    code = main.main([str(a) for a in argv])
    if code:
        sys.exit(code)


def tested(run_id: str, episodes: int, shove: float = 0.0, checkpoint: str | None = None,
           seed: int = TEST_SEED_START) -> dict:
    """`test` summary of a run on the held-out tracks from `seed` (run once, then read back)."""
    return test_results(run_id, episodes, shove, checkpoint, seed)["summary"]


def test_cell(summary: dict, episodes: int) -> str:
    """A test summary as a table cell: mean raw return (laps finished / tracks, worst return)."""
    return f"{summary['raw']['mean']:.1f} ({summary['laps_completed']}/{episodes}, min {summary['raw']['min']:.0f})"


def episodes_of(run_id: str, episodes: int, shove: float = 0.0, checkpoint: str | None = None) -> list[dict]:
    """The per-episode records of the same test."""
    return test_results(run_id, episodes, shove, checkpoint)["episodes"]


def run_dirs(run_ids: list[str]) -> list[Path]:
    """Each run's directory (a run id or the path of a run's directory, as `test` takes it); a missing run is a
    one-line error (exit 2), before any table is printed or any test runs."""
    try:
        return [run_dir(run_id) for run_id in run_ids]
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def is_own_policy(path: Path, checkpoint: str) -> bool:
    """Whether a named checkpoint is the run's own policy: `latest` names it, or it holds the same bytes (`best` is
    a byte copy of the validated step that became the policy), and the policy drives as trained (a named checkpoint
    does; train_rl's trials may have changed the policy's). A missing one is not: `test` names it."""
    model = json.loads((path / "config.json").read_text()).get("model", {})
    driving = {key: model.get(key, default) for key, default in ModelConfig.as_trained().items()}
    if any(own_driving_setting(value, checkpoint, key) != value for key, value in driving.items()):
        return False
    try:
        own, named = checkpoint_path(path), checkpoint_path(path, checkpoint)
    except UserError:
        return False
    return own == named or filecmp.cmp(own, named, shallow=False)


def test_results(run_id: str, episodes: int, shove: float, checkpoint: str | None,
                 seed: int = TEST_SEED_START) -> dict:
    """`test` of a run (its own checkpoint unless named, its own action), run once, then read back."""
    [path] = run_dirs([run_id])
    if checkpoint and is_own_policy(path, checkpoint):
        checkpoint = None  # the same test as without a name: read back, not run again
    result = results_file(path, checkpoint, seed, episodes, shove, policy_action=None)
    if not result.exists():
        cli("test", "--resume_run_id", run_id, "--episodes", episodes, *(["--shove", shove] if shove else []),
            *(["--checkpoint", checkpoint] if checkpoint else []),
            *(["--seed", seed] if seed != TEST_SEED_START else []))
    return json.loads(result.read_text())
