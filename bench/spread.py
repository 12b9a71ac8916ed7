"""How a run's policy spreads its actions on the states it drives through, and what that does to its average action.

   python bench/spread.py ft_critic_ln_meanq_driveexp_dash_floor30_bcauto_kl_recovery_0_e100 --checkpoint latest_step.pt

Drives the run's policy (its own deterministic action) on one held-out track for `--frames` frames, then prints,
per action and averaged over the states it decided in: the Gaussian's pre-tanh mean and spread, tanh(mean) (what
BC drives) and the average action E[tanh(u)] (what fine-tuned runs drive, `--policy_action expected`), for the
policy and, in a fine-tuned run, for the frozen BC policy on the same states. A saturated mean with a wide spread
is an average action that brakes although tanh(mean) does not (README: Design notes, the spread limit).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from agent import Agent  # noqa: E402
from errors import UserError  # noqa: E402
from networks import ACTION_NAMES, ActorCritic  # noqa: E402


def drive(agent: Agent, track: int, frames: int) -> tuple[np.ndarray, dict]:
    """The stacked observations the agent decided on, and the drive's raw return, tiles and mean speed."""
    env = gym.make("CarRacing-v3")
    try:
        frame, _ = env.reset(seed=track)
        agent.reset()
        observations, speeds, raw = [], [], 0.0
        for t in range(frames):
            action = agent.act(frame)
            if t % agent.env_config.action_repeat == 0:
                observations.append(agent.stacker.observation())
            frame, reward, terminated, truncated, _ = env.step(action)
            raw += reward
            speeds.append(np.hypot(*env.unwrapped.car.hull.linearVelocity))
            if terminated or truncated:
                break
        return np.stack(observations), {"raw": raw, "tiles": env.unwrapped.tile_visited_count,
                                        "speed": float(np.mean(speeds))}
    finally:
        env.close()


@torch.no_grad()
def spread_rows(model: ActorCritic, observations: np.ndarray) -> list[dict]:
    """Per actor (the policy, the frozen BC policy if any) and action, the averages over the observations."""
    features = model.encoder(torch.as_tensor(observations))
    actors = {"policy": model.actor, **({"frozen BC": model.bc_actor} if model.bc_actor is not None else {})}
    rows = []
    for name, actor in actors.items():
        mean, log_std = actor(features)
        squashed, average = model.actor.squash(mean), model.actor.expected_from(mean, log_std)
        for i, action in enumerate(ACTION_NAMES):
            rows.append({"actor": name, "action": action, "mean": mean[:, i].mean().item(),
                         "spread": log_std[:, i].exp().mean().item(), "tanh_mean": squashed[:, i].mean().item(),
                         "average": average[:, i].mean().item()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id", help="a BC or RL run")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the run's policy)")
    parser.add_argument("--track", type=int, default=1_000_000, help="held-out track seed")
    parser.add_argument("--frames", type=int, default=400, help="frames to drive")
    args = parser.parse_args()
    try:
        agent = Agent.load(args.run_id, checkpoint=args.checkpoint)
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    observations, summary = drive(agent, args.track, args.frames)
    print(f"{args.run_id} ({args.checkpoint or 'its policy'}), track {args.track}, {len(observations)} decisions: "
          f"raw return {summary['raw']:.1f}, {summary['tiles']} tiles, mean speed {summary['speed']:.1f}\n")
    print("| actor | action | pre-tanh mean | spread | tanh(mean) | average action |")
    print("|---|---|---|---|---|---|")
    for r in spread_rows(agent.model, observations):
        print(f"| {r['actor']} | {r['action']} | {r['mean']:.2f} | {r['spread']:.2f} | {r['tanh_mean']:.3f} | "
              f"{r['average']:.3f} |")


if __name__ == "__main__":
    main()
