"""Record demonstrations with a scripted autopilot that reads the privileged track geometry.

The autopilot sees what the pixels hide: CarRacing's centre line (``car_racing.track``, one
(alpha, beta, x, y) point per tile), the car's pose and velocity, and the wheels' spin.
  steering  pure pursuit on a point ahead on the centre line, further ahead at speed (so it cuts corners)
  speed     a curvature speed profile: the highest speed from which the car can still brake down to
            sqrt(lateral grip / curvature) at every upcoming point
  oversteer no gas while the driven rear wheels spin clearly faster than the front ones
  recovery  off the road, steer at a point just ahead on the centre line at a walking pace
On the 100 held-out tracks the default "calm" style scores a raw return of 919.0 ± 5.7 (min 903.6) and
the "fast" style 925.8 ± 5.7 (min 910.7), every lap completed (``python bench/expert.py --style ...``).
Recording perturbs the executed steering by default (DART, --noise 0.05) and stores the autopilot's
intended action, so the laps show BC how to come back from small errors; --noise 0 records clean laps.

    python main.py expert --dataset expert --episodes 50 --seed 0
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

import demos
from env import TRAIN_SEED_LIMIT, EnvConfig, make_env
from errors import UserError
from evaluate import FrameShoves, check_shove

TRACK_STEP = 21 / 6  # CarRacing's TRACK_DETAIL_STEP: centre-line points are this far apart
WHEELBASE = 1.62 * 2  # front to rear axle in world units (car_dynamics WHEELPOS * SIZE)
LOST_DISTANCE = 15.0  # farther than this from the nearest nearby centre point: search the whole track
Driver = Callable[[Any, int], np.ndarray]  # (car_racing, frames driven in this episode) -> intended action


@dataclass
class AutopilotConfig:
    """Driving style; the defaults were tuned on training tracks (seeds < 1,000,000)."""

    lookahead: float = 9.0  # pure-pursuit look-ahead distance at standstill (world units)
    lookahead_time: float = 0.18  # extra look-ahead per unit of speed (seconds)
    steer_gain: float = 1.0  # multiplies the pure-pursuit wheel angle
    lateral_accel: float = 140.0  # grip assumed in curves: v_max = sqrt(a / curvature)
    brake_accel: float = 90.0  # deceleration assumed when planning to slow down before a curve
    max_speed: float = 100.0  # speed cap (world units per second)
    preview: float = 90.0  # how far ahead the speed profile looks (world units)
    speed_tolerance: float = 4.0  # brake only when this much faster than the target speed
    slip_ratio: float = 1.15  # rear/front wheel spin ratio treated as oversteer (cut the gas)
    curvature_window: int = 3  # tiles each side averaged when estimating curvature
    # Off the road (farther than this from the centre line; the road's half-width is 6.7) pure pursuit hardly
    # steers (its curvature falls with the squared distance): head for a point a few tiles ahead instead, slowly.
    recovery_distance: float = 8.0
    recovery_tiles: int = 4  # the point to head for, in centre-line points ahead of the nearest one
    recovery_speed: float = 30.0  # gas only below this speed, brake above it + 10
    recovery_gain: float = 2.0  # steering per radian of bearing to that point


# Named driving styles. "calm" gives up ~10 points of score for margin: a student that imitates it
# slightly imperfectly still stays on the road (BC on 20 calm laps scored far above BC on 20 fast ones).
STYLES = {
    "fast": AutopilotConfig(),
    "calm": AutopilotConfig(max_speed=80.0, lateral_accel=110.0),
}


def _wrap(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle difference folded into [-pi, pi)."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


class Autopilot:
    """Drives a CarRacing car from privileged state. ``reset`` once per track, then ``act`` every frame."""

    def __init__(self, config: AutopilotConfig | None = None):
        self.config = config or AutopilotConfig()
        self.points = np.zeros((0, 2))
        self.curvature = np.zeros(0)
        self.index = 0

    def reset(self, car_racing) -> None:
        """Read the new track's centre line and precompute its curvature (1 / radius, per point)."""
        track = np.asarray(car_racing.track, dtype=np.float64)
        self.points = track[:, 2:4]
        heading_change = _wrap(np.diff(track[:, 1], append=track[0, 1]))
        # Smooth over a few tiles: the generator turns in steps, the car feels the average.
        w = self.config.curvature_window
        kernel = np.ones(2 * w + 1) / (2 * w + 1)
        padded = np.concatenate([heading_change[-w:], heading_change, heading_change[:w]])
        self.curvature = np.abs(np.convolve(padded, kernel, mode="valid")) / TRACK_STEP
        self.index = 0

    def _nearest_index(self, position: np.ndarray) -> int:
        """Nearest centre-line point, searched just around the last one so the lap never jumps ahead."""
        n = len(self.points)
        window = (self.index + np.arange(-5, 25)) % n
        dist = np.sum((self.points[window] - position) ** 2, axis=1)
        self.index = int(window[int(np.argmin(dist))])
        if dist.min() > LOST_DISTANCE**2:  # spun off far (e.g. under DART noise): find the road again
            self.index = int(np.argmin(np.sum((self.points - position) ** 2, axis=1)))
        return self.index

    def act(self, car_racing) -> np.ndarray:
        """Action (steer, gas, brake) for the car's current state."""
        cfg = self.config
        car = car_racing.car
        hull = car.hull
        position = np.array(hull.position)
        velocity = np.array(hull.linearVelocity)
        speed = float(np.hypot(*velocity))
        angle = hull.angle
        # The hull's local +y is forward and +x is to its right.
        right = np.array([math.cos(angle), math.sin(angle)])
        n = len(self.points)
        i = self._nearest_index(position)
        if np.hypot(*(self.points[i] - position)) > cfg.recovery_distance:
            return self._back_to_the_road(position, angle, speed, i)

        # Steering: pure pursuit towards the centre line `lookahead` ahead.
        lookahead = cfg.lookahead + cfg.lookahead_time * speed
        target = self.points[(i + int(round(lookahead / TRACK_STEP))) % n]
        offset = target - position
        distance = max(float(np.hypot(*offset)), 1e-6)
        lateral = float(offset @ right)  # > 0: target is to the right
        wheel_angle = math.atan(2 * WHEELBASE * lateral / distance**2) * cfg.steer_gain
        # CarRacing: action +1 steers right, and the steering joint's target angle is -action (radians).
        steer = float(np.clip(wheel_angle, -1.0, 1.0))

        # Speed: the fastest speed that can still brake down to each upcoming curve's limit.
        ahead = np.arange(int(cfg.preview / TRACK_STEP))
        curvature = self.curvature[(i + ahead) % n]
        curve_speed = np.sqrt(cfg.lateral_accel / np.maximum(curvature, 1e-6))
        reachable = np.sqrt(curve_speed**2 + 2 * cfg.brake_accel * ahead * TRACK_STEP)
        target_speed = min(cfg.max_speed, float(reachable.min()))

        gas = brake = 0.0
        if speed < target_speed:
            gas = float(np.clip((target_speed - speed) / 10.0, 0.1, 1.0))
        elif speed > target_speed + cfg.speed_tolerance:
            brake = float(np.clip((speed - target_speed) / 40.0, 0.1, 0.8))
        # Oversteer: the driven rear wheels spin much faster than the front ones -> no gas.
        front = abs(car.wheels[0].omega) + abs(car.wheels[1].omega)
        rear = abs(car.wheels[2].omega) + abs(car.wheels[3].omega)
        if rear > cfg.slip_ratio * front + 2.0:
            gas = 0.0
        return np.array([steer, gas, brake], dtype=np.float32)

    def _back_to_the_road(self, position: np.ndarray, angle: float, speed: float, i: int) -> np.ndarray:
        """Off the road (a shove, a spin): turn toward a centre-line point just ahead and crawl there."""
        cfg = self.config
        offset = self.points[(i + cfg.recovery_tiles) % len(self.points)] - position
        right, forward = np.array([math.cos(angle), math.sin(angle)]), np.array([-math.sin(angle), math.cos(angle)])
        bearing = math.atan2(float(offset @ right), float(offset @ forward))  # > 0: the point is to the right
        steer = float(np.clip(cfg.recovery_gain * bearing, -1.0, 1.0))
        gas = 0.3 if speed < cfg.recovery_speed else 0.0
        brake = 0.5 if speed > cfg.recovery_speed + 10.0 else 0.0
        return np.array([steer, gas, brake], dtype=np.float32)


