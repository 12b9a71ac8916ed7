"""Why a policy's test laps fail: its unfinished held-out episodes sorted by what went wrong.

    python bench/failures.py ft_critic_ln_weak_0_e100 ft_bc_weak_0_e100_ln1   # runs `test` first if needed

Each episode of `test --episodes N` (held-out tracks 1,000,000...) falls in one class:
  finished          the lap was completed within the 1,000 frames
  left the road     at least OFF_ROAD frames off the track (whether or not it came back)
  skipped tiles     on the road, but it left road tiles behind unvisited (cutting a corner): a lap needs every
                    tile, so it drove on over visited ones until the time ran out
  too slow          on the road, out of time with at least NEARLY_DONE raw return (about 90 % of the tiles)
  stuck             on the road, out of time with less: the car stopped, spun or drove back over visited tiles
The last three are what an off-track penalty cannot teach: they cost no penalty, only the tiles not reached.
Tests run before `test` recorded the tiles skipped (2026-12-05, eighth session) cannot tell a skipped tile from
slow driving: there both count as "too slow" (two of them replayed were corner cuts; the rest are not
retested).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli_runner import episodes_of, run_dirs  # noqa: E402

OFF_ROAD = 20  # frames: the training episodes' off-track limit (0.4 s)
NEARLY_DONE = 800.0  # raw return at 1,000 frames: 1000 * tiles share - 100, so about 90 % of the tiles
CLASSES = ("finished", "left the road", "skipped tiles", "too slow", "stuck")


def failure_class(episode: dict) -> str:
    if episode["lap_complete"]:
        return "finished"
    if episode["offtrack_frames"] >= OFF_ROAD:
        return "left the road"
    if episode.get("tiles_skipped", 0):
        return "skipped tiles"
    return "too slow" if episode["raw_return"] >= NEARLY_DONE else "stuck"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_ids", nargs="+", help="runs to classify (tested on --episodes tracks if not yet)")
    parser.add_argument("--episodes", type=int, default=50, help="held-out tracks")
    parser.add_argument("--checkpoint", default=None, help="checkpoint to test (default: the run's policy)")
    args = parser.parse_args()
    run_dirs(args.run_ids)  # every run found before the table starts
    print("| run | " + " | ".join(CLASSES) + " | stuck tracks |")
    print("|---|" + "---|" * (len(CLASSES) + 1))
    for run_id in args.run_ids:
        episodes = episodes_of(run_id, args.episodes, checkpoint=args.checkpoint)
        classes = [failure_class(e) for e in episodes]
        stuck = [str(e["seed"]) for e, c in zip(episodes, classes) if c == "stuck"]
        print(f"| {run_id} | " + " | ".join(str(classes.count(c)) for c in CLASSES)
              + f" | {', '.join(stuck) or '—'} |")


if __name__ == "__main__":
    main()
