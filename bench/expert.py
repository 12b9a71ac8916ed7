"""Benchmark the scripted autopilot on held-out tracks: raw return and completed laps.

Physics only (``step_physics``): the autopilot reads privileged state, not pixels, and the raw
reward does not depend on rendering, so this is exact and ~10x faster than recording demos.

    python bench/expert.py                      # 100 tracks from seed 1,000,000
    python bench/expert.py --episodes 20 --seed 0 --noise 0.1
    python bench/expert.py --episodes 50 --shove 0.01  # the teacher under `test --shove`'s shoves
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from env import TEST_SEED_START, EnvConfig, is_off_track  # noqa: E402
from evaluate import FrameShoves  # noqa: E402
from expert import STYLES, Autopilot, SteeringNoise  # noqa: E402
from fast_car_racing import CarRacingFast  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "expert.json"


def drive(car_racing: CarRacingFast, autopilot: Autopilot, seed: int, max_frames: int, noise: float,
          shove: float = 0.0) -> dict:
    """One episode on track `seed`; the same rules as CarRacing-v3 (1000-frame limit). With `shove` > 0 the
    shoves of `test --shove` (same tracks, same agent steps: a policy acts every `action_repeat` frames, the
    autopilot every frame between shoves) and the excursions they cause, recovered or not."""
    car_racing.reset(seed=seed)
    autopilot.reset(car_racing)
    perturb = SteeringNoise(noise, seed, car_racing.action_space)  # the noise stream `expert --noise` uses
    shoves = FrameShoves(seed, shove, EnvConfig().action_repeat) if shove else None
    low, high = car_racing.action_space.low, car_racing.action_space.high
    total, offtrack, lap, frames = 0.0, 0, False, 0
    for frames in range(1, max_frames + 1):
        action = perturb(np.clip(autopilot.act(car_racing), low, high))
        if shoves is not None:
            action = shoves(action)
        _, reward, terminated, _, _ = car_racing.step_physics(action)
        total += reward
        off = is_off_track(car_racing.car)
        offtrack += off
        if shoves is not None:
            shoves.observe([off])
        if terminated:
            lap = car_racing.tile_visited_count == len(car_racing.track) or car_racing.new_lap
            break
    return {"seed": seed, "raw_return": total, "lap": bool(lap), "frames": frames, "offtrack_frames": offtrack,
            **(shoves.result() if shoves else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="number of tracks")
    parser.add_argument("--seed", type=int, default=TEST_SEED_START, help="first track seed (held-out by default)")
    parser.add_argument("--noise", type=float, default=0.0, help="gaussian noise on executed actions (DART)")
    parser.add_argument("--shove", type=float, default=0.0,
                        help="shoves per agent step, as `test --shove` (the same shoves on the same tracks)")
    parser.add_argument("--max_frames", type=int, default=1000)
    parser.add_argument("--style", choices=sorted(STYLES), default="calm", help="driving style (see expert --help)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results file (default: bench/results/expert_<style>.json)")
    args = parser.parse_args()

    car_racing = CarRacingFast()
    autopilot = Autopilot(STYLES[args.style])
    if not 0 <= args.shove <= 1:
        parser.error(f"--shove must be a probability in [0, 1], got {args.shove}")
    shoved = f"_shove{args.shove:g}" if args.shove else ""
    args.out = args.out or RESULTS.with_name(f"expert_{args.style}{shoved}.json")
    start = time.perf_counter()
    episodes = [
        drive(car_racing, autopilot, seed, args.max_frames, args.noise, args.shove)
        for seed in tqdm(range(args.seed, args.seed + args.episodes), desc="expert", unit="track")
    ]
    seconds = time.perf_counter() - start
    returns = np.array([e["raw_return"] for e in episodes])
    laps = sum(e["lap"] for e in episodes)
    summary = {
        "tracks": f"{args.seed}..{args.seed + args.episodes - 1}",
        "episodes": args.episodes,
        "noise": args.noise,
        "style": args.style,
        "mean": float(returns.mean()),
        "std": float(returns.std()),
        "median": float(np.median(returns)),
        "min": float(returns.min()),
        "max": float(returns.max()),
        "laps_completed": laps,
        "mean_frames": float(np.mean([e["frames"] for e in episodes])),
        "mean_offtrack_frames": float(np.mean([e["offtrack_frames"] for e in episodes])),
        "seconds": seconds,
        **({"shove": args.shove,
            **{key: sum(e[key] for e in episodes) for key in ("shoves", "excursions", "recoveries")}}
           if args.shove else {}),
        "autopilot": asdict(autopilot.config),
    }
    print(
        f"expert ({args.style}) on tracks {summary['tracks']} (noise {args.noise}): "
        f"raw return {summary['mean']:.1f} ± "
        f"{summary['std']:.1f}, median {summary['median']:.1f}, min {summary['min']:.1f}; laps completed "
        f"{laps}/{args.episodes}; {summary['mean_frames']:.0f} frames and "
        f"{summary['mean_offtrack_frames']:.1f} off-track frames per episode ({seconds:.0f} s)"
    )
    if args.shove:
        print(f"shoves {summary['shoves']}: {summary['excursions']} took the car off the road, "
              f"{summary['recoveries']} recovered within 2 s")
    worst = sorted(episodes, key=lambda e: e["raw_return"])[:3]
    print("worst tracks: " + ", ".join(f"{e['seed']} ({e['raw_return']:.1f})" for e in worst))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "episodes": episodes}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
