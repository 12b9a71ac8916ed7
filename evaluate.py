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

from agent import MAX_GAS_SCALE, MAX_STEER_SCALE, Agent, check_driving, own_driving_setting
from atomic_files import atomic_write_text, check_writable, remove_stale_temp_files
from env import (MAX_NUM_ENVS, TEST_SEED_START, VALIDATION_SEED_START, EnvConfig, EpisodeMetrics, FrameStacker,
                 make_vec_env)
from errors import UserError
from networks import POLICY_ACTIONS, ModelConfig
from runs import RESULTS_DIR, load_config, run_dir
from video import EpisodeRecorder, add_clip, add_view_argument, check_video_path, write_video

OUTPUT_FREE_BYTES = 16 * 2**20  # disk room asked for the results JSON and a video


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume_run_id", required=True, help="run to test: id under logs/ or a run directory")
    parser.add_argument("--episodes", type=int, default=50, help="number of tracks")
    parser.add_argument("--seed", type=int, default=TEST_SEED_START,
                        help="first track seed (tracks seed..seed+episodes-1)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint name in the run (default: latest), e.g. best or epoch_3")
    parser.add_argument("--num_envs", type=int, default=2, help="parallel environment processes")
    parser.add_argument("--video", default=None, help="write the first track's episode to this .mp4 or .gif")
    add_view_argument(parser)
    parser.add_argument("--render", action="store_true", help="show a window (one environment at a time)")
    parser.add_argument("--shove", type=float, default=0.0,
                        help="robustness test: probability per agent step of a shove, a hard random steer (gas off) "
                             f"held for {SHOVE_HOLD_FRAMES} frames; the same shoves on every track for every policy "
                             "(e.g. 0.01)")
    parser.add_argument("--policy_action", choices=POLICY_ACTIONS, default=None,
                        help="override the run's action: mean = tanh of the policy's mean, expected = the average of "
                             "its squashed samples (default: the run's own, saved in its config; results named apart)")
    parser.add_argument("--brake_scale", type=float, default=None,
                        help="drive with the brake of every action times this, in [0, 1] (default: the run's own, "
                             "its config's model.brake_scale, which train_rl's brake trial sets for the run's policy; "
                             "1 with --checkpoint; results named apart)")
    parser.add_argument("--gas_scale", type=float, default=None,
                        help=f"drive with the gas of every action times this, in [1, {MAX_GAS_SCALE:g}], capped at "
                             "full gas (default: the run's own, model.gas_scale, which train_rl's gas trial sets; "
                             "1 with --checkpoint; results named apart)")
    parser.add_argument("--brake_deadzone", type=float, default=None,
                        help="drive with every brake lighter than this, in [0, 1), released (before --brake_scale; "
                             "default: the run's own, model.brake_deadzone, which train_rl's deadzone trial sets; 0 "
                             "with --checkpoint; results named apart)")
    parser.add_argument("--steer_scale", type=float, default=None,
                        help=f"drive with the steering of every action times this, in [1, {MAX_STEER_SCALE:g}], "
                             "clipped to full lock (default: the run's own, model.steer_scale, which train_rl's "
                             "steering trial sets; 1 with --checkpoint; results named apart)")
    parser.add_argument("--device", default="cpu", help="torch device for the policy: cpu, cuda, cuda:N, auto")


SHOVE_HOLD_FRAMES = 16  # how long a shove overrides the policy (0.32 s)
SHOVE_BLAME_FRAMES = 50  # leaving the road within 1 s after a shove ends counts as caused by it
RECOVERY_FRAMES = 100  # back on the road within 2 s of leaving it = recovered
# Training's evaluation clip: the first 200 agent steps (8 s at action repeat 2) of one validation track,
# full view shrunk to 300x200: about 1 MB of GIF per evaluation.
CLIP_STEPS, CLIP_SHRINK = 200, 2


