"""DART for people, with the autopilot standing in for the person: BC from 3, 5 and 10 laps recorded by `human`.

    python bench/human_dart.py                   # everything below, resumable (finished steps are skipped)
    python bench/human_dart.py --only_table      # rebuild the table from the finished runs

For each steering noise S (`--noises`) and demo set k (`--seeds`), `human --autopilot --noise S --seed k`
records `max(--laps)` laps through the keyboard's recorder (window events, noise, files; only the driver
differs; the window runs in real time, 50 frames/s), on the same tracks for every S. `train_bc` at its
defaults (training seed k; one lap of each set held out for validation) learns from the first 3, 5 and 10
of them; `test` scores every policy on the same `--test_episodes` held-out tracks (1,000,000 ...).
Writes bench/results/human_dart.json and bench/results/human_dart.md (the README table), keeping the earlier
file's rows of the noises and laps not measured now.
A recording interrupted halfway stops the script with the dataset to delete; an interrupted BC run resumes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))  # after the root: bench/expert.py must not shadow expert.py

import demos  # noqa: E402
from cli_runner import cli, tested  # noqa: E402
from runs import LOG_ROOT  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def dataset_name(noise: float, k: int) -> str:
    return f"hd_noise{noise:g}_{k}"


def run_id(noise: float, k: int, laps: int) -> str:
    return f"hd_bc_noise{noise:g}_{k}_n{laps}"


def record(noise: float, k: int, laps: int) -> None:
    """Demo set k at this noise, recorded once: `laps` laps by the autopilot through `human`'s recorder."""
    dataset = dataset_name(noise, k)
    have = len(demos.episode_paths(demos.dataset_dir(dataset)))
    if 0 < have < laps:  # `human` cannot skip the tracks it already drove
        raise SystemExit(f"{demos.dataset_dir(dataset)} holds {have} of {laps} laps (interrupted, or recorded "
                         "for fewer --laps): delete it and rerun")
    if not have:
        cli("human", "--dataset", dataset, "--autopilot", "--noise", noise, "--seed", k, "--episodes", laps)


def bc_finished(run: str) -> bool:
    return (LOG_ROOT / run / "wall_time_s").exists()  # written once train_bc returned


def bc_run(noise: float, k: int, laps: int) -> str:
    """BC on the first `laps` laps of demo set k (trained once; an interrupted run is resumed)."""
    run = run_id(noise, k, laps)
    if not bc_finished(run):
        started = time.time()
        if (LOG_ROOT / run / "config.json").exists():
            cli("train_bc", "--resume_run_id", run)
        else:
            cli("train_bc", "--dataset", dataset_name(noise, k), "--max_episodes", laps, "--run_id", run, "--seed", k)
        (LOG_ROOT / run / "wall_time_s").write_text(f"{time.time() - started:.0f}")
    return run


def demo_quality(dataset: str, laps: int) -> tuple[float, int]:
    """Mean raw return and completed laps of the first `laps` recorded episodes (what the driver achieved)."""
    paths = demos.episode_paths(demos.dataset_dir(dataset))[:laps]
    stats = [(ep.raw_return, ep.lap_complete) for ep in map(demos.load_episode, paths)]  # one episode in memory
    # numpy bools sum to int64: not JSON
    return float(np.mean([r for r, _ in stats])), int(sum(lap for _, lap in stats))


def row(runs: list[str], tests: list[dict], demo_stats: list[tuple[float, int]]) -> dict:
    """One table row from the per-seed `test` summaries and the demo sets' own (return, laps)."""
    return {
        "runs": runs,
        "raw_per_seed": [t["raw"]["mean"] for t in tests],
        "min_per_seed": [t["raw"]["min"] for t in tests],
        "laps_per_seed": [t["laps_completed"] for t in tests],
        "penalized_per_seed": [t["penalized"]["mean"] for t in tests],
        "offtrack_frames_per_seed": [t["offtrack_frames"]["mean"] for t in tests],
        "demo_return_per_seed": [r for r, _ in demo_stats],
        "demo_laps_per_seed": [n for _, n in demo_stats],
    }


def with_earlier_rows(table: dict[tuple[float, int], dict], earlier: Path) -> dict[tuple[float, int], dict]:
    """The rows measured now plus the earlier file's rows for other (noise, laps), sorted: a run with
    `--noises 0` adds the control without dropping the rows whose runs this checkout no longer has."""
    merged = {}
    for key, r in (json.loads(earlier.read_text()) if earlier.exists() else {}).items():
        noise, laps = key.removeprefix("noise ").removesuffix(" laps").split(" | ")
        merged[(float(noise), int(laps))] = r
    merged.update(table)  # the caller's table is left as it was
    return dict(sorted(merged.items(), key=lambda item: (-item[0][0], item[0][1])))


def markdown(table: dict[tuple[float, int], dict], test_episodes: int) -> str:
    pm = lambda v: f"{np.mean(v):.1f} ± {np.std(v):.1f}"
    lines = ["| noise | laps | seeds | raw return | per-seed mean | min | laps completed | penalized | "
             "off-track frames | the demos: raw return, laps |", "|" + "---|" * 10]
    for (noise, laps), r in table.items():
        demo_laps = ", ".join(f"{n}/{laps}" for n in r["demo_laps_per_seed"])
        lines.append(f"| {noise:g} | {laps} | {len(r['raw_per_seed'])} | {pm(r['raw_per_seed'])} | "
                     f"{', '.join(f'{v:.1f}' for v in r['raw_per_seed'])} | "
                     f"{', '.join(f'{v:.0f}' for v in r['min_per_seed'])} | "
                     f"{', '.join(f'{v}/{test_episodes}' for v in r['laps_per_seed'])} | "
                     f"{pm(r['penalized_per_seed'])} | "
                     f"{pm(r['offtrack_frames_per_seed'])} | {pm(r['demo_return_per_seed'])}, {demo_laps} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noises", type=float, nargs="+", default=[demos.DART_NOISE, 0.0],
                        help="steering noise of the recordings (human --noise)")
    parser.add_argument("--laps", type=int, nargs="+", default=[3, 5, 10], help="recorded laps BC learns from")
    parser.add_argument("--seeds", type=int, default=2, help="demo sets (human --seed k) and training seeds k")
    parser.add_argument("--test_episodes", type=int, default=50, help="held-out tracks every policy is tested on")
    parser.add_argument("--only_table", action="store_true", help="train nothing: tabulate the finished runs")
    args = parser.parse_args()
    if not args.only_table:
        for noise in args.noises:
            for k in range(args.seeds):
                record(noise, k, max(args.laps))
    # The table holds every finished run of the requested noises, laps and seeds.
    table = {}
    for noise in args.noises:
        for laps in args.laps:
            seeds = [k for k in range(args.seeds) if not args.only_table or bc_finished(run_id(noise, k, laps))]
            runs = [bc_run(noise, k, laps) for k in seeds]
            if runs:
                table[(noise, laps)] = row(runs, [tested(r, args.test_episodes) for r in runs],
                                           [demo_quality(dataset_name(noise, k), laps) for k in seeds])
    RESULTS.mkdir(exist_ok=True)
    table = with_earlier_rows(table, RESULTS / "human_dart.json")
    (RESULTS / "human_dart.json").write_text(
        json.dumps({f"noise {noise:g} | {laps} laps": r for (noise, laps), r in table.items()}, indent=2))
    (RESULTS / "human_dart.md").write_text(markdown(table, args.test_episodes) + "\n")
    print(markdown(table, args.test_episodes))


if __name__ == "__main__":
    main()
