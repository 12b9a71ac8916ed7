"""Why a fine-tuned policy stops on the road: the critic's values where the car stands still.

    python bench/standstill.py ft_critic_ln_meanq_driveexp_weak_1_e100 --track 1000008

Drives the run's policy on one held-out track until the car has stood still (speed < 3) for `--frames`
frames, then prints the policy's and the frozen BC policy's actions there and the critic's value (raw
return units, min over the ensemble) of straight-ahead actions over a grid of gas and brake.
bench/failures.py counts such episodes as "stuck" or "too slow".
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

STILL_SPEED = 3.0  # box2d speed units; cruising is 40 to 80
GAS, BRAKE = (0.0, 0.1, 0.3, 0.6, 1.0), (0.0, 0.1, 0.2, 0.5)


def drive_until_still(agent: Agent, track: int, frames: int) -> tuple[np.ndarray, int] | None:
    """The stacked observation once the car has stood still `frames` frames in a row, and the frame index."""
    env = gym.make("CarRacing-v3")
    try:
        frame, _ = env.reset(seed=track)
        agent.reset()
        still = 0
        for t in range(1000):
            frame, _, terminated, truncated, _ = env.step(agent.act(frame))
            still = still + 1 if np.hypot(*env.unwrapped.car.hull.linearVelocity) < STILL_SPEED else 0
            if still == frames:
                return agent.stacker.observation(), t
            if terminated or truncated:
                return None
        return None
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id", help="a fine-tuning run (its critic and frozen BC policy are read)")
    parser.add_argument("--track", type=int, default=1_000_008, help="held-out track seed")
    parser.add_argument("--frames", type=int, default=30, help="frames standing still before the probe")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the run's policy)")
    args = parser.parse_args()
    try:
        agent = Agent.load(args.run_id, checkpoint=args.checkpoint)
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    found = drive_until_still(agent, args.track, args.frames)
    if found is None:
        print(f"{args.run_id} never stood still {args.frames} frames on track {args.track}")
        return
    obs, t = found
    model = agent.model
    with torch.no_grad():
        features = model.encoder(torch.as_tensor(obs[None]))
        print(f"{args.run_id}, track {args.track}: standing still at frame {t}")
        print(f"policy action (steer, gas, brake): {model.policy(features)[0].numpy().round(2)}")
        if model.bc_actor is not None:
            print(f"frozen BC policy's action: {model.bc_actor.deterministic(features)[0].numpy().round(2)}")
        print("\ncritic, steering straight: rows gas, columns brake\n")
        print("| gas \\ brake | " + " | ".join(f"{b:.1f}" for b in BRAKE) + " |")
        print("|---|" + "---|" * len(BRAKE))
        for gas in GAS:
            actions = torch.tensor([[0.0, gas, brake] for brake in BRAKE])
            q = model.critic(features.expand(len(BRAKE), -1), actions).min(0).values / model.reward_scale
            print(f"| {gas:.1f} | " + " | ".join(f"{v:.1f}" for v in q.tolist()) + " |")


if __name__ == "__main__":
    main()
