"""The README's speed table, from the results the speed benches wrote (run them first; nothing is timed here):

    python bench/env_speed.py
    python bench/learner_speed.py --threads 1 && python bench/learner_speed.py --threads 1 --obs_size 96
    python bench/two_processes.py --bc_run BC_RUN
    python bench/speed_table.py
"""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run the bench that writes it (see this script's docstring)")
    return json.loads(path.read_text())


def learner_row(size: int) -> str:
    result = load(f"learner_speed_obs{size}")
    speed = result["median_updates_per_s"]
    bf16 = f"{speed['bf16']:.1f} ({result['ratio_bf16_vs_sb3']:.1f}×)" if "bf16" in speed else "not measured"
    return (f"| SAC updates/s, 3×{size}×{size}, batch 256, {result['threads']} thread(s) | {speed['sb3']:.2f} | "
            f"{speed['ours']:.1f} ({result['ratio_vs_sb3']:.1f}×) | {bf16} | {speed['frozen']:.0f} "
            f"({result['ratio_frozen_vs_sb3']:.0f}×) |")


def main() -> None:
    env = load("env_speed")
    steps = env["agent_steps_per_s"]
    fine_tuning = load("two_processes")["train_rl_4000_steps"]["brief spin"]["alone"]["train_rl_s"]
    print("| | Stable-Baselines3 / stock | ours | ours, bfloat16 | ours, encoder fixed (fine-tuning) |")
    print("|---|---|---|---|---|")
    print(f"| environment frames/s (every frame rendered) | {env['stock_fps']:.0f} | {env['fast_fps']:.0f} "
          f"({env['ratio']:.2f}×) | | |")
    print(f"| learning env agent steps/s, action repeat 1 / 2 / 4 | | {steps['1']:.0f} / {steps['2']:.0f} / "
          f"{steps['4']:.0f} | | |")
    print(learner_row(48))
    print(learner_row(96))
    print(f"| `train_rl` fine-tuning a BC run, 4,000 steps, whole process (steps/s) | | | | {4000 / fine_tuning:.0f} |")


if __name__ == "__main__":
    main()
