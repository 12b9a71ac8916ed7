"""The one environment factory used by every subcommand.

Layers, inside out:
  CarRacingFast-v0   byte-identical to CarRacing-v3, faster renderer (fast_car_racing.py)
  DrivingEnv         action repeat, off-track detection, penalty and early termination, frame limit,
                     training track seeds; observations are raw 96x96x3 frames (for recording)
  PixelObservation   grayscale / downscale / channel-first / frame stack, for learning
Definitions (GUIDE.md): raw return = sum of CarRacing's own rewards; off-track = no wheel touches a
road tile; penalized reward = raw - penalty on every off-track frame, episode ends after `offtrack_limit`
consecutive off-track frames (and, if `stall_limit` is set, after that many frames without a new tile).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import fast_car_racing

ENV_ID = "CarRacingFast-v0"
if ENV_ID not in gym.registry:
    # As stock CarRacing-v3's spec, so `spec.to_json()` works (Minari datasets store it) and
    # `gym.make(spec)` builds it anywhere this repository is importable.
    gym.register(id=ENV_ID, entry_point="fast_car_racing:CarRacingFast", max_episode_steps=1000, reward_threshold=900)

TRAIN_SEED_LIMIT = 1_000_000  # training tracks and demos use seeds below this
TEST_SEED_START = 1_000_000  # `test` uses seeds from here up
VALIDATION_SEED_START = 1_500_000  # periodic evaluation during training: held out, apart from `test`'s defaults
FRAME_SHAPE = (96, 96, 3)
MAX_NUM_ENVS = 64  # environment processes per command: more only thrash the CPU (each is a whole Python process)


# train_rl's --stall_limit auto when fine-tuning: a clone of clean laps learns to brake where it would leave the
# road, and a car stopped facing the grass pays only -0.1 a frame (README: Stalls). From DART laps no training
# episode stalled, so the runs were the same with it or without (bench/finetune.py).
FINE_TUNING_STALL_LIMIT = 100  # frames: 2 s


@dataclass
class EnvConfig:
    """Everything that defines what the agent sees and is rewarded for; saved with each run."""

    action_repeat: int = 2  # physics frames per agent step; only the last one is rendered
    frame_stack: int = 3  # agent observation = the last `frame_stack` returned frames
    grayscale: bool = True
    obs_size: int = 48  # side of the learning observation; must divide 96 (area downscale)
    offtrack_penalty: float = 10.0  # subtracted from the reward on every off-track frame
    offtrack_limit: int = 20  # consecutive off-track frames that end an episode (0 = never)
    # Frames without a newly visited road tile that end an episode (0 = never), at the cost of leaving the
    # road (offtrack_penalty x offtrack_limit): else standing still is a safe harbour from that penalty.
    stall_limit: int = 0
    # What a stall costs (None: leaving the road's offtrack_penalty x offtrack_limit). A stall comes stall_limit
    # frames after the car stopped, so the critic discounts its charge (0.99 ** 50 = 0.6 at 100 frames), where
    # leaving the road is charged at once: at the same price stopping before a corner looks cheaper than trying it.
    stall_penalty: float | None = None
    # Subtracted from the reward each time the car leaves road tiles behind unvisited (cutting a corner, or a
    # shortcut off the road). A lap completes only once every tile is visited, so one skipped tile costs the lap,
    # and the rest of the 1000 frames at -0.1 each, but the env's reward charges only the tile's own 1000/N points,
    # and the critic cannot see from pixels that the lap is lost (README, Design notes).
    skipped_tile_penalty: float = 0.0
    max_frames: int = 1000  # physics frames per episode, as CarRacing-v3's time limit
    domain_randomize: bool = False
    lap_complete_percent: float = 0.95

    @property
    def stall_cost(self) -> float:
        return self.offtrack_penalty * self.offtrack_limit if self.stall_penalty is None else self.stall_penalty

    def validate(self) -> None:
        """Raise ValueError naming the bad field, so CLIs can report it in one line."""
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {self.action_repeat}")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")
        if self.obs_size < 1 or 96 % self.obs_size:
            raise ValueError(f"obs_size must divide 96 (96, 48, 32, 24, ...), got {self.obs_size}")
        if not 0 <= self.offtrack_penalty < np.inf:  # nan fails every comparison, so it is refused too
            raise ValueError(f"offtrack_penalty must be a finite number >= 0, got {self.offtrack_penalty}")
        if self.offtrack_limit < 0:
            raise ValueError(f"offtrack_limit must be >= 0, got {self.offtrack_limit}")
        if self.stall_limit < 0:
            raise ValueError(f"stall_limit must be >= 0, got {self.stall_limit}")
        if self.stall_penalty is not None and not 0 <= self.stall_penalty < np.inf:
            raise ValueError(f"stall_penalty must be a finite number >= 0, got {self.stall_penalty}")
        if not 0 <= self.skipped_tile_penalty < np.inf:
            raise ValueError(f"skipped_tile_penalty must be a finite number >= 0, got {self.skipped_tile_penalty}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if not 0 < self.lap_complete_percent <= 1:
            raise ValueError(f"lap_complete_percent must be in (0, 1], got {self.lap_complete_percent}")

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """One preprocessed frame (C, S, S), C = 1 gray or 3 RGB: what the replay buffer stores."""
        return (1 if self.grayscale else 3, self.obs_size, self.obs_size)

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        channels, size, _ = self.frame_shape
        return (channels * self.frame_stack, size, size)


def is_off_track(car) -> bool:
    """True when no wheel touches a road tile (from Box2D contacts, not pixels)."""
    return all(len(wheel.tiles) == 0 for wheel in car.wheels)


# A tile this many tiles behind the furthest one a wheel touches is behind the car: unvisited, it was skipped. The
# axles are about one tile apart, so the tile under the rear wheels is never counted.
SKIP_MARGIN = 2


class SkippedTiles:
    """Counts the road tiles the car leaves behind unvisited, following the wheels' tile contacts along the lap."""

    def __init__(self, num_tiles: int):
        self.num_tiles = num_tiles
        self.checked = 0  # tiles before this index (along the lap from the start tile) are behind the car
        self.count = 0

    def update(self, car, road) -> int:
        """Tiles newly left behind unvisited since the last call."""
        # Along the lap from `checked`; a touched tile more than half a lap ahead is one behind the car.
        ahead = [(tile.idx - self.checked) % self.num_tiles for wheel in car.wheels for tile in wheel.tiles]
        ahead = [a for a in ahead if a < self.num_tiles // 2]
        if not ahead or max(ahead) <= SKIP_MARGIN:
            return 0
        passed = [(self.checked + a) % self.num_tiles for a in range(max(ahead) - SKIP_MARGIN)]
        self.checked = (self.checked + max(ahead) - SKIP_MARGIN) % self.num_tiles
        skipped = sum(not road[i].road_visited for i in passed)
        self.count += skipped
        return skipped


class DrivingEnv(gym.Env):
    """CarRacingFast with action repeat, off-track penalty/termination and a frame limit.

    Returns raw 96x96x3 frames and the *penalized* reward; ``info`` carries ``raw_reward`` (sum of the
    env's own rewards over the repeated frames), ``off_track`` (at the returned frame),
    ``offtrack_frames`` (within this step), ``stalled`` (ended by `stall_limit`), ``frame_rewards`` /
    ``frame_off_track`` (per physics frame of this step), ``tiles_visited``, ``tiles_skipped`` (left behind
    unvisited), ``lap_complete``, ``frames`` (episode total) and ``track_seed``. Once the episode is over,
    `step` repeats its last observation with zero reward and no frames, without simulating, until `reset`.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(self, config: EnvConfig | None = None, render_mode: str | None = None):
        self.config = config or EnvConfig()
        self.config.validate()
        self.render_mode = render_mode
        self.car_racing: fast_car_racing.CarRacingFast = fast_car_racing.CarRacingFast(
            render_mode=render_mode,
            domain_randomize=self.config.domain_randomize,
            lap_complete_percent=self.config.lap_complete_percent,
        )
        self.observation_space = self.car_racing.observation_space
        self.action_space = self.car_racing.action_space
        self._frames = 0
        self._offtrack_run = 0
        self.track_seed: int | None = None
        self._ended: tuple | None = None  # the last step's result once the episode is over

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        # Every episode gets an explicit track seed, so demos and evaluations name their tracks
        # and unseeded (training) resets never land on a test track.
        if seed is None:
            seed = int(self.np_random.integers(TRAIN_SEED_LIMIT))
        self.track_seed = seed
        frame, info = self.car_racing.reset(seed=seed, options=options)
        self._frames = 0
        self._offtrack_run = 0
        self._progress = (0, 0)  # (tiles visited, frame of the last new one)
        self._skipped = SkippedTiles(len(self.car_racing.track))
        self._ended = None
        return frame, {**info, "track_seed": seed}

    def step(self, action):
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (3,) or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be 3 finite numbers (steer, gas, brake), got {action!r}")
        action = np.clip(action, self.action_space.low, self.action_space.high)
        if self._ended is not None:
            # A vector env steps every slot; a finished episode (e.g. `test`'s idle slots) costs nothing.
            return self._ended
        cfg = self.config
        raw_total = penalized_total = 0.0
        offtrack_frames = 0
        frame_rewards, frame_off_track = [], []
        terminated = truncated = stalled = False
        info: dict[str, Any] = {}
        frame = None
        for i in range(cfg.action_repeat):
            last = i == cfg.action_repeat - 1
            # Intermediate frames only step the physics; rendering is ~all of the cost.
            if last:
                frame, reward, terminated, _, info = self.car_racing.step(action)
            else:
                _, reward, terminated, _, info = self.car_racing.step_physics(action)
            self._frames += 1
            off = is_off_track(self.car_racing.car)
            offtrack_frames += off
            frame_rewards.append(float(reward))
            frame_off_track.append(off)
            self._offtrack_run = self._offtrack_run + 1 if off else 0
            raw_total += reward
            penalized_total += reward - cfg.offtrack_penalty * off
            if cfg.offtrack_limit and self._offtrack_run >= cfg.offtrack_limit:
                terminated = True
            if self._skipped.update(self.car_racing.car, self.car_racing.road):
                penalized_total -= cfg.skipped_tile_penalty
            if self.car_racing.tile_visited_count > self._progress[0]:
                self._progress = (self.car_racing.tile_visited_count, self._frames)
            elif cfg.stall_limit and self._frames - self._progress[1] >= cfg.stall_limit:
                terminated = stalled = True
                penalized_total -= cfg.stall_cost
            truncated = self._frames >= cfg.max_frames
            if terminated or truncated:
                break
        if frame is None:  # episode ended on an intermediate frame
            frame = self.car_racing.render_observation()
        car_racing = self.car_racing
        info = {
            **info,
            "raw_reward": raw_total,
            "off_track": bool(off),
            "stalled": stalled,
            "offtrack_frames": offtrack_frames,
            "frame_rewards": frame_rewards,  # per physics frame, for exact episode metrics
            "frame_off_track": frame_off_track,
            "tiles_visited": car_racing.tile_visited_count,
            "tiles_skipped": self._skipped.count,  # episode total
            "lap_complete": car_racing.tile_visited_count == len(car_racing.track) or car_racing.new_lap,
            "frames": self._frames,
            "track_seed": self.track_seed,
        }
        result = frame, penalized_total, terminated, truncated and not terminated, info
        if terminated or truncated:
            self._ended = (frame, 0.0, result[2], result[3], {**info, "raw_reward": 0.0, "offtrack_frames": 0,
                                                               "frame_rewards": [], "frame_off_track": []})
        return result

    def render(self):
        return self.car_racing.render()

    def render_full_view(self) -> np.ndarray:
        """The 600x400 picture a person watches (CarRacing's `rgb_array` view) at the last returned frame."""
        return self.car_racing.render_full_view()

    def close(self):
        self.car_racing.close()


class EpisodeMetrics:
    """Accumulates the GUIDE's test metrics from per-frame rewards and off-track flags.

    One full (<= 1000 frame) episode yields both returns: the raw return over all of it, and the
    penalized return over its prefix up to the `offtrack_limit`-th consecutive off-track frame.
    """

    def __init__(self, penalty: float = EnvConfig.offtrack_penalty, limit: int = EnvConfig.offtrack_limit):
        self.penalty, self.limit = penalty, limit
        self.raw_return = self.penalized_return = 0.0
        self.offtrack_frames = self.frames = self._run = 0
        self._penalized_over = False

    def add(self, frame_rewards: list[float], frame_off_track: list[bool]) -> None:
        for reward, off in zip(frame_rewards, frame_off_track):
            self.frames += 1
            self.raw_return += reward
            self.offtrack_frames += off
            if not self._penalized_over:
                self.penalized_return += reward - self.penalty * off
                self._run = self._run + 1 if off else 0
                self._penalized_over = bool(self.limit) and self._run >= self.limit


def preprocess_frame(frame: np.ndarray, config: EnvConfig) -> np.ndarray:
    """Raw (96, 96, 3) uint8 frame -> (C, S, S) uint8 learning frame (C = 1 gray or 3 RGB)."""
    if config.grayscale:
        # Integer luma (ITU-R 601 weights): exact, fast, and the same in every process.
        weights = np.array([299, 587, 114], dtype=np.uint32)
        image = ((frame.astype(np.uint32) @ weights + 500) // 1000).astype(np.uint8)[None]
    else:
        image = np.ascontiguousarray(frame.transpose(2, 0, 1))
    factor = 96 // config.obs_size
    if factor > 1:  # area average over factor x factor blocks
        c = image.shape[0]
        blocks = image.reshape(c, config.obs_size, factor, config.obs_size, factor)
        image = (blocks.mean(axis=(2, 4)) + 0.5).astype(np.uint8)
    return image


class FrameStacker:
    """Keeps the last `frame_stack` preprocessed frames; the first frame fills the stack at reset."""

    def __init__(self, config: EnvConfig):
        self.config = config
        self.frames: deque[np.ndarray] = deque(maxlen=config.frame_stack)

    def reset(self, raw_frame: np.ndarray) -> np.ndarray:
        first = preprocess_frame(raw_frame, self.config)
        for _ in range(self.config.frame_stack):
            self.frames.append(first)
        return self.observation()

    def push(self, raw_frame: np.ndarray) -> np.ndarray:
        self.frames.append(preprocess_frame(raw_frame, self.config))
        return self.observation()

    def observation(self) -> np.ndarray:
        return np.concatenate(self.frames, axis=0)


class PixelObservation(gym.Wrapper):
    """Learning observations: (C * stack, S, S) uint8, channel-first."""

    def __init__(self, env: DrivingEnv):
        super().__init__(env)
        self.stacker = FrameStacker(env.config)
        self.observation_space = gym.spaces.Box(0, 255, env.config.obs_shape, dtype=np.uint8)

    def reset(self, **kwargs):
        frame, info = self.env.reset(**kwargs)
        return self.stacker.reset(frame), info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        return self.stacker.push(frame), reward, terminated, truncated, info


def make_env(config: EnvConfig | None = None, render_mode: str | None = None, pixels: bool = True) -> gym.Env:
    """One environment: learning observations (`pixels=True`) or raw frames (`pixels=False`)."""
    env = DrivingEnv(config or EnvConfig(), render_mode=render_mode)
    return PixelObservation(env) if pixels else env


def make_vec_env(
    num_envs: int,
    config: EnvConfig | None = None,
    autoreset: bool = True,
    asynchronous: bool | None = None,
    pixels: bool = True,
    render_mode: str | None = None,
) -> gym.vector.VectorEnv:
    """`num_envs` learning environments: processes (AsyncVectorEnv), or in-process when num_envs == 1.

    Seed it once with ``vec.reset(seed=s)``: env i gets track seed s + i, and its later (auto)resets
    draw training track seeds from its own generator, so the whole run is deterministic.
    With ``autoreset`` a finished env restarts in the same step (final observation in
    ``info['final_obs']``); without, reset finished envs yourself with ``options={'reset_mask': ...}``.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    config = config or EnvConfig()
    config.validate()
    mode = gym.vector.AutoresetMode.SAME_STEP if autoreset else gym.vector.AutoresetMode.DISABLED
    fns = [lambda: make_env(config, render_mode=render_mode, pixels=pixels) for _ in range(num_envs)]
    if asynchronous is None:
        asynchronous = num_envs > 1
    if asynchronous:
        # "spawn" is slower to start but safe with torch threads in the parent process.
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
