"""Which checkpoint a fine-tuning run's validations make its policy, under each tie share.

    python bench/validation_choice.py ft_critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_spread1_stall100_weak_0_e100

Reads the run's periodic validation returns from its TensorBoard log and replays `train_rl`'s choice
(rl.note_validation) for strictly the best (`--validation_tie 0`, the rule before 2026-12-03's third session)
and for `--tie` (train_rl's default). Runs that train the same way choose the same weights when the
chosen steps agree, so a change of rule needs no new training to be measured there.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))

from finetune import eval_curve  # noqa: E402
from rl import RLConfig, no_validation, note_validation  # noqa: E402
from runs import LOG_ROOT  # noqa: E402


def chosen_step(steps: list[int], returns: list[float], tie: float) -> int:
    best = no_validation()
    for step, raw in zip(steps, returns):
        note_validation(best, raw, step, tie)
    return best["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_ids", nargs="+", help="fine-tuning runs under logs/")
    parser.add_argument("--tie", type=float, default=RLConfig().validation_tie, help="the tie share to compare")
    args = parser.parse_args()
    if missing := [run_id for run_id in args.run_ids if not (LOG_ROOT / run_id).is_dir()]:
        sys.exit(f"error: no run {', '.join(missing)} under {LOG_ROOT}/")
    print(f"| run | validation returns (step: raw) | strictly the best | within {args.tie:g} of the best |")
    print("|---|---|---|---|")
    for run_id in args.run_ids:
        steps, returns = eval_curve(run_id)
        if not steps:
            sys.exit(f"error: run {run_id} logged no periodic validation")
        curve = ", ".join(f"{s}: {r:.2f}" for s, r in zip(steps, returns))
        print(f"| {run_id} | {curve} | {chosen_step(steps, returns, 0.0)} | {chosen_step(steps, returns, args.tie)} |")


if __name__ == "__main__":
    main()