class SteeringNoise:
    """DART: gaussian noise of std ``std`` on the steering the car executes; gas and brake stay as meant.

    Only steering is perturbed: gas and brake sit at their bound 0 much of the time, where clipped
    noise would become one-sided braking that stalls the car. The noise stream depends only on the
    track seed, so re-recording a track perturbs it the same way.
    """

    def __init__(self, std: float, track_seed: int, action_space):
        self.std = std
        self.rng = np.random.default_rng([track_seed, 0x5EED])
        self.low, self.high = action_space.low, action_space.high

    def __call__(self, action: np.ndarray) -> np.ndarray:
        """The action the car executes for the intended ``action`` (the same array without noise)."""
        if self.std <= 0:
            return action
        return np.clip(action + [self.rng.normal(0.0, self.std), 0.0, 0.0], self.low, self.high).astype(np.float32)


def check_noise(noise: float) -> None:
    if not 0 <= noise < math.inf:  # also refuses nan, which would pass a plain `< 0` test
        raise UserError(f"--noise must be a finite number >= 0, got {noise}")


def autopilot_driver(autopilot: Autopilot) -> Driver:
    """The autopilot as a driver for ``record_episode``: it reads each track's centre line on its first frame."""

    def drive(car_racing, frame: int) -> np.ndarray:
        if frame == 0:
            autopilot.reset(car_racing)
        return autopilot.act(car_racing)

    return drive


