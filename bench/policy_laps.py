"""A run's own laps with the robustness test's shoves, recorded in the demo format: the ways back the policy finds by
itself, as `train_rl --critic_dataset` laps for a user without an autopilot.

   python bench/policy_laps.py RUN --dataset NAME --seed S [--episodes 20] [--shove 0.01]

The run's policy (Agent.load, its own driving settings) drives tracks S .. S+N-1 while `test --shove`'s shoves
override it (the same steps on the same track); each episode keeps the policy's actions as `actions` and what the
car executed as `executed_actions`, like `expert --shove`'s recovery laps, but without a `source` (the GUIDE's
sources are a person and the autopilot). Excursions it came back from and excursions it did not are both kept: the
critic learns what each was worth from its return.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import demos  # noqa: E402
from agent import Agent  # noqa: E402
from env import EnvConfig, make_env  # noqa: E402
from errors import UserError  # noqa: E402
from evaluate import check_shove  # noqa: E402
from expert import Driver, check_training_tracks, existing_seeds, record_episode  # noqa: E402


def policy_driver(agent: Agent) -> Driver:
    """The agent as a driver for `record_episode`: it sees the frame CarRacing rendered last."""

    def drive(car_racing, frame: int):
        if frame == 0:
            agent.reset()
        return agent.act(car_racing.state)

    return drive


def record_policy_laps(run: str, dataset: str, first_seed: int, episodes: int, shove: float) -> list[demos.Episode]:
    """Record the run's policy on tracks `first_seed` .. `first_seed` + `episodes` - 1 (those the dataset already
    holds are skipped) into data/`dataset`."""
    check_shove(shove)
    check_training_tracks(first_seed, episodes)
    driver = policy_driver(Agent.load(run))
    out_dir = demos.recording_dir(dataset)
    done = existing_seeds(out_dir)
    env = make_env(EnvConfig(action_repeat=1, offtrack_limit=0), pixels=False)  # as the demos: every frame kept
    recorded = []
    try:
        for seed in tqdm([s for s in range(first_seed, first_seed + episodes) if s not in done], desc="policy laps",
                         unit="episode"):
            episode = record_episode(env, driver, seed, shove=shove)
            episode.pop("source")
            recorded.append(demos.Episode(**episode, path=demos.write_episode(out_dir, **episode)))
    finally:
        env.close()
    return recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run id under logs/ (or a run directory) whose policy drives")
    parser.add_argument("--dataset", required=True, help="dataset name: episodes go to data/<dataset>/")
    parser.add_argument("--seed", type=int, required=True, help="first track seed (training range)")
    parser.add_argument("--episodes", type=int, default=20, help="number of tracks")
    parser.add_argument("--shove", type=float, default=0.01, help="test --shove's probability per agent step")
    args = parser.parse_args()
    if args.episodes < 1:
        raise SystemExit(f"--episodes must be >= 1, got {args.episodes}")
    try:
        recorded = record_policy_laps(args.run, args.dataset, args.seed, args.episodes, args.shove)
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    if recorded:
        print(f"recorded {len(recorded)} episodes: " + demos.format_summary(demos.summarize(recorded)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
