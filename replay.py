"""Play back, verify, summarise or export recorded demonstrations.

    python main.py replay --dataset expert                  # watch every episode in a window (Escape quits,
                                                            # Space pauses, Right arrow skips to the next)
    python main.py replay --dataset expert --episode 3 --video ep3.mp4   # or .gif; headless; the full view
    python main.py replay --dataset expert --video obs.mp4 --video_view obs  # what the agent sees
    python main.py replay --dataset expert --verify         # re-simulate: frames and rewards must match exactly
    python main.py replay --dataset expert --summary
    python main.py replay --dataset expert --export_minari carracing/expert-v0   # as a Minari dataset
    python main.py replay --dataset minari:carracing/expert-v0 --verify          # read back (train_bc too)
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

import demos
import minari_io
from env import EnvConfig, make_env
from errors import UserError
from video import add_view_argument, check_video_path, upscale, write_video

FPS = 50  # CarRacing's frame rate; demos hold one frame per action


def add_arguments(parser: argparse.ArgumentParser) -> None:
    demos.add_epilog(parser, __doc__)
    parser.add_argument("--dataset", required=True,
                        help="dataset name (data/<dataset>/), a directory path, or minari:<id> "
                             "(a local Minari dataset)")
    parser.add_argument("--episode", type=int, default=None, help="only episode_<K>.npz (default: all)")
    parser.add_argument("--video", default=None, help="write the episodes to this .mp4 or .gif instead of a window")
    add_view_argument(parser)
    parser.add_argument("--scale", type=int, default=4,
                        help="magnification of the 96x96 frames (window and --video_view obs)")
    parser.add_argument("--fps", type=int, default=FPS, help="playback / video frame rate")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="re-simulate each episode from its seed and actions; "
             "exit 1 naming each episode that differs and its first differing step",
    )
    parser.add_argument("--summary", action="store_true", help="print the dataset summary")
    parser.add_argument("--export_minari", metavar="ID", default=None,
                        help="write the episodes as a new Minari dataset [namespace/]name-v<N> under "
                             "$MINARI_DATASETS_PATH (default ~/.minari/datasets), frames lossless, with seeds, "
                             "off_track and DART's executed_actions")
    parser.add_argument("--skip_bad", action="store_true", help="warn about unreadable files and use the others")


def select_episodes(args: argparse.Namespace) -> list[demos.Episode]:
    if args.episode is None:
        return demos.load_named_dataset(args.dataset, skip_bad=args.skip_bad)
    if args.dataset.startswith(demos.MINARI_PREFIX):
        raise UserError("--episode picks a file of a demo directory; a Minari dataset is replayed whole")
    path = demos.dataset_dir(args.dataset) / f"episode_{args.episode}.npz"
    if not path.exists():
        raise UserError(f"--episode {args.episode}: {path} does not exist")
    return [demos.load_episode(path)]


def verify_episode(episode: demos.Episode, env=None) -> str | None:
    """Re-simulate `episode`; None if every frame and reward is identical, else where it first differs."""
    if episode.seed == demos.UNKNOWN_SEED:
        return "no track seed recorded, nothing to re-simulate"
    steps = len(episode)
    own_env = env is None
    if own_env:
        # The recording setup: one frame per action, no early stop, raw rewards in info.
        env = make_env(EnvConfig(action_repeat=1, offtrack_limit=0, max_frames=steps), pixels=False)
    else:
        env.unwrapped.config.max_frames = steps
    try:
        frame, _ = env.reset(seed=episode.seed)
        if not np.array_equal(frame, episode.observations[0]):
            return "step 0: reset frame differs"
        actions = episode.driven_actions
        for t in range(steps):
            frame, _, terminated, _, info = env.step(actions[t])
            if not np.array_equal(frame, episode.observations[t + 1]):
                return f"step {t + 1}: frame differs"
            if np.float32(info["raw_reward"]).tobytes() != episode.rewards[t].tobytes():
                return f"step {t + 1}: reward {info['raw_reward']!r} re-simulated, {episode.rewards[t]!r} recorded"
            if episode.off_track is not None and info["off_track"] != episode.off_track[t]:
                return f"step {t + 1}: off_track {info['off_track']} re-simulated, {episode.off_track[t]} recorded"
            if terminated and t < steps - 1:
                return f"step {t + 1}: the episode ended here when re-simulated but has {steps} steps"
        if terminated != episode.terminated:
            return f"step {steps}: terminated={terminated} re-simulated, {episode.terminated} recorded"
    finally:
        if own_env:
            env.close()
    return None


def verify(episodes: list[demos.Episode]) -> int:
    """Verify every episode with one environment; print each mismatch; 1 if any, else 0."""
    env = make_env(EnvConfig(action_repeat=1, offtrack_limit=0), pixels=False)
    failures = 0
    try:
        for number, episode in enumerate(tqdm(episodes, desc="verify", unit="episode")):
            problem = verify_episode(episode, env)
            if problem:
                failures += 1
                tqdm.write(f"MISMATCH {episode.path or f'episode {number}'}: {problem}")
    finally:
        env.close()
    print(f"verified {len(episodes) - failures}/{len(episodes)} episodes byte-for-byte")
    return 1 if failures else 0


def video_frames(episodes: list[demos.Episode], view: str, scale: int) -> Iterator[np.ndarray]:
    """All episodes, one after another: the recorded frames magnified (`obs`), or re-simulated in the full view."""
    if view == "full":
        yield from full_view_frames(episodes)
        return
    for episode in episodes:
        for frame in episode.observations:
            yield upscale(frame, scale)


def full_view_frames(episodes: list[demos.Episode]) -> Iterator[np.ndarray]:
    """Each episode re-driven from its track seed and actions (files keep only the 96x96 frames), seen in
    the 600x400 view; warns when the re-simulated frames differ from the recorded ones."""
    env = make_env(EnvConfig(action_repeat=1, offtrack_limit=0), pixels=False)
    try:
        for number, episode in enumerate(episodes):
            env.config.max_frames = len(episode)
            frame, _ = env.reset(seed=episode.seed)
            same = np.array_equal(frame, episode.observations[0])
            yield env.render_full_view()
            for t, action in enumerate(episode.driven_actions):
                frame, *_ = env.step(action)
                same = same and np.array_equal(frame, episode.observations[t + 1])
                yield env.render_full_view()
            if not same:
                tqdm.write(f"warning: {episode.path or f'episode {number}'} re-simulates differently from its recorded "
                           "frames (see --verify): the video shows the re-simulated drive")
    finally:
        env.close()


def write_video_file(episodes: list[demos.Episode], path: Path, view: str, scale: int, fps: int) -> None:
    check_video_path(str(path))
    if view == "full":
        unknown = [str(ep.path or f"episode {n}") for n, ep in enumerate(episodes) if ep.seed == demos.UNKNOWN_SEED]
        if unknown:
            raise UserError(f"--video_view full re-drives each episode from its track seed, and {unknown[0]} has none: "
                            "use --video_view obs")
    frames = write_video(path, video_frames(episodes, view, scale), fps)
    print(f"wrote {frames} frames of {len(episodes)} episodes ({view} view) to {path}")


def play(episodes: list[demos.Episode], scale: int, fps: int) -> None:
    """Show the episodes in a window. Escape or closing quits, Space pauses, Right arrow skips the episode."""
    import pygame

    pygame.display.init()
    size = 96 * scale
    screen = pygame.display.set_mode((size, size))
    clock = pygame.time.Clock()
    try:
        for episode in episodes:
            t, paused = 0, False
            while t < len(episode.observations):
                for event in pygame.event.get():
                    if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                        return
                    if event.type == pygame.KEYDOWN and event.key == pygame.K_SPACE:
                        paused = not paused
                    if event.type == pygame.KEYDOWN and event.key == pygame.K_RIGHT:
                        t = len(episode.observations)
                if t >= len(episode.observations):
                    break
                frame = upscale(episode.observations[t], scale)
                # pygame surfaces are (width, height): transpose the (row, column) image.
                screen.blit(pygame.surfarray.make_surface(frame.transpose(1, 0, 2)), (0, 0))
                pygame.display.set_caption(
                    f"{episode.path.name if episode.path else 'episode'}  track {episode.seed}  "
                    f"step {t}/{len(episode)}  return {episode.rewards[:t].sum():.1f}"
                )
                pygame.display.flip()
                clock.tick(fps)
                if not paused:
                    t += 1
    finally:
        pygame.display.quit()


def run(args: argparse.Namespace) -> int:
    if args.scale < 1:
        raise UserError(f"--scale must be >= 1, got {args.scale}")
    if args.fps < 1:
        raise UserError(f"--fps must be >= 1, got {args.fps}")
    if args.export_minari:
        minari_io.check_new_id(args.export_minari)  # before a long load
    episodes = select_episodes(args)
    status = 0
    if args.summary:
        print(demos.format_summary(demos.summarize(episodes)))
    if args.verify:
        status = verify(episodes)
    if args.export_minari:
        minari_io.export_episodes(episodes, args.export_minari)
    if args.video:
        write_video_file(episodes, Path(args.video), args.video_view, args.scale, args.fps)
    elif not (args.summary or args.verify or args.export_minari):
        play(episodes, args.scale, args.fps)
    return status
