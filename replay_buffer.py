"""Replay storage that keeps every frame once, as uint8.

Each stream (one vector-env slot, or one demo episode) is a ring of single preprocessed frames. A
transition "ending at" slot t has obs = the frame stack ending at t-1, action/reward stored at t, and
next obs = the stack ending at t (or at t+n-1 for n-step targets). Stacks are rebuilt by index; at an
episode start the first frame is repeated, exactly as `env.FrameStacker` does, so no stack ever mixes
two episodes. Memory per transition: one frame plus ~30 bytes.
"""
from __future__ import annotations

import os

import numpy as np

from env import EnvConfig, preprocess_frame
from errors import UserError

MAX_BATCH_SIZE = 65_536  # transitions per update: a batch of frame stacks this large already takes GBs
SLOT_BYTES = 3 * 4 + 4 + 1 + 1 + 1 + 4 + 4  # stored beside each frame: action, reward, flags, episode_pos, return


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def check_fits_in_memory(slots: int, frame_bytes: int) -> None:
    """A UserError, before anything is allocated, if `slots` frames and their transitions exceed the RAM.
    (Compared with all of it, not the free part: the kernel counts its file cache as used, though it gives it back.)"""
    needed, ram = slots * (frame_bytes + SLOT_BYTES), physical_memory()
    if ram is not None and needed > ram:
        raise UserError(f"a replay buffer of {slots:,} transitions needs {needed / 2**30:,.1f} GiB, more than this "
                        f"machine's {ram / 2**30:.1f} GiB of RAM; lower --buffer_size")


