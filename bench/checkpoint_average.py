"""Would a fine-tuning run drive better on the average of its last checkpoints' weights than on its validated policy?

   python bench/checkpoint_average.py RUN ... [--steps 20000 25000 30000] [--test_episodes 50]

For each run it writes checkpoints/average_<steps>.pt (the last named step's state, every floating-point weight of
the model averaged over the named steps' checkpoints; the run's `latest` is left alone), tests it on the held-out
tracks beside the run's own policy, and prints both. The averaged actor never drove in training, so this measures a
change of the run's final policy without training again (2026-12-06, fourth session: lost, docs/finetune_results.md).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))

from atomic_files import replacing  # noqa: E402
from cli_runner import run_dirs, test_cell, tested  # noqa: E402
from errors import UserError  # noqa: E402
from runs import checkpoint_path, load_checkpoint  # noqa: E402


def write_average(path: Path, steps: list[int]) -> str:
    """The averaged checkpoint's name, written into the run's checkpoints once (a missing step is named)."""
    name = "average_" + "_".join(map(str, steps))
    target = path / "checkpoints" / f"{name}.pt"
    if not target.exists():
        states = [load_checkpoint(checkpoint_path(path, f"step_{step}")) for step in steps]
        average = states[-1]
        for key, value in average["model"].items():
            if torch.is_floating_point(value):
                average["model"][key] = torch.stack([state["model"][key] for state in states]).mean(0)
        with replacing(target, "wb") as f:
            torch.save(average, f)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_ids", nargs="+", help="fine-tuning runs: ids under logs/ or their directories")
    parser.add_argument("--steps", nargs="+", type=int, default=[20_000, 25_000, 30_000],
                        help="the validated steps whose checkpoints (step_N.pt) are averaged")
    parser.add_argument("--test_episodes", type=int, default=50, help="held-out tracks both policies are tested on")
    args = parser.parse_args()
    if args.test_episodes < 1 or len(args.steps) < 2:
        parser.error("--test_episodes must be >= 1 and --steps name at least 2 checkpoints")
    paths = run_dirs(args.run_ids)
    try:  # every average written (a missing step is a one-line error) before anything is tested
        averages = [write_average(path, args.steps) for path in paths]
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print("| run | its policy: test raw (laps, min) | the average: test raw (laps, min) |")
    print("|---|---|---|")
    results = {"its policy": [], "the average": []}
    for run_id, average in zip(args.run_ids, averages):
        for name, checkpoint in (("its policy", None), ("the average", average)):
            results[name].append(tested(run_id, args.test_episodes, checkpoint=checkpoint))
        own, averaged = (test_cell(tests[-1], args.test_episodes) for tests in results.values())
        print(f"| {run_id} | {own} | {averaged} |")
    for name, tests in results.items():
        print(f"{name}: {np.mean([t['raw']['mean'] for t in tests]):.1f} over {len(tests)} runs, "
              f"{sum(t['laps_completed'] for t in tests)} laps of {len(tests) * args.test_episodes}")


if __name__ == "__main__":
    main()
