"""The README's animated GIF: a trained run's policy driving one held-out track, in the full 600x400 view.

    python bench/readme_media.py RUN_ID                  # -> bench/results/policy_drive.gif
    python bench/readme_media.py RUN_ID --seed 1000003 --shrink 4 --out /tmp/small.gif

Drives track `--seed` (test tracks start at 1,000,000; nothing trains on them) once, with the run's
deterministic policy as `test` drives it, records the view a person watches shrunk by `--shrink` (2: 300x200,
2-3 MB for a lap at 25 frames/s) and prints the episode's scores and the file's size.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent import Agent  # noqa: E402
from env import TEST_SEED_START  # noqa: E402
from evaluate import evaluate  # noqa: E402
from runs import run_dir  # noqa: E402
from video import EpisodeRecorder, write_video  # noqa: E402

RESULTS = Path(__file__).parent / "results"
README_LIMIT_MB = 3.0  # what a README image should stay under to load quickly


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id", help="run to film: id under logs/ or a run directory")
    parser.add_argument("--seed", type=int, default=TEST_SEED_START, help="the held-out track")
    parser.add_argument("--shrink", type=int, choices=(1, 2, 4), default=2, help="divide 600x400 by this")
    parser.add_argument("--max_steps", type=int, default=None, help="keep only the first N agent steps (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS / "policy_drive.gif", help="the GIF to write")
    args = parser.parse_args(argv)
    agent = Agent.load(run_dir(args.run_id))
    frames = None if args.max_steps is None else args.max_steps + 1  # the start, then one frame per step
    recorder = EpisodeRecorder("full", max_frames=frames, shrink_by=args.shrink)
    episode = evaluate(agent, [args.seed], num_envs=1, recorder=recorder, progress=False)[0]
    write_video(args.out, recorder.frames, fps=50 // agent.env_config.action_repeat)
    size_mb = args.out.stat().st_size / 1e6
    lap = "lap completed" if episode["lap_complete"] else "lap not completed"
    print(f"track {args.seed}: raw return {episode['raw_return']:.1f}, {lap}, "
          f"{episode['offtrack_frames']} off-track frames")
    print(f"wrote {len(recorder.frames)} frames, {size_mb:.1f} MB: {args.out}")
    if size_mb > README_LIMIT_MB:
        print(f"warning: over {README_LIMIT_MB:g} MB; --shrink 4 or --max_steps make it lighter")
    return args.out


if __name__ == "__main__":
    main()