class FrameReplay:
    """`num_streams` rings of `capacity` frames each; transitions sampled uniformly over all streams."""

    def __init__(self, capacity: int, num_streams: int, frame_shape: tuple[int, ...], frame_stack: int,
                 dtype: type = np.uint8):
        if capacity <= frame_stack + 1:
            raise ValueError(f"capacity {capacity} must exceed frame_stack + 1 = {frame_stack + 1}")
        check_fits_in_memory(num_streams * capacity, int(np.prod(frame_shape)) * np.dtype(dtype).itemsize)
        self.capacity, self.num_streams, self.frame_stack = capacity, num_streams, frame_stack
        shape = (num_streams, capacity)
        self.frames = np.zeros(shape + tuple(frame_shape), dtype=dtype)  # or encoder features, see `encode_replay`
        self.actions = np.zeros(shape + (3,), dtype=np.float32)  # the action that led to this frame
        # What the BC term imitates there where it differs from `actions`: on demos stored with the executed actions
        # (recovery laps), the one the driver meant (see `demo_replay`). None: the action itself.
        self.bc_actions: np.ndarray | None = None
        self.rewards = np.zeros(shape, dtype=np.float32)  # the reward received on the way to this frame
        self.terminated = np.zeros(shape, dtype=bool)  # this frame ends the episode (no bootstrap)
        self.off_track = np.zeros(shape, dtype=bool)  # the car is off the road in this frame
        # The action that led here was forced (a training shove): n-step sums stop before it, so the values of
        # the policy's own actions never count the chance of being pushed (see RLConfig.cut_returns_at_shoves).
        self.forced = np.zeros(shape, dtype=bool)
        self.episode_pos = np.zeros(shape, dtype=np.int32)  # 0 = first frame of an episode
        self.returns = np.zeros(shape, dtype=np.float32)  # Monte-Carlo return from here (demos only)
        self.written = np.zeros(num_streams, dtype=np.int64)  # frames ever written per stream

    # ---------------------------------------------------------------- writing
    def start(self, stream: int, frame: np.ndarray) -> None:
        """First frame of a new episode on `stream`."""
        self._write(stream, frame, np.zeros(3, np.float32), 0.0, False, False, 0)

    def add(self, stream: int, action, reward: float, next_frame: np.ndarray, terminated: bool,
            off_track: bool = False, forced: bool = False) -> None:
        """One environment step on `stream`: the action taken, its reward and the frame it led to."""
        last = (self.written[stream] - 1) % self.capacity
        self._write(stream, next_frame, action, reward, terminated, off_track, self.episode_pos[stream, last] + 1,
                    forced)

    def _write(self, stream, frame, action, reward, terminated, off_track, pos, forced=False) -> None:
        slot = self.written[stream] % self.capacity
        self.frames[stream, slot] = frame
        self.actions[stream, slot] = action
        self.rewards[stream, slot] = reward
        self.terminated[stream, slot] = terminated
        self.off_track[stream, slot] = off_track
        self.forced[stream, slot] = forced
        self.episode_pos[stream, slot] = pos
        self.written[stream] += 1

    def __len__(self) -> int:
        """Number of stored transitions (frames that are not episode starts)."""
        return int(np.minimum(self.written, self.capacity).sum() - self._starts_stored())

    def _starts_stored(self) -> int:
        stored = np.arange(self.capacity)[None, :] < np.minimum(self.written, self.capacity)[:, None]
        return int(((self.episode_pos == 0) & stored).sum())

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.frames, self.actions, self.rewards, self.terminated, self.off_track,
                                      self.forced, self.episode_pos, self.returns))

    # ---------------------------------------------------------------- reading
    def stack(self, streams: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Frame stacks ending at absolute indices `t` (oldest frame first), repeating an episode's first frame."""
        pos = self.episode_pos[streams, t % self.capacity]
        parts = []
        for offset in range(self.frame_stack - 1, -1, -1):
            j = t - np.minimum(offset, pos)
            parts.append(self.frames[streams, j % self.capacity])
        return np.concatenate(parts, axis=1)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Random (stream, t) of transitions whose frames are all still in the ring."""
        # Until a ring wraps nothing is overwritten; after, a stack ending at t-1 reaches back to t - frame_stack.
        lowest = np.where(self.written > self.capacity, self.written - self.capacity + self.frame_stack, 1)
        counts = np.maximum(self.written - lowest, 0)
        if counts.sum() == 0:
            raise ValueError("replay buffer is empty")
        streams = np.empty(0, dtype=np.int64)
        t = np.empty(0, dtype=np.int64)
        while len(t) < batch_size:  # rejection: slot t must not be an episode start
            s = rng.choice(self.num_streams, size=batch_size, p=counts / counts.sum())
            cand = lowest[s] + (rng.random(batch_size) * counts[s]).astype(np.int64)
            ok = self.episode_pos[s, cand % self.capacity] > 0
            streams, t = np.concatenate([streams, s[ok]]), np.concatenate([t, cand[ok]])
        return streams[:batch_size], t[:batch_size]

    def sample(self, batch_size: int, rng: np.random.Generator, gamma: float = 0.99, n_step: int = 1) -> dict:
        """A batch of n-step transitions: obs, action, reward (discounted n-step sum), discount, next_obs,
        mc_return (demo streams only), off_track (the car off the road at obs).
        discount = gamma^n' * (1 - terminated), n' the steps actually taken. The first action may be a forced one
        (what it is worth is data too); later ones may not."""
        streams, t = self.sample_indices(batch_size, rng)
        reward = np.zeros(batch_size, np.float32)
        discount = np.ones(batch_size, np.float32)
        end = t.copy()
        alive = np.ones(batch_size, bool)
        start_pos = self.episode_pos[streams, t % self.capacity]
        for m in range(n_step):
            idx = t + m
            # Stop at the newest frame, at an episode change, after a terminal step, or before a forced action.
            valid = alive & (idx < self.written[streams])
            slot = idx % self.capacity
            valid &= self.episode_pos[streams, slot] == start_pos + m
            if m:
                valid &= ~self.forced[streams, slot]
            reward += np.where(valid, discount * self.rewards[streams, slot], 0.0)
            discount = np.where(valid, discount * gamma, discount)
            end = np.where(valid, idx, end)
            alive = valid & ~self.terminated[streams, slot]
        discount *= ~self.terminated[streams, end % self.capacity]
        return {
            "obs": self.stack(streams, t - 1),
            "action": self.actions[streams, t % self.capacity],
            "bc_action": (self.actions if self.bc_actions is None else self.bc_actions)[streams, t % self.capacity],
            "reward": reward,
            "discount": discount.astype(np.float32),
            "next_obs": self.stack(streams, end),
            "mc_return": self.returns[streams, t % self.capacity],
            "off_track": self.off_track[streams, (t - 1) % self.capacity],
        }


def demo_replay(episodes, env_config: EnvConfig, gamma: float, executed: bool = False) -> FrameReplay:
    """Demonstrations (recorded one action per frame) as agent-rate transitions.

    With action repeat k, each recorded episode gives k streams, one per phase (frames o, o+k, o+2k...):
    the action is the expert's action at the decision frame (with `executed`, the action the car executed
    there: what a critic must be taught, since a shove's override, not the driver's intent, made the next
    frame; the meant one is kept as `bc_actions`, for the BC term), the reward the penalized sum over the k frames.
    Monte-Carlo discounted returns are stored for critic pre-training.
    """
    k = env_config.action_repeat
    streams = []
    for ep in episodes:
        frames = [preprocess_frame(f, env_config) for f in ep.observations]
        penalized = ep.rewards - env_config.offtrack_penalty * (ep.off_track if ep.off_track is not None else 0)
        T = len(ep.actions)
        for phase in range(k):
            decisions = list(range(phase, T - k + 1, k))
            if len(decisions) < 2:
                continue
            rewards = np.array([penalized[j : j + k].sum() for j in decisions], np.float32)
            terminated = bool(ep.terminated) and decisions[-1] + k == T
            # Off the road at the frame each decision leads to (ep.off_track[j]: after the action of frame j).
            off = [bool(ep.off_track is not None and ep.off_track[j + k - 1]) for j in decisions]
            streams.append((frames, decisions, rewards, terminated, ep.driven_actions if executed else ep.actions,
                            ep.actions, off))
    if not streams:
        raise UserError(f"demonstrations are too short: every episode needs at least {2 * k} frames "
                        f"at action repeat {k}")
    capacity = max(len(s[1]) for s in streams) + 1
    buffer = FrameReplay(capacity, len(streams), frames[0].shape, env_config.frame_stack)
    if executed:  # the critic learns from what the car did, the BC term from what the driver meant
        buffer.bc_actions = np.zeros_like(buffer.actions)
    for i, (frames, decisions, rewards, terminated, actions, intended, off) in enumerate(streams):
        buffer.start(i, frames[decisions[0]])
        for n, j in enumerate(decisions):
            buffer.add(i, actions[j], rewards[n], frames[j + k], terminated and n == len(decisions) - 1, off[n])
            if executed:
                buffer.bc_actions[i, n + 1] = intended[j]  # slot n + 1 holds decision n's transition
        returns, running = np.zeros(len(rewards), np.float32), 0.0
        for n in range(len(rewards) - 1, -1, -1):
            running = rewards[n] + gamma * running
            returns[n] = running
        buffer.returns[i, 1 : len(rewards) + 1] = returns  # slot n+1 holds the transition of decision n
    return buffer


def encode_replay(buffer: FrameReplay, encode, batch_size: int = 1024) -> FrameReplay:
    """The same transitions with each frame stack replaced by its features under a fixed encoder
    (`encode`: uint8 stacks (N, C, S, S) -> float32 (N, D) numpy). An update then never touches pixels."""
    if (buffer.written > buffer.capacity).any():
        raise ValueError("encode_replay needs a buffer that has not wrapped (a demo buffer)")
    streams = np.repeat(np.arange(buffer.num_streams), buffer.written)
    t = np.concatenate([np.arange(n) for n in buffer.written])
    features = np.concatenate([encode(buffer.stack(streams[i:i + batch_size], t[i:i + batch_size]))
                               for i in range(0, len(t), batch_size)])
    encoded = FrameReplay(buffer.capacity, buffer.num_streams, features.shape[1:], 1, dtype=np.float32)
    for name in ("actions", "rewards", "terminated", "off_track", "forced", "episode_pos", "returns", "written"):
        setattr(encoded, name, getattr(buffer, name).copy())
    encoded.bc_actions = None if buffer.bc_actions is None else buffer.bc_actions.copy()
    encoded.frames[streams, t] = features
    return encoded


def sample_mixed(demos: FrameReplay | None, online: FrameReplay | None, batch_size: int, demo_ratio: float,
                 rng: np.random.Generator, gamma: float, n_step: int, critic_demos: FrameReplay | None = None,
                 critic_demo_ratio: float = 0.0) -> dict:
    """A batch with round(demo_ratio * batch_size) demo transitions, round(critic_demo_ratio * batch_size) from
    `critic_demos` and the rest online; keys 'is_demo' and 'critic_only' mark the first two kinds."""
    online_empty = online is None or len(online) == 0
    n_critic = 0 if critic_demos is None else int(round(critic_demo_ratio * batch_size))
    n_demo = batch_size - n_critic if online_empty else int(round(demo_ratio * batch_size))
    n_demo = 0 if demos is None else n_demo
    n_critic = batch_size - n_demo if online_empty and critic_demos is not None else n_critic
    parts = []  # (transitions, is_demo, critic_only)
    if n_demo:
        parts.append((demos.sample(n_demo, rng, gamma, n_step), True, False))
    if n_critic:
        parts.append((critic_demos.sample(n_critic, rng, gamma, n_step), False, True))
    if batch_size - n_demo - n_critic:
        parts.append((online.sample(batch_size - n_demo - n_critic, rng, gamma, n_step), False, False))
    batch = {k: np.concatenate([p[k] for p, _, _ in parts]) for k in parts[0][0]}
    batch["is_demo"] = np.concatenate([np.full(len(p["reward"]), d) for p, d, _ in parts])
    batch["critic_only"] = np.concatenate([np.full(len(p["reward"]), c) for p, _, c in parts])
    return batch