def record_episode(env, driver: Driver, seed: int, noise: float = 0.0, source: str = "expert",
                   interrupted: Callable[[], bool] = lambda: False, shove: float = 0.0) -> dict | None:
    """Drive track `seed` once; return the episode's arrays (raw frames, intended actions, raw rewards),
    or None when ``interrupted()`` (asked before every frame: a person quit or restarted) turns true.

    With ``noise`` > 0 (DART), the car executes the driver's steering plus gaussian noise, but the
    recorded action is what the driver meant, so the demos show how to recover from perturbations.
    With ``shove`` > 0 the car also meets `test --shove`'s shoves (the same steps on the same track), and the
    recorded action is still the driver's: the demos show the way back from far off the road.
    The executed actions are kept too (``executed_actions``) so the episode can still be re-simulated.
    """
    frame, _ = env.reset(seed=seed)
    car_racing = env.unwrapped.car_racing
    noisy = SteeringNoise(noise, seed, env.action_space)
    shoves = FrameShoves(seed, shove, EnvConfig().action_repeat) if shove else None
    perturb = noisy if shoves is None else lambda action: shoves(noisy(action))
    frames, actions, executed, rewards, off_track = [frame], [], [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        if interrupted():
            return None
        action = np.clip(driver(car_racing, len(actions)), env.action_space.low, env.action_space.high)
        perturbed = perturb(action)
        frame, _, terminated, truncated, info = env.step(perturbed)
        frames.append(frame)
        actions.append(action)
        executed.append(perturbed)
        rewards.append(info["raw_reward"])  # CarRacing's own reward, not the off-track-penalized one
        off_track.append(info["off_track"])
    episode = dict(
        observations=np.stack(frames),
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        terminated=terminated,
        truncated=truncated,
        seed=seed,
        source=source,
        off_track=np.asarray(off_track, dtype=bool),
    )
    if noise > 0 or shove > 0:
        episode["executed_actions"] = np.stack(executed).astype(np.float32)
    return episode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    demos.add_epilog(parser, __doc__)
    parser.add_argument("--dataset", required=True, help="dataset name: episodes go to data/<dataset>/")
    parser.add_argument("--episodes", type=int, default=20,
                        help="number of tracks to record (train_bc at its defaults on two sets of 20 DART laps: "
                             "924.2 and 924.8 on 50 held-out tracks, README)")
    parser.add_argument("--seed", type=int, default=0, help="first track seed; tracks seed .. seed+episodes-1")
    parser.add_argument(
        "--noise",
        type=float,
        default=demos.DART_NOISE,
        help="DART: std of gaussian noise added to the executed steering (the expert's own action is recorded), "
        "so the laps show how to come back from small errors; 0 records clean laps, whose clone drifts off at "
        "the first corner. The fast style drives at the grip limit: with 0.05 it still completed 50/50 laps, "
        "with 0.1 only 11/50",
    )
    parser.add_argument("--shove", type=float, default=0.0,
                        help="recovery demos: the car also meets test --shove's shoves (probability per 2 frames of a "
                             "full random steer without gas for 16 frames) and the autopilot's own action is recorded, "
                             "so the laps show how to come back from far off the road (e.g. 0.01; default 0: none)")
    parser.add_argument(
        "--skip_existing",
        action="store_true",
        help="skip tracks whose seed the dataset already holds (resume an interrupted recording)",
    )
    parser.add_argument("--max_frames", type=int, default=1000, help="frame limit per episode")
    parser.add_argument("--style", choices=sorted(STYLES), default="calm",
                        help="calm: slower corners, laps that are easier to imitate (the teacher for BC); "
                             "fast: at the grip limit, the highest score")


def existing_seeds(dataset_dir: Path) -> set[int]:
    """Track seeds of the episodes already in the dataset (unreadable files are ignored here)."""
    seeds = set()
    for path in demos.episode_paths(dataset_dir):
        try:
            with np.load(path, allow_pickle=False) as data:
                seeds.add(int(data["seed"]))
        except Exception:  # a bad file is reported by `replay`, not by recording
            continue
    return seeds


def check_training_tracks(seed: int, episodes: int) -> None:
    """Recorded laps lie on training tracks: `--seed` .. `--seed` + `--episodes` - 1 below TRAIN_SEED_LIMIT."""
    if seed < 0 or seed + episodes > TRAIN_SEED_LIMIT:
        raise UserError(
            f"--seed/--episodes: tracks {seed}..{seed + episodes - 1} must lie in the "
            f"training range 0..{TRAIN_SEED_LIMIT - 1} (higher seeds are held-out test tracks)"
        )


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    check_noise(args.noise)
    check_shove(args.shove)
    if args.max_frames < 1:
        raise UserError(f"--max_frames must be >= 1, got {args.max_frames}")
    check_training_tracks(args.seed, args.episodes)
    out_dir = demos.recording_dir(args.dataset)
    seeds = list(range(args.seed, args.seed + args.episodes))
    if args.skip_existing:
        done = existing_seeds(out_dir)
        seeds = [s for s in seeds if s not in done]
        if len(seeds) < args.episodes:
            print(f"skipping {args.episodes - len(seeds)} tracks already in {out_dir}")
    # Demos: one frame per action and no early stop, so every episode can be re-simulated exactly.
    env = make_env(EnvConfig(action_repeat=1, offtrack_limit=0, max_frames=args.max_frames), pixels=False)
    driver = autopilot_driver(Autopilot(STYLES[args.style]))
    recorded: list[demos.Episode] = []
    try:
        for seed in (bar := tqdm(seeds, desc="expert", unit="episode")):
            episode = record_episode(env, driver, seed, args.noise, shove=args.shove)
            # Written as soon as it finishes: Ctrl-C later never loses it.
            path = demos.write_episode(out_dir, **episode)
            recorded.append(demos.Episode(**episode, path=path))
            bar.set_postfix(ret=f"{recorded[-1].raw_return:.0f}")
    except KeyboardInterrupt:
        print(f"interrupted: kept {len(recorded)} finished episodes in {out_dir}")
        raise
    finally:
        env.close()
    if recorded:
        print(f"recorded {len(recorded)} episodes in {out_dir}: " + demos.format_summary(demos.summarize(recorded)))
    return 0
