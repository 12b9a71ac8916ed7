"""Learner speed at batch 256, side by side in one process on the same observations (the default: gray
48x48, 3 stacked; `--obs_size 96` for full resolution):

  ours    SACLearner.update on batches sampled from FrameReplay (sampling + augmentation + update), the
          encoder trained by the critic (SAC from scratch)
  bf16    the same under bfloat16 autocast (`train_rl --bf16`): on CPUs with AMX (Intel Sapphire Rapids and
          later) oneDNN runs the convolutions on the matrix units; measured only where oneDNN has bfloat16
  frozen  the same with the encoder fixed, on cached features (the default when fine-tuning a BC run)
  bare    the same networks' critic + actor + temperature steps on one pre-made tensor batch
          (no sampling, no augmentation): overhead = ours / bare - 1
  sb3     Stable-Baselines3 SAC with CnnPolicy, `model.train(gradient_steps, 256)` on a filled buffer

    pip install -r requirements-bench.txt && python bench/learner_speed.py [--updates 20] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from env import EnvConfig  # noqa: E402
from networks import ActorCritic, ModelConfig  # noqa: E402
from replay_buffer import FrameReplay, encode_replay, sample_mixed  # noqa: E402
from rl import RLConfig, SACLearner, to_batch  # noqa: E402

BATCH = 256


def filled_replay(env_config: EnvConfig, n: int, rng: np.random.Generator) -> FrameReplay:
    frame = env_config.frame_shape
    buffer = FrameReplay(2 * n, 1, frame, env_config.frame_stack)  # room for the episode starts: never wraps
    buffer.start(0, rng.integers(0, 256, frame, dtype=np.uint8))
    for i in range(n - 1):
        done = i % 400 == 399
        buffer.add(0, rng.uniform(-1, 1, 3), rng.normal(), rng.integers(0, 256, frame, dtype=np.uint8), done)
        if done:
            buffer.start(0, rng.integers(0, 256, frame, dtype=np.uint8))
    return buffer


def time_ours(learner: SACLearner, buffer: FrameReplay, updates: int, rng) -> float:
    start = time.perf_counter()
    for _ in range(updates):
        batch = sample_mixed(None, buffer, BATCH, 0.0, rng, 0.99, 3)
        learner.update(batch, bc_weight=0.0)
    return updates / (time.perf_counter() - start)


def time_bare(learner: SACLearner, buffer: FrameReplay, updates: int, rng) -> float:
    batch = sample_mixed(None, buffer, BATCH, 0.0, rng, 0.99, 3)
    t = to_batch(batch, torch.device("cpu"), learner.model.reward_scale)
    start = time.perf_counter()
    for _ in range(updates):
        _, features = learner.update_critic(t)
        learner.update_actor(features, t, 0.0)
        learner.model.sync_targets(0.01)
    return updates / (time.perf_counter() - start)


def profile(learner: SACLearner, buffer: FrameReplay, updates: int, rng) -> None:
    """Where our update's time goes, by operator (self time, so nested calls are not counted twice)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    time_ours(learner, buffer, 3, rng)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        time_ours(learner, buffer, updates, rng)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def make_sb3(obs_shape: tuple[int, int, int], rng: np.random.Generator):
    import gymnasium as gym
    from stable_baselines3 import SAC

    class StackedPixels(gym.Env):  # only spaces matter: SB3 trains from its own filled buffer
        observation_space = gym.spaces.Box(0, 255, obs_shape, np.uint8)
        action_space = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))

        def reset(self, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    model = SAC("CnnPolicy", StackedPixels(), buffer_size=5000, batch_size=BATCH, learning_starts=0, verbose=0,
                optimize_memory_usage=False, device="cpu")
    buffer = model.replay_buffer
    for _ in range(4000):
        obs = rng.integers(0, 256, (1, *obs_shape), dtype=np.uint8)
        buffer.add(obs, obs, rng.uniform(-1, 1, (1, 3)), np.zeros(1), np.zeros(1), [{}])
    model._setup_learn(total_timesteps=1)  # logger and progress state that train() expects
    return model


def time_sb3(model, updates: int) -> float:
    start = time.perf_counter()
    model.train(gradient_steps=updates, batch_size=BATCH)
    return updates / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=20, help="updates per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported)")
    parser.add_argument("--encoder", default=ModelConfig.encoder, help="our encoder")
    parser.add_argument("--obs_size", type=int, default=EnvConfig.obs_size, help="observation side (both learners)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--profile", nargs="?", const="fp32", choices=("fp32", "bf16"),
                        help="print torch.profiler's top operators of our update (float32 or bfloat16) and exit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    env_config = EnvConfig(obs_size=args.obs_size)
    make = lambda train_encoder, bf16=False: SACLearner(  # noqa: E731
        ActorCritic(env_config.obs_shape, ModelConfig(encoder=args.encoder)),
        RLConfig(train_encoder=train_encoder, bf16=bf16), torch.device("cpu"))
    learner, frozen = make(True), make(False)
    bf16 = make(True, bf16=True) if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    buffer = filled_replay(env_config, 5000, rng)
    # Fine-tuning keeps the encoder fixed, so its replay holds features computed once at collection.
    with torch.no_grad():
        features = encode_replay(buffer, lambda stacks: frozen.model.encoder(torch.as_tensor(stacks)).numpy())
    if args.profile:
        return profile(bf16 if args.profile == "bf16" else learner, buffer, args.updates, rng)
    sb3 = make_sb3(env_config.obs_shape, rng)
    timers = {"ours": partial(time_ours, learner, buffer), "frozen": partial(time_ours, frozen, features),
              "bare": partial(time_bare, learner, buffer), "sb3": lambda updates, rng: time_sb3(sb3, updates)}
    if bf16 is not None:
        timers["bf16"] = partial(time_ours, bf16, buffer)
    results = {name: [] for name in timers}
    for name, timer in timers.items():  # warm-up: oneDNN builds its kernels on first use
        timer(3, rng)
    for _ in range(args.rounds):  # alternating, so a slower spell of a shared host hits every learner
        for name, timer in timers.items():
            results[name].append(timer(args.updates, rng))
    med = {k: float(np.median(v)) for k, v in results.items()}
    print(f"updates/s at batch {BATCH}, {args.threads} torch threads, encoder {args.encoder}, "
          f"obs {env_config.obs_shape}:")
    print(f"  ours (sample + augment + update) {med['ours']:6.2f}")
    if "bf16" in med:
        print(f"  ours under bfloat16 autocast     {med['bf16']:6.2f}   "
              f"ours bf16 / SB3 = {med['bf16'] / med['sb3']:.1f}x")
    print(f"  bare forward/backward            {med['bare']:6.2f}   "
          f"learner overhead {med['bare'] / med['ours'] - 1:+.0%}")
    print(f"  ours, encoder fixed (fine-tune, cached features) {med['frozen']:6.2f}")
    print(f"  Stable-Baselines3 SAC CnnPolicy  {med['sb3']:6.2f}   ours / SB3 = {med['ours'] / med['sb3']:.1f}x "
          f"(encoder fixed: {med['frozen'] / med['sb3']:.1f}x)")
    out = Path(__file__).parent / "results" / f"learner_speed_obs{args.obs_size}.json"
    out.write_text(json.dumps({"median_updates_per_s": med, "rounds": results, "batch": BATCH, "encoder": args.encoder,
                               "obs_shape": env_config.obs_shape,
                               "threads": args.threads, "ratio_vs_sb3": med["ours"] / med["sb3"],
                               "ratio_frozen_vs_sb3": med["frozen"] / med["sb3"],
                               "ratio_bf16_vs_sb3": med["bf16"] / med["sb3"] if "bf16" in med else None,
                               "overhead": med["bare"] / med["ours"] - 1}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