class Shoves:
    """Deterministic pushes off the racing line on one track, and the road excursions they cause.

    Each agent step draws from a generator seeded by the track alone, so every policy meets the same
    shoves at the same steps (until its episode ends). A shove replaces the action by a full steer to a
    random side with no gas for SHOVE_HOLD_FRAMES frames. An excursion is the car leaving the road during
    a shove or within SHOVE_BLAME_FRAMES after it; it is recovered if a wheel is back on the road within
    RECOVERY_FRAMES frames.
    """

    def __init__(self, track_seed: int, probability: float, action_repeat: int):
        self.rng = np.random.default_rng([track_seed, 2024])
        self.probability, self.action_repeat = probability, action_repeat
        self.hold = self.since_shove = 0
        self.left_at: int | None = None  # frame of the current excursion's start
        self.was_off = False
        self.frame = self.shoves = self.excursions = self.recoveries = 0
        self.action = np.zeros(3, np.float32)

    def apply(self, action: np.ndarray) -> np.ndarray:
        """The action to execute this agent step: the policy's, or the shove's."""
        start, side = self.rng.random(), self.rng.choice((-1.0, 1.0))  # drawn every step: same stream for all
        if self.hold <= 0 and start < self.probability:
            self.hold, self.shoves = SHOVE_HOLD_FRAMES, self.shoves + 1
            self.action = np.array([side, 0.0, 0.0], np.float32)
        if self.hold > 0:
            self.hold -= self.action_repeat
            self.since_shove = 0
            return self.action
        return action

    def observe(self, frame_off_track: list[bool]) -> None:
        for off in frame_off_track:
            self.frame += 1
            if self.left_at is None and off and not self.was_off and self.since_shove <= SHOVE_BLAME_FRAMES:
                self.left_at, self.excursions = self.frame, self.excursions + 1
            elif self.left_at is not None and (not off or self.frame - self.left_at > RECOVERY_FRAMES):
                self.recoveries += not off
                self.left_at = None
            self.was_off = off
            self.since_shove += 1

    def result(self) -> dict:
        return {"shoves": self.shoves, "excursions": self.excursions, "recoveries": self.recoveries}


def check_shove(probability: float) -> None:
    """`--shove` of `test` and `expert`: a probability per agent step."""
    if not 0 <= probability <= 1:  # also refuses nan
        raise UserError(f"--shove must be a probability in [0, 1], got {probability}")


class FrameShoves(Shoves):
    """The same shoves for a driver that acts every frame (the autopilot): drawn once per agent step of
    `action_repeat` frames, at the same steps as `test --shove`'s on the same track."""

    def __init__(self, track_seed: int, probability: float, action_repeat: int):
        super().__init__(track_seed, probability, action_repeat)
        self.driven = 0  # frames driven (`frame` counts the observed ones)
        self.push: np.ndarray | None = None

    def __call__(self, action: np.ndarray) -> np.ndarray:
        """The action to execute this frame: the driver's, or the shove's."""
        if self.driven % self.action_repeat == 0:  # an agent step starts: the shove stream's draw
            self.push = self.apply(None)  # None unless a shove holds this step
        self.driven += 1
        return action if self.push is None else self.push


