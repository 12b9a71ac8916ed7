"""Does the critic know the way back? Its value of the autopilot's recovery actions against the policy's own.

    python bench/critic_recoveries.py RUN [RUN ...] --dataset ft_recovery_0

Fine-tuning from DART laps teaches no recoveries (README, Results). Either the critic does not value the ways
back, or it does and the actor does not follow. On recovery laps (the autopilot recorded with `test --shove`'s
shoves: `expert --noise 0.05 --shove 0.01`) every sampled state where the car is off the road is a state with a
known way back: the action the autopilot chose there (its label, `actions`; the car executed it plus noise). For
each run the critic (min over its ensemble, raw return units) values that action and the run's own deterministic
action at the same states; the on-road states are the control, where both drive alike. A BC run's critic is its
Monte-Carlo pre-training on its own laps; a fine-tuning run's is that critic after TD learning on its rollouts.
Results: bench/results/critic_recoveries.json (by dataset, then run), and the table printed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import demos  # noqa: E402
from agent import Agent  # noqa: E402
from errors import UserError  # noqa: E402
from replay_buffer import demo_replay  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STEER_GRID = np.linspace(-1.0, 1.0, 9)


def compare(agent: Agent, batch: dict) -> dict:
    """For the states of `batch`: how often, and by how much, the critic values the recorded action above the
    run's own, and how far apart their steering is."""
    model = agent.model
    features = torch.cat([model.encoder(torch.as_tensor(chunk)) for chunk in np.array_split(batch["obs"], 16)])
    own = model.policy(features)
    recorded = torch.as_tensor(batch["action"])
    q = lambda action: (model.critic(features, action).min(0).values / model.reward_scale).numpy()
    q_recorded, q_own = q(recorded), q(own)
    q_recorded_steer = q(torch.cat([recorded[:, :1], own[:, 1:]], 1))  # the autopilot's steering, the run's pedals
    # How much the steering matters to the critic: the spread of its values over a grid of steering, the policy's
    # own gas and brake.
    q_by_steer = np.stack([q(torch.cat([torch.full_like(own[:, :1], steer), own[:, 1:]], 1)) for steer in STEER_GRID])
    return {"states": len(q_own), "recorded_above_own": float(np.mean(q_recorded > q_own)),
            "q_recorded_minus_own": float(np.mean(q_recorded - q_own)), "q_own": float(np.mean(q_own)),
            "recorded_steer_above_own": float(np.mean(q_recorded_steer > q_own)),
            "steer_gap": float(np.mean(np.abs(recorded[:, 0].numpy() - own[:, 0].numpy()))),
            "q_steer_range": float(np.mean(q_by_steer.max(0) - q_by_steer.min(0)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="BC or fine-tuning runs (their critic and policy are read)")
    parser.add_argument("--dataset", default="ft_recovery_0", help="recovery laps (expert --shove): data/<name>")
    parser.add_argument("--samples", type=int, default=10_000, help="transitions drawn from the laps")
    args = parser.parse_args()
    try:
        episodes = demos.load_named_dataset(args.dataset)
        agents = {run: Agent.load(run) for run in args.runs}
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    if all(ep.off_track is None or not ep.off_track.any() for ep in episodes):
        raise SystemExit(f"error: --dataset {args.dataset}: no recorded state is off the road (recovery laps are "
                         "recorded with expert --shove)")
    torch.set_grad_enabled(False)
    results, replays = {}, {}
    for run, agent in agents.items():
        config = agent.env_config
        key = (config.obs_size, config.frame_stack, config.action_repeat)
        if key not in replays:  # the same frames for every run that sees them alike
            replay = demo_replay(episodes, config, gamma=0.99)
            replays[key] = replay.sample(args.samples, np.random.default_rng(0))
        batch = replays[key]
        off = batch["off_track"].astype(bool)
        results[run] = {where: compare(agent, {k: batch[k][rows] for k in ("obs", "action")})
                        for where, rows in (("off the road", off), ("on the road", ~off))}
    RESULTS.mkdir(exist_ok=True)
    file = RESULTS / "critic_recoveries.json"  # by dataset: each demo set's runs are measured on its own laps
    earlier = json.loads(file.read_text()) if file.exists() else {}
    measured = {**earlier, args.dataset: {**earlier.get(args.dataset, {}), **results}}
    file.write_text(json.dumps(measured, indent=2))
    print(markdown(measured))


def markdown(measured: dict) -> str:
    lines = ["| recovery laps | run | states | n | autopilot's action valued higher | its steering (own pedals) valued "
             "higher | Q(autopilot) − Q(own) | Q(own) | steering gap | Q's range over steering |", "|" + "---|" * 10]
    for dataset, runs in measured.items():
        for run, by_place in runs.items():
            for where, r in by_place.items():
                lines.append(f"| {dataset} | {run} | {where} | {r['states']} | {100 * r['recorded_above_own']:.0f} % | "
                             f"{100 * r['recorded_steer_above_own']:.0f} % | {r['q_recorded_minus_own']:+.1f} | "
                             f"{r['q_own']:.1f} | {r['steer_gap']:.2f} | {r['q_steer_range']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
