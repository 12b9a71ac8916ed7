"""Can a run's frozen encoder features tell how fast the car goes? A linear probe against the dashboard's pixels.

    python bench/speed_probe.py ft_bc_weak_1_e100_ln1

Drives the run's policy on `--tracks` training tracks, braking hard for 40 of every 150 frames so that slow and
stopped states occur, and records at every agent step the encoder's features, the dashboard strip (the bottom
12 of 96 rows of each stacked frame, as networks.ModelConfig.dashboard_inputs passes it) and the car's true
speed. Ridge regressions from each to the speed are fitted on the first tracks and scored (R^2, mean absolute
error) on the last quarter of them. A fine-tuning critic that reads the features alone cannot value gas
differently in a stopped car and a moving one where the features cannot tell them apart.
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
from tqdm import tqdm  # noqa: E402

from agent import Agent  # noqa: E402
from errors import UserError  # noqa: E402
from networks import dashboard_top  # noqa: E402

BRAKE_PERIOD, BRAKE_FRAMES = 150, 40  # frames; the last BRAKE_FRAMES of each period brake hard
FIRST_TRACK = 500  # training tracks (below 1,000,000), not the held-out ones


def record(agent: Agent, tracks: int, frames: int) -> dict[str, np.ndarray]:
    """Features, dashboard pixels, speed and track index at every agent step."""
    model, top = agent.model, dashboard_top(agent.env_config.obs_size)
    rows: dict[str, list] = {"features": [], "dashboard": [], "speed": [], "track": []}
    env = gym.make("CarRacing-v3")
    try:
        for track in tqdm(range(tracks), desc="tracks"):
            frame, _ = env.reset(seed=FIRST_TRACK + track)
            agent.reset()
            for t in range(frames):
                action = agent.act(frame)
                if t % BRAKE_PERIOD >= BRAKE_PERIOD - BRAKE_FRAMES:
                    action = np.array([0.0, 0.0, 0.8], np.float32)
                frame, _, terminated, truncated, _ = env.step(action)
                if t % agent.env_config.action_repeat == 0:
                    obs = agent.stacker.observation()
                    with torch.no_grad():
                        features = model.encoder(torch.as_tensor(obs[None]))[0, :model.encoder.feature_dim]
                    rows["features"].append(features.numpy())
                    rows["dashboard"].append(obs[:, top:].reshape(-1) / 255.0)
                    rows["speed"].append(np.hypot(*env.unwrapped.car.hull.linearVelocity))
                    rows["track"].append(track)
                if terminated or truncated:
                    break
    finally:
        env.close()
    return {k: np.asarray(v, np.float64) for k, v in rows.items()}


def ridge_score(x: np.ndarray, y: np.ndarray, train: np.ndarray, ridge: float) -> tuple[float, float]:
    """R^2 and mean absolute error on the rows not in `train` of a ridge regression fitted on `train`."""
    x = np.c_[x, np.ones(len(x))]
    w = np.linalg.solve(x[train].T @ x[train] + ridge * np.eye(x.shape[1]), x[train].T @ y[train])
    error = x[~train] @ w - y[~train]
    return 1 - (error ** 2).mean() / y[~train].var(), np.abs(error).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id", help="a BC or fine-tuning run (its encoder is probed)")
    parser.add_argument("--tracks", type=int, default=12, help="training tracks driven (the last quarter scores)")
    parser.add_argument("--frames", type=int, default=600, help="frames driven per track")
    parser.add_argument("--ridge", type=float, default=10.0, help="ridge penalty of the regressions")
    args = parser.parse_args()
    if args.tracks < 4 or args.frames < 1:
        raise SystemExit("error: --tracks must be >= 4 and --frames >= 1")
    try:
        agent = Agent.load(args.run_id)
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    torch.manual_seed(0)
    data = record(agent, args.tracks, args.frames)
    train = data["track"] < args.tracks - args.tracks // 4
    speed = data["speed"]
    print(f"{args.run_id}: {len(speed)} states on {args.tracks} training tracks, speed mean {speed.mean():.1f}, "
          f"{(speed < 3).mean():.0%} stopped (< 3); scored on the last {args.tracks // 4} tracks\n")
    print("| inputs | R^2 | mean abs. error |\n|---|---|---|")
    for name in ("features", "dashboard"):
        r2, mae = ridge_score(data[name], speed, train, args.ridge)
        print(f"| {name} ({data[name].shape[1]} values) | {r2:.2f} | {mae:.1f} |")


if __name__ == "__main__":
    main()
