"""How a fine-tuning run's training episodes went, window by window of environment steps.

    python bench/training_episodes.py ft_critic_ln_weak_4_e100 ft_critic_ln_weak_4_e100_seed104 --window 3000

`train_rl` logs every finished training episode to TensorBoard (`train/episode_*`): its raw and penalized return,
whether the stall limit ended it (1) or not (0), the road tiles it left behind unvisited, and the critic's
prediction at its first state beside the discounted return that followed. This prints one markdown table per
quantity, a row per run and a column per window: the mean over the episodes that ended in it. The numbers behind a
curve that drifts, e.g. the share of episodes ended by the stall limit once the actor starts (the slow training seed
of weak demo set 4, 104: 0.47 to 0.80 of them in every window after step 6,000, which led to
`train_rl --stall_penalty`).
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

from cli_runner import run_dirs  # noqa: E402
from finetune import eval_curve  # noqa: E402

QUANTITIES = ("raw_return", "penalized_return", "stalled", "tiles_skipped", "predicted_q_s0", "discounted_return_s0")


def window_means(steps: list[int], values: list[float], window: int, last_step: int) -> list[tuple[float, int]]:
    """(mean, episodes) of the values logged in each window [a, a + window) from 0 through last_step."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    out = []
    for start in range(0, last_step + 1, window):
        inside = (steps >= start) & (steps < start + window)
        out.append((float(values[inside].mean()) if inside.any() else float("nan"), int(inside.sum())))
    return out


def table(curves: dict[str, tuple[list[int], list[float]]], window: int) -> str:
    last_step = max(max(steps) for steps, _ in curves.values())
    starts = range(0, last_step + 1, window)
    lines = ["| run | " + " | ".join(f"{a:,}–{a + window:,}" for a in starts) + " |", "|---|" + "---|" * len(starts)]
    for run_id, (steps, values) in curves.items():
        cells = [f"{mean:.2f} ({n})" if n else "—" for mean, n in window_means(steps, values, window, last_step)]
        lines.append(f"| {run_id} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_ids", nargs="+", help="fine-tuning runs: ids under logs/ or their directories")
    parser.add_argument("--window", type=int, default=3000, help="environment steps per column")
    parser.add_argument("--quantities", nargs="+", choices=QUANTITIES,
                        default=["raw_return", "stalled", "tiles_skipped"], metavar="NAME",
                        help=f"what to tabulate, of: {', '.join(QUANTITIES)} (default: %(default)s)")
    args = parser.parse_args()
    if args.window < 1:
        parser.error(f"--window must be >= 1, got {args.window}")
    paths = run_dirs(args.run_ids)
    for name in args.quantities:
        # An absolute path: finetune's logs/ / path is the path itself.
        curves = {path.name: eval_curve(str(path.resolve()), f"train/episode_{name}") for path in paths}
        if missing := [run for run, (steps, _) in curves.items() if not steps]:
            sys.exit(f"error: run {missing[0]} logged no train/episode_{name} (not a train_rl run, or none ended yet)")
        print(f"\n{name}, mean over the training episodes that ended in each window (episodes):\n")
        print(table(curves, args.window))


if __name__ == "__main__":
    main()
