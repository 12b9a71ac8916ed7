"""RL fine-tuning benchmark: BC-SAC vs lambda = 0 fine-tuning vs SAC from scratch, same step budget.

    python bench/rl_quality.py --bc_run BC_RUN [--total_steps 30000]   # train the three, test each on 50 tracks, plot
    python bench/rl_quality.py --plot RUN [RUN ...] [--labels ...]     # only plot existing runs' evaluation curves

Curves (periodic held-out evaluation, raw return vs environment steps) go to bench/results/rl_curves.png,
test tables to bench/results/rl.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))  # after the root: bench/expert.py must not shadow expert.py

from cli_runner import cli, test_summary  # noqa: E402
from runs import LOG_ROOT  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def eval_curve(run_id: str, tag: str = "eval/raw_return") -> tuple[list[int], list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(LOG_ROOT / run_id), size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Scalars(tag) if tag in events.Tags()["scalars"] else []
    return [s.step for s in scalars], [s.value for s in scalars]


def plot(run_ids: list[str], labels: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run_id, label in zip(run_ids, labels):
        for ax, tag in zip(axes, ("eval/raw_return", "eval/offtrack_frames")):
            steps, values = eval_curve(run_id, tag)
            ax.plot(steps, values, marker="o", label=label)
    axes[0].set_ylabel("raw return (held-out evaluation tracks)")
    axes[1].set_ylabel("off-track frames per episode")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    axes[0].axhline(900, color="gray", linestyle="--", linewidth=1)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"written {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bc_run", help="BC run to fine-tune")
    parser.add_argument("--total_steps", type=int, default=30_000)
    parser.add_argument("--test_episodes", type=int, default=50)
    parser.add_argument("--plot", nargs="+", metavar="RUN", help="only plot these runs")
    parser.add_argument("--labels", nargs="+", help="legend labels for --plot (default: the run ids)")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.plot:
        plot(args.plot, args.labels or args.plot, RESULTS / "rl_curves.png")
        return
    if not args.bc_run:
        parser.error("--bc_run is required unless --plot is given")
    stamp = time.strftime("%Y%m%d_%H%M%S")
    variants = {"BC-SAC": ["--resume_run_id", args.bc_run], "lambda=0": ["--resume_run_id", args.bc_run, "--bc_weight", "0"],
                "SAC from scratch": []}
    run_ids, results = [], {"BC (start)": test_summary(args.bc_run, args.test_episodes)}
    for label, flags in variants.items():
        run_id = f"bench_{label.split()[0].lower().replace('=', '')}_{stamp}"
        cli("train_rl", "--run_id", run_id, "--total_steps", args.total_steps, *flags)
        results[label] = test_summary(run_id, args.test_episodes)
        run_ids.append(run_id)
    (RESULTS / "rl.json").write_text(json.dumps(results, indent=2))
    plot(run_ids, list(variants), RESULTS / "rl_curves.png")


if __name__ == "__main__":
    main()
