"""Where the strong start's last points are: the same policies tested braking less than they chose.

    python bench/brake_headroom.py ft_bc_strong_0_e100_ln1_dash1_avg0.9 ft_bc_strong_1_e100_ln1_dash1_avg0.9

Each run drives the held-out test tracks (`--episodes`, the same tracks `test` uses) once per `--scales`
value, with the brake of every action it picks multiplied by that value (1 = the policy as trained, before
train_rl's trials; steering and gas as trained). A policy that loses laps at a scale brakes no more
than it must; one that gains returns at 0.8 brakes where it need not, and a fine-tuning that left that gain on the table
could not see it. Adds its rows to bench/results/brake_headroom_<episodes>.json and .md (a run and scale measured
again replace their row). `--tracks validation` drives train_rl's validation tracks instead, those its brake trial
sees (`--episodes 10` = train_rl's --eval_episodes), into brake_headroom_validation_<episodes>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent import Agent  # noqa: E402
from env import TEST_SEED_START, VALIDATION_SEED_START  # noqa: E402
from errors import UserError  # noqa: E402
from evaluate import evaluate, summarize  # noqa: E402
from networks import ModelConfig  # noqa: E402

RESULTS = Path(__file__).parent / "results"


FIRST_TRACK = {"test": TEST_SEED_START, "validation": VALIDATION_SEED_START}


def measure(run_id: str, scale: float, episodes: int, tracks: str = "test") -> dict:
    # relative to the policy as trained (train_rl's trials set aside)
    agent = Agent.load(run_id, **{**ModelConfig.as_trained(), "brake_scale": scale})
    results = evaluate(agent, list(range(FIRST_TRACK[tracks], FIRST_TRACK[tracks] + episodes)), progress=False)
    summary, laps = summarize(results), [r["frames"] for r in results if r["lap_complete"]]
    return {"run": run_id, "brake_scale": scale, "raw_mean": summary["raw"]["mean"], "raw_min": summary["raw"]["min"],
            "laps": summary["laps_completed"], "frames_per_lap": float(np.mean(laps)) if laps else None,
            "offtrack_frames": summary["offtrack_frames"]["mean"]}


def markdown(rows: list[dict], episodes: int) -> str:
    lines = ["| run | brake × | raw return | min | laps | frames per finished lap | off-track frames |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        frames = f"{r['frames_per_lap']:.1f}" if r["frames_per_lap"] is not None else "—"
        lines.append(f"| {r['run']} | {r['brake_scale']:g} | {r['raw_mean']:.1f} | {r['raw_min']:.0f} | "
                     f"{r['laps']}/{episodes} | {frames} | {r['offtrack_frames']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run ids (BC or fine-tuned), each tested at every scale")
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0, 0.9, 0.8, 0.7],
                        help="brake multipliers (1 = the policy as it is)")
    parser.add_argument("--episodes", type=int, default=50, help="tracks driven at each scale")
    parser.add_argument("--tracks", choices=tuple(FIRST_TRACK), default="test",
                        help="the held-out test tracks (test's) or train_rl's validation tracks (its brake trial's)")
    args = parser.parse_args()
    if args.episodes < 1 or any(not 0 <= s <= 1 for s in args.scales):
        parser.error("--episodes must be >= 1 and every --scales value in [0, 1]")
    rows = []
    for run_id in args.runs:
        for scale in args.scales:
            try:
                rows.append(measure(run_id, scale, args.episodes, args.tracks))
            except UserError as error:
                raise SystemExit(f"error: {error}") from None
            print(markdown(rows[-1:], args.episodes).splitlines()[-1], flush=True)
    name = f"brake_headroom_{'validation_' if args.tracks == 'validation' else ''}{args.episodes}"
    rows = with_earlier_rows(rows, RESULTS / f"{name}.json")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=2))
    (RESULTS / f"{name}.md").write_text(markdown(rows, args.episodes) + "\n")
    print(markdown(rows, args.episodes))


def with_earlier_rows(rows: list[dict], earlier: Path) -> list[dict]:
    """The results file's rows, those of the (run, scale) pairs measured now replaced, new ones appended."""
    merged = {(r["run"], r["brake_scale"]): r for r in (json.loads(earlier.read_text()) if earlier.exists() else [])}
    merged.update({(r["run"], r["brake_scale"]): r for r in rows})
    return list(merged.values())


if __name__ == "__main__":
    main()
