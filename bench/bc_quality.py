"""Behaviour cloning end to end from nothing: autopilot demos -> train_bc -> test on held-out tracks.

    python bench/bc_quality.py                 # 20 calm autopilot episodes (DART noise 0.05), train_bc's defaults,
                                                 50 tracks
    python bench/bc_quality.py --episodes 5 10 20  # how few episodes suffice (one BC run per count, same dataset)

Runs the public CLI in this process; data goes to data/<dataset>/, runs to logs/, a summary to
bench/results/bc.json.
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

from cli_runner import cli, tested  # noqa: E402


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bench_calm20", help="demo dataset (recorded if missing)")
    parser.add_argument("--episodes", type=int, nargs="+", default=[20], help="demo episodes per BC run")
    parser.add_argument("--noise", type=float, default=0.05, help="DART steering noise of the demos")
    parser.add_argument("--epochs", type=int, default=None, help="train_bc --epochs (default: train_bc's)")
    parser.add_argument("--test_episodes", type=int, default=50)
    args = parser.parse_args()
    cli("expert", "--dataset", args.dataset, "--episodes", max(args.episodes), "--noise", args.noise, "--skip_existing")
    results = {}
    stamp = time.strftime("%Y%m%d_%H%M%S")
    for n in args.episodes:
        run_id = f"bench_bc{n}_{stamp}"
        epochs = [] if args.epochs is None else ["--epochs", args.epochs]
        cli("train_bc", "--dataset", args.dataset, "--max_episodes", n, *epochs, "--run_id", run_id)
        results[n] = {"run_id": run_id, **tested(run_id, args.test_episodes)}
    out = Path(__file__).parent / "results" / "bc.json"
    out.write_text(json.dumps(results, indent=2))
    for n, r in results.items():
        print(f"{n:3d} episodes: raw {r['raw']['mean']:.1f} ± {r['raw']['std']:.1f} (min {r['raw']['min']:.1f}), "
              f"penalized {r['penalized']['mean']:.1f}, laps {r['laps_completed']}/{r['episodes']}")
    print(f"written {out}")


if __name__ == "__main__":
    run()
