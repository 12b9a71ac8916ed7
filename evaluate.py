"""`test`: drive a run deterministically on held-out tracks and report the GUIDE's metrics.

Each track is one full episode (<= 1000 frames, no early stop) scored two ways at once: raw return
(CarRacing's own reward) and penalized return (-10 per off-track frame, cut at 20 consecutive
off-track frames). Environments run in parallel processes; the policy runs in this one.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agent import Agent
from env import TEST_SEED_START, VALIDATION_SEED_START, EnvConfig, EpisodeMetrics, FrameStacker, make_vec_env
from errors import UserError
from runs import run_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume_run_id", required=True, help="run to test: id under logs/ or a run directory")
    parser.add_argument("--episodes", type=int, default=50, help="number of tracks")
    parser.add_argument("--seed", type=int, default=TEST_SEED_START, help="first track seed (tracks seed..seed+episodes-1)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint name in the run (default: latest), e.g. best or epoch_3")
    parser.add_argument("--num_envs", type=int, default=2, help="parallel environment processes")
    parser.add_argument("--video", default=None, help="write the first episode to this .mp4 or .gif")
    parser.add_argument("--render", action="store_true", help="show a window (one environment at a time)")
    parser.add_argument("--device", default="cpu", help="torch device for the policy: cpu, cuda, cuda:N, auto")


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    if args.num_envs < 1:
        raise UserError(f"--num_envs must be >= 1, got {args.num_envs}")
    if args.video and Path(args.video).suffix.lower() not in (".mp4", ".gif"):
        raise UserError(f"--video {args.video}: use a .mp4 or .gif file name")
    path = run_dir(args.resume_run_id)
    agent = Agent.load(path, checkpoint=args.checkpoint, device=args.device)
    seeds = list(range(args.seed, args.seed + args.episodes))
    episodes = evaluate(agent, seeds, num_envs=1 if args.render else args.num_envs, video=args.video, render=args.render)
    summary = summarize(episodes)
    print(format_table(summary))
    name = Path(args.checkpoint).stem if args.checkpoint else "latest"
    out = path / "test_results" / f"{name}_seed{args.seed}_n{args.episodes}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "episodes": episodes}, indent=2))
    print(f"per-episode results: {out}")
    return 0


def evaluate(agent: Agent, seeds: list[int], num_envs: int = 2, video: str | None = None,
             render: bool = False, progress: bool = True) -> list[dict]:
    """Run one full episode per track seed with deterministic actions; returns per-episode metrics."""
    # Score with the GUIDE's standard penalty, whatever the run trained with; never stop early.
    env_config = replace(EnvConfig(), action_repeat=agent.env_config.action_repeat, offtrack_penalty=0.0, offtrack_limit=0)
    num_envs = min(num_envs, len(seeds))
    vec_env = make_vec_env(num_envs, env_config, autoreset=False, pixels=False, render_mode="human" if render else None)
    pending = list(seeds)
    slot_seed: list[int | None] = [None] * num_envs
    stackers = [FrameStacker(agent.env_config) for _ in range(num_envs)]
    metrics = [EpisodeMetrics() for _ in range(num_envs)]
    lap = [False] * num_envs
    results: list[dict] = []
    video_frames: list[np.ndarray] = []
    obs = np.zeros((num_envs, *agent.env_config.obs_shape), np.uint8)

    def start(mask: np.ndarray) -> None:
        seeds_now = [pending.pop(0) if m else None for m in mask]
        frames, _ = vec_env.reset(seed=seeds_now, options={"reset_mask": mask})
        for i in np.flatnonzero(mask):
            slot_seed[i], metrics[i], lap[i] = seeds_now[i], EpisodeMetrics(), False
            obs[i] = stackers[i].reset(frames[i])
            if video and not results and i == 0:
                video_frames.append(frames[i])

    start(np.arange(num_envs) < min(num_envs, len(pending)))
    bar = tqdm(total=len(seeds), desc="test", unit="ep", disable=not progress)
    started = time.time()
    while any(s is not None for s in slot_seed):
        actions = agent.decide(obs)
        frames, _, terminated, truncated, info = vec_env.step(actions)
        for i in range(num_envs):
            if slot_seed[i] is None:
                continue
            metrics[i].add(info["frame_rewards"][i], info["frame_off_track"][i])
            lap[i] = lap[i] or bool(info["lap_complete"][i])
            obs[i] = stackers[i].push(frames[i])
            if video and slot_seed[i] == seeds[0]:
                video_frames.append(frames[i])
            if terminated[i] or truncated[i]:
                m = metrics[i]
                results.append({"seed": slot_seed[i], "raw_return": m.raw_return, "penalized_return": m.penalized_return,
                                "lap_complete": lap[i], "offtrack_frames": m.offtrack_frames, "frames": m.frames})
                slot_seed[i] = None
                bar.update(1)
        finished = np.array([s is None for s in slot_seed])
        if pending and finished.any():
            start(finished & (np.cumsum(finished) <= len(pending)))
    bar.close()
    vec_env.close()
    if video:
        write_video(video, video_frames, fps=50 // agent.env_config.action_repeat)
        if progress:
            print(f"video of track {seeds[0]}: {video}")
    if progress:
        frames = sum(r["frames"] for r in results)
        print(f"{frames} frames in {time.time() - started:.0f}s ({frames / (time.time() - started):.0f} frames/s)")
    return sorted(results, key=lambda r: r["seed"])


def validate_on_tracks(agent: Agent, episodes: int, num_envs: int, writer, step: int) -> dict:
    """Periodic evaluation during training: `episodes` validation tracks, means logged under eval/."""
    was_training = agent.model.training
    agent.model.eval()
    seeds = list(range(VALIDATION_SEED_START, VALIDATION_SEED_START + episodes))
    summary = summarize(evaluate(agent, seeds, num_envs=num_envs, progress=False))
    agent.model.train(was_training)
    for key, name in (("raw", "raw_return"), ("penalized", "penalized_return"), ("offtrack_frames", "offtrack_frames")):
        writer.add_scalar(f"eval/{name}", summary[key]["mean"], step)
    return summary


def summarize(episodes: list[dict]) -> dict:
    raw = np.array([e["raw_return"] for e in episodes])
    pen = np.array([e["penalized_return"] for e in episodes])
    off = np.array([e["offtrack_frames"] for e in episodes])
    stats = lambda x: {"mean": float(x.mean()), "std": float(x.std()), "median": float(np.median(x)), "min": float(x.min())}
    return {"episodes": len(episodes), "raw": stats(raw), "penalized": stats(pen), "offtrack_frames": stats(off),
            "laps_completed": int(sum(e["lap_complete"] for e in episodes))}


def format_table(summary: dict) -> str:
    rows = [("raw return", summary["raw"]), ("penalized return", summary["penalized"]), ("off-track frames", summary["offtrack_frames"])]
    lines = [f"{'':18}{'mean':>9}{'std':>9}{'median':>9}{'min':>9}"]
    lines += [f"{name:18}{s['mean']:9.1f}{s['std']:9.1f}{s['median']:9.1f}{s['min']:9.1f}" for name, s in rows]
    lines.append(f"laps completed: {summary['laps_completed']}/{summary['episodes']}")
    return "\n".join(lines)


def write_video(path: str, frames: list[np.ndarray], fps: int) -> None:
    """Raw 96x96 frames, upscaled 4x (nearest) so they are watchable, to .mp4 or .gif."""
    import imageio.v2 as imageio

    big = [np.repeat(np.repeat(f, 4, axis=0), 4, axis=1) for f in frames]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if path.lower().endswith(".gif"):
        imageio.mimsave(path, big, duration=1000 / fps, loop=0)
    else:
        imageio.mimsave(path, big, fps=fps, macro_block_size=1)
