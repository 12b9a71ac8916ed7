"""What `train_rl --attempts` chooses, measured on runs already trained: of fine-tunings of one BC start with
different training seeds, the one whose policy validated best (rl.best_attempt), against them all.

   python bench/attempt_choice.py --group RUN_SEED_K RUN_SEED_K+100 --group ... [--test_episodes 50]

Each --group lists runs of the same start and settings, differing only in the training seed (bench/finetune.py
--training_seeds 2 trains such pairs), or a run of `--attempts 2` and its attempt_2 folder. Each run's own validated
policy (its checkpoints/best.pt; for ordinary runs what `test` drives) is tested on the held-out tracks (once; `test`
keeps the result), so the table shows what each attempt alone scored and what the choice kept. The validation tracks
are not the test tracks: the chosen runs' test means estimate what --attempts gives, without training again.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))

from cli_runner import run_dirs, test_cell, tested  # noqa: E402
from rl import attempt_validation, best_attempt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", nargs="+", action="append", required=True, metavar="RUN",
                        help="runs of one start differing in their training seed (ids under logs/ or directories)")
    parser.add_argument("--test_episodes", type=int, default=50, help="held-out tracks each run is tested on")
    args = parser.parse_args()
    if args.test_episodes < 1:
        parser.error("--test_episodes must be >= 1")
    if any(len(group) < 2 for group in args.group):
        parser.error("each --group needs at least 2 runs to choose between")
    paths = [run_dirs(group) for group in args.group]  # every id checked before anything is tested
    print("| runs (validation of the policy: test raw (laps, min)) | chosen | chosen's test |")
    print("|---|---|---|")
    chosen, every = [], []
    for group, folders in zip(args.group, paths):
        validations = [attempt_validation(folder) for folder in folders]
        results = [tested(run_id, args.test_episodes, checkpoint="best") for run_id in group]
        pick = best_attempt(validations) - 1
        chosen.append(results[pick])
        every += results
        cells = "; ".join(f"{run_id} ({v:.1f}: {test_cell(r, args.test_episodes)})"
                          for run_id, v, r in zip(group, validations, results))
        print(f"| {cells} | {group[pick]} | {test_cell(results[pick], args.test_episodes)} |")
    for name, results in (("chosen", chosen), ("every run", every)):
        means = [r["raw"]["mean"] for r in results]
        laps = sum(r["laps_completed"] for r in results)
        print(f"{name}: {np.mean(means):.1f} +- {np.std(means):.1f} over {len(results)} runs, {laps} laps of "
              f"{len(results) * args.test_episodes}, min {min(r['raw']['min'] for r in results):.0f}")


if __name__ == "__main__":
    main()