def run(args: argparse.Namespace) -> int:
    check_shove(args.shove)
    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    if not 1 <= args.num_envs <= MAX_NUM_ENVS:
        raise UserError(f"--num_envs must be in [1, {MAX_NUM_ENVS}], got {args.num_envs}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0 (track seeds), got {args.seed}")
    if args.video:
        check_video_path(args.video)
    path = run_dir(args.resume_run_id)
    prepare_outputs(path / RESULTS_DIR, args.video)
    driving = {key: getattr(args, key) for key in ModelConfig.DRIVING_SETTINGS}  # None: the run's own
    check_driving(driving, "--")
    agent = Agent.load(path, checkpoint=args.checkpoint, device=args.device, policy_action=args.policy_action,
                       **driving)
    seeds = list(range(args.seed, args.seed + args.episodes))
    recorder = EpisodeRecorder(args.video_view) if args.video else None
    episodes = evaluate(agent, seeds, num_envs=1 if args.render else args.num_envs, recorder=recorder,
                        render=args.render, shove=args.shove)
    if recorder:
        write_video(args.video, recorder.frames, fps=50 // agent.env_config.action_repeat)
        print(f"video of track {args.seed} ({args.video_view} view): {args.video}")
    summary = summarize(episodes)
    print(format_table(summary))
    out = results_file(path, args.checkpoint, args.seed, args.episodes, args.shove, args.policy_action, driving)
    atomic_write_text(out, json.dumps({"summary": summary, "episodes": episodes}, indent=2))  # never half a file
    print(f"per-episode results: {out}")
    return 0


def results_file(path: Path, checkpoint: str | None, seed: int, episodes: int, shove: float,
                 policy_action: str | None, driving: dict[str, float | None] | None = None) -> Path:
    """Where `test` writes a run's results: named by checkpoint, tracks, shoves, and an action or driving settings
    (ModelConfig.DRIVING_SETTINGS; None: the run's own) other than the run's."""
    name = Path(checkpoint).stem if checkpoint else "latest"
    shoved = f"_shove{shove:g}" if shove else ""
    given = {key: value for key, value in (driving or {}).items() if value is not None}
    model = load_config(path)["model"] if policy_action or given else {}
    action = f"_{policy_action}" if policy_action and policy_action != model["policy_action"] else ""
    scales, as_trained = "", ModelConfig.as_trained()
    for key, value in given.items():
        run_value = model.get(key, as_trained[key])  # runs saved before a setting drove as trained
        if value != own_driving_setting(run_value, checkpoint, key):
            scales += f"_{key.removesuffix('_scale')}{value:g}"
    return path / RESULTS_DIR / f"{name}_seed{seed}_n{episodes}{shoved}{action}{scales}.json"


def prepare_outputs(results: Path, video: str | None) -> None:
    """Check that the results (and the video) can be written before the evaluation, not after it, so a
    read-only or full disk costs seconds; remove temporary files of earlier tests that were killed."""
    check_writable(results, OUTPUT_FREE_BYTES)
    remove_stale_temp_files(results)
    if video:
        check_writable(Path(video).parent, OUTPUT_FREE_BYTES)


def evaluate(agent: Agent, seeds: list[int], num_envs: int = 2, recorder: EpisodeRecorder | None = None,
             render: bool = False, progress: bool = True, shove: float = 0.0) -> list[dict]:
    """Run one full episode per track seed with deterministic actions; returns per-episode metrics.
    `recorder` keeps the frames of the first seed's episode; `shove` > 0 pushes the car off its line
    now and then (see `Shoves`) and counts recoveries."""
    # Score with the GUIDE's standard penalty, whatever the run trained with; never stop early.
    env_config = replace(EnvConfig(), action_repeat=agent.env_config.action_repeat, offtrack_penalty=0.0,
                         offtrack_limit=0, stall_limit=0)
    num_envs = min(num_envs, len(seeds))
    vec_env = make_vec_env(num_envs, env_config, autoreset=False, pixels=False, render_mode="human" if render else None)
    pending = list(seeds)
    slot_seed: list[int | None] = [None] * num_envs
    stackers = [FrameStacker(agent.env_config) for _ in range(num_envs)]
    metrics = [EpisodeMetrics() for _ in range(num_envs)]
    lap = [False] * num_envs
    shoves: list[Shoves | None] = [None] * num_envs
    results: list[dict] = []
    obs = np.zeros((num_envs, *agent.env_config.obs_shape), np.uint8)

    def start(mask: np.ndarray) -> None:
        seeds_now = [pending.pop(0) if m else None for m in mask]
        frames, _ = vec_env.reset(seed=seeds_now, options={"reset_mask": mask})
        for i in np.flatnonzero(mask):
            slot_seed[i], metrics[i], lap[i] = seeds_now[i], EpisodeMetrics(), False
            shoves[i] = Shoves(seeds_now[i], shove, env_config.action_repeat) if shove else None
            obs[i] = stackers[i].reset(frames[i])
            if recorder and slot_seed[i] == seeds[0]:
                recorder.capture(vec_env, i, frames[i])

    start(np.arange(num_envs) < min(num_envs, len(pending)))
    bar = tqdm(total=len(seeds), desc="test", unit="ep", disable=not progress)
    started = time.time()
    while any(s is not None for s in slot_seed):
        active = np.array([s is not None for s in slot_seed])
        actions = np.zeros((num_envs, 3), np.float32)  # finished slots idle (the env does not simulate them)
        actions[active] = agent.decide(obs[active])
        for i in np.flatnonzero(active):
            if shoves[i] is not None:
                actions[i] = shoves[i].apply(actions[i])
        frames, _, terminated, truncated, info = vec_env.step(actions)
        for i in range(num_envs):
            if slot_seed[i] is None:
                continue
            metrics[i].add(info["frame_rewards"][i], info["frame_off_track"][i])
            lap[i] = lap[i] or bool(info["lap_complete"][i])
            if shoves[i] is not None:
                shoves[i].observe(info["frame_off_track"][i])
            obs[i] = stackers[i].push(frames[i])
            if recorder and slot_seed[i] == seeds[0]:
                recorder.capture(vec_env, i, frames[i])
            if terminated[i] or truncated[i]:
                m = metrics[i]
                results.append({"seed": slot_seed[i], "raw_return": m.raw_return,
                                "penalized_return": m.penalized_return,
                                "lap_complete": lap[i], "offtrack_frames": m.offtrack_frames, "frames": m.frames,
                                "tiles_skipped": int(info["tiles_skipped"][i]),  # left behind: the lap is lost
                                **(shoves[i].result() if shoves[i] else {})})
                slot_seed[i] = None
                bar.update(1)
        finished = np.array([s is None for s in slot_seed])
        if pending and finished.any():
            start(finished & (np.cumsum(finished) <= len(pending)))
    bar.close()
    vec_env.close()
    if progress:
        frames = sum(r["frames"] for r in results)
        print(f"{frames} frames in {time.time() - started:.0f}s ({frames / (time.time() - started):.0f} frames/s)")
    return sorted(results, key=lambda r: r["seed"])


def validate(agent: Agent, episodes: int, num_envs: int, recorder: EpisodeRecorder | None = None) -> dict:
    """The summary of `agent` driving the first `episodes` validation tracks (train_rl's model left as it was)."""
    was_training = agent.model.training
    agent.model.eval()
    seeds = list(range(VALIDATION_SEED_START, VALIDATION_SEED_START + episodes))
    summary = summarize(evaluate(agent, seeds, num_envs=num_envs, progress=False, recorder=recorder))
    agent.model.train(was_training)
    return summary


def validate_on_tracks(agent: Agent, episodes: int, num_envs: int, writer, step: int, clip: bool = True) -> dict:
    """Periodic evaluation during training: `episodes` validation tracks, means logged under eval/;
    with `clip`, the start of the first track's episode as an animated GIF (TensorBoard's Images tab)."""
    recorder = EpisodeRecorder("full", max_frames=CLIP_STEPS, shrink_by=CLIP_SHRINK) if clip else None
    summary = validate(agent, episodes, num_envs, recorder)
    for key, name in (("raw", "raw_return"), ("penalized", "penalized_return"), ("offtrack_frames", "offtrack_frames")):
        writer.add_scalar(f"eval/{name}", summary[key]["mean"], step)
    writer.add_scalar("eval/laps_lost_to_skipped_tiles", summary["laps_lost_to_skipped_tiles"], step)
    if recorder:
        add_clip(writer, "eval/episode", recorder.frames, fps=50 // agent.env_config.action_repeat, step=step)
    return summary


def summarize(episodes: list[dict]) -> dict:
    raw = np.array([e["raw_return"] for e in episodes])
    pen = np.array([e["penalized_return"] for e in episodes])
    off = np.array([e["offtrack_frames"] for e in episodes])
    stats = lambda x: {"mean": float(x.mean()), "std": float(x.std()), "median": float(np.median(x)),
                       "min": float(x.min())}
    summary = {"episodes": len(episodes), "raw": stats(raw), "penalized": stats(pen), "offtrack_frames": stats(off),
               "laps_completed": int(sum(e["lap_complete"] for e in episodes))}
    if "tiles_skipped" in episodes[0]:  # results saved before it was recorded lack it
        summary["laps_lost_to_skipped_tiles"] = int(sum(e["tiles_skipped"] > 0 and not e["lap_complete"]
                                                        for e in episodes))
    if "shoves" in episodes[0]:
        for key in ("shoves", "excursions", "recoveries"):
            summary[key] = int(sum(e[key] for e in episodes))
    return summary


def format_table(summary: dict) -> str:
    rows = [("raw return", summary["raw"]), ("penalized return", summary["penalized"]),
            ("off-track frames", summary["offtrack_frames"])]
    lines = [f"{'':18}{'mean':>9}{'std':>9}{'median':>9}{'min':>9}"]
    lines += [f"{name:18}{s['mean']:9.1f}{s['std']:9.1f}{s['median']:9.1f}{s['min']:9.1f}" for name, s in rows]
    lines.append(f"laps completed: {summary['laps_completed']}/{summary['episodes']}"
                 + (f" ({summary['laps_lost_to_skipped_tiles']} lost to road tiles left behind unvisited)"
                    if summary.get("laps_lost_to_skipped_tiles") else ""))
    if "shoves" in summary:
        lines.append(f"shoves: {summary['shoves']}, off-road excursions they caused: {summary['excursions']}, "
                     f"recovered within {RECOVERY_FRAMES // 50} s: {summary['recoveries']}")
    return "\n".join(lines)


def side_by_side(argv: list[str] | None = None) -> None:
    """`python evaluate.py RUN_DIR [RUN_DIR ...] --episodes N [--shove P]`: the runs' latest test results as one
    table; with --shove, also their results under `test --shove P`."""
    parser = argparse.ArgumentParser(description=side_by_side.__doc__)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--shove", type=float, default=0.0, help="also show the results of test --shove P")
    args = parser.parse_args(argv)
    rows = [("raw return", lambda s: f"{s['raw']['mean']:.1f} ± {s['raw']['std']:.1f}"),
            ("min raw return", lambda s: f"{s['raw']['min']:.1f}"),
            ("penalized return", lambda s: f"{s['penalized']['mean']:.1f}"),
            ("off-track frames", lambda s: f"{s['offtrack_frames']['mean']:.1f}"),
            ("laps completed", lambda s: f"{s['laps_completed']}/{s['episodes']}")]
    shoved_rows = [(f"  with shoves {args.shove:g}", rows[0][1]),
                   ("  recovered", lambda s: f"{s['recoveries']} of {s['excursions']} excursions")]
    print(f"{'':20}" + "".join(f"{Path(run).name:>24}" for run in args.runs))
    for table, shove in [(rows, 0.0)] + ([(shoved_rows, args.shove)] if args.shove else []):
        summaries = []
        for run in args.runs:
            path = results_file(Path(run), None, TEST_SEED_START, args.episodes, shove, None)
            if not path.is_file():
                raise SystemExit(f"error: {path} not found: test {Path(run).name} with --episodes {args.episodes}"
                                 f"{f' --shove {shove:g}' if shove else ''} first")
            summaries.append(json.loads(path.read_text())["summary"])
        for name, cell in table:
            print(f"{name:20}" + "".join(f"{cell(s):>24}" for s in summaries))


if __name__ == "__main__":
    side_by_side()
