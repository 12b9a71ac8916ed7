"""Data-parallel scaling of train_rl under torchrun: 1 vs 2 (or more) processes, same per-rank settings.

    python bench/ddp_scaling.py [--procs 1 2] [--total_steps 3000] [--device cpu]

Each rank runs `--num_envs` environments and does `updates_per_step` updates per step it collects, so K
ranks collect K times the environment steps per iteration and average K batches per update. Reports the
whole job's environment steps/s and frames/s, and the gradient updates/s of one rank (from rank 0's
TensorBoard scalars, measured over each whole run). Results: bench/results/ddp_scaling_<device>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the root: bench/expert.py must not shadow expert.py

from env import EnvConfig  # noqa: E402
from finetune import eval_curve  # noqa: E402  (reads a run's TensorBoard scalars)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--total_steps", type=int, default=3000, help="steps of the whole job")
    parser.add_argument("--num_envs", type=int, default=1, help="environments per rank")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    results = {}
    stamp = time.strftime("%Y%m%d_%H%M%S")
    for procs in args.procs:
        run_id = f"bench_ddp{procs}_{args.device}_{stamp}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
               str(ROOT / "main.py"),
               "train_rl", "--run_id", run_id, "--total_steps", str(args.total_steps), "--learning_starts", "500",
               "--num_envs", str(args.num_envs), "--eval_every", "0", "--device", args.device]
        print("$ " + " ".join(cmd[2:]), flush=True)
        started = time.time()
        subprocess.run(cmd, check=True, env=env)
        wall = time.time() - started
        last = lambda tag: eval_curve(run_id, tag)[1][-1]  # noqa: E731
        steps_per_s = last("speed/steps_per_s_overall")
        results[procs] = {"run_id": run_id, "wall_s": wall, "steps_per_s": steps_per_s,
                          "frames_per_s": steps_per_s * EnvConfig().action_repeat,
                          "updates_per_s_per_rank": last("speed/updates_per_s")}
    for procs, r in results.items():
        print(f"{procs} process(es): {r['steps_per_s']:.1f} env steps/s ({r['frames_per_s']:.0f} frames/s), "
              f"{r['updates_per_s_per_rank']:.2f} updates/s per rank, wall {r['wall_s']:.0f}s")
    out = ROOT / "bench" / "results" / f"ddp_scaling_{args.device}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
