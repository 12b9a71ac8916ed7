"""Environment speed, side by side in one process: stock CarRacing-v3 vs CarRacingFast-v0 (frames/s, same
seeds and actions, frames checked byte-identical), then agent steps/s of the learning env at action
repeat 1, 2 and 4 (only the returned frame is rendered).

    python bench/env_speed.py [--frames 1500] [--rounds 3]
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

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from env import EnvConfig, make_env  # noqa: E402


def random_actions(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    actions = rng.uniform([-1, 0, 0], [1, 1, 0.3], size=(n, 3)).astype(np.float32)
    return actions


def run_frames(env: gym.Env, actions: np.ndarray, seed: int) -> tuple[float, list[np.ndarray]]:
    """Seconds to step `actions` (resetting on episode end) and a sample of the observations."""
    env.reset(seed=seed)
    samples = []
    start = time.perf_counter()
    for i, a in enumerate(actions):
        obs, _, terminated, truncated, _ = env.step(a)
        if i % 100 == 0:
            samples.append(obs)
        if terminated or truncated:
            env.reset()
    return time.perf_counter() - start, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1500, help="frames per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported)")
    args = parser.parse_args()
    actions = random_actions(args.frames, 0)
    stock, fast = gym.make("CarRacing-v3"), gym.make("CarRacingFast-v0")
    stock_times, fast_times = [], []
    for r in range(args.rounds):  # alternate so machine noise hits both alike
        t_stock, s_stock = run_frames(stock, actions, seed=r)
        t_fast, s_fast = run_frames(fast, actions, seed=r)
        assert all(np.array_equal(a, b) for a, b in zip(s_stock, s_fast)), "frames differ"
        stock_times.append(t_stock)
        fast_times.append(t_fast)
    stock_fps = args.frames / float(np.median(stock_times))
    fast_fps = args.frames / float(np.median(fast_times))
    print(f"stock CarRacing-v3   {stock_fps:7.0f} frames/s")
    print(f"CarRacingFast-v0     {fast_fps:7.0f} frames/s   ratio {fast_fps / stock_fps:.2f}x (frames identical)")
    steps = {}
    for repeat in (1, 2, 4):
        env = make_env(EnvConfig(action_repeat=repeat, offtrack_limit=0))
        n = args.frames // repeat
        elapsed, _ = run_frames(env, actions[:n], seed=0)
        steps[repeat] = n / elapsed
        print(f"learning env, action repeat {repeat}: {steps[repeat]:6.0f} agent steps/s = "
              f"{steps[repeat] * repeat:6.0f} frames/s")
    out = Path(__file__).parent / "results" / "env_speed.json"
    out.write_text(json.dumps({"stock_fps": stock_fps, "fast_fps": fast_fps, "ratio": fast_fps / stock_fps,
                               "agent_steps_per_s": steps, "frames": args.frames, "rounds": args.rounds}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
