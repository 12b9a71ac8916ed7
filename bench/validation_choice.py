"""Which checkpoint a fine-tuning run's validations make its policy, under each tie share.

   python bench/validation_choice.py ft_critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_spread1_stall100_weak_0_e100

Reads the run's periodic validation returns from its TensorBoard log and replays `train_rl`'s choice
(rl.note_validation) for strictly the best (`--validation_tie 0`, the rule before 2026-12-03's third session)
and for `--tie` (train_rl's default). Runs that train the same way choose the same weights when the
chosen steps agree, so a change of rule needs no new training to be measured there.

With `--episodes N` it also validates every kept checkpoint (`step_S.pt`) again on N validation tracks, the ones
`train_rl --eval_episodes N` would have used, replays the rule on those returns and tests both choices on
`--test_episodes` held-out tracks: what a longer validation would have bought, without training again.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))

from cli_runner import run_dirs, test_cell, tested  # noqa: E402
from env import VALIDATION_SEED_START  # noqa: E402
from finetune import eval_curve  # noqa: E402
from rl import RLConfig, no_validation, note_validation  # noqa: E402


def chosen_step(steps: list[int], returns: list[float], tie: float) -> int:
    best = no_validation()
    for step, raw in zip(steps, returns):
        note_validation(best, raw, step, tie)
    return best["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_ids", nargs="+", help="fine-tuning runs: ids under logs/ or their directories")
    parser.add_argument("--tie", type=float, default=RLConfig().validation_tie, help="the tie share to compare")
    parser.add_argument("--episodes", type=int, default=0,
                        help="validate every kept checkpoint again on this many validation tracks (0: only the logged "
                             "validations)")
    parser.add_argument("--test_episodes", type=int, default=50, help="held-out tracks that test both choices")
    args = parser.parse_args()
    if args.episodes < 0 or args.test_episodes < 1:
        parser.error("--episodes must be >= 0 and --test_episodes >= 1")
    paths = dict(zip(args.run_ids, run_dirs(args.run_ids)))
    curves = {}
    for run_id, path in paths.items():
        curves[run_id] = eval_curve(str(path.resolve()))  # an absolute path: logs/ / path is the path itself
        if not curves[run_id][0]:
            sys.exit(f"error: run {run_id} logged no periodic validation")
    if args.episodes:
        compare_longer_validation(paths, curves, args.episodes, args.test_episodes, args.tie)
        return
    print(f"| run | validation returns (step: raw) | strictly the best | within {args.tie:g} of the best |")
    print("|---|---|---|---|")
    for run_id, (steps, returns) in curves.items():
        curve = ", ".join(f"{s}: {r:.2f}" for s, r in zip(steps, returns))
        print(f"| {run_id} | {curve} | {chosen_step(steps, returns, 0.0)} | {chosen_step(steps, returns, args.tie)} |")


def compare_longer_validation(paths: dict[str, Path], curves: dict, episodes: int, test_episodes: int,
                              tie: float) -> None:
    """Each run's choice from its logged validations and from `episodes` validation tracks, both tested."""
    rows = []
    for run_id, path in paths.items():
        steps = [step for step in curves[run_id][0] if (path / "checkpoints" / f"step_{step}.pt").exists()]
        longer = [tested(run_id, episodes, checkpoint=f"step_{step}", seed=VALIDATION_SEED_START)["raw"]["mean"]
                  for step in steps]
        choices = (chosen_step(*curves[run_id], tie), chosen_step(steps, longer, tie))
        results = [tested(run_id, test_episodes, checkpoint=f"step_{step}") for step in choices]
        rows.append((run_id, ", ".join(f"{s}: {r:.1f}" for s, r in zip(steps, longer)), choices, results))
    print(f"| run | validation on {episodes} tracks (step: raw) | chosen on the logged validations: test raw "
          f"(laps, min) | chosen on {episodes} tracks: test raw (laps, min) |")
    print("|---|---|---|---|")
    for run_id, curve, choices, results in rows:
        cells = [f"step {s}: {test_cell(r, test_episodes)}" for s, r in zip(choices, results)]
        print(f"| {run_id} | {curve} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
