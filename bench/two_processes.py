"""What a second torch process on the same cores costs, under each thread setting.

A user who runs `test` while `train_rl` trains has two torch processes on (here) 2 cores. Each worker
below does what a fine-tuning step does in the main process — the encoder on a batch of 2 observations
(collection) and one SAC update on cached features — for `--seconds`, alone and then beside an
identical second worker. Settings compared (environment variables read when torch loads):

  spin        GOMP_SPINCOUNT=300000, libgomp's default (torch's): idle OpenMP threads busy-wait that long
  passive     OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep at once
  brief spin  GOMP_SPINCOUNT=2000: spin a little, then sleep (main.py's default unless you set one)
  1 thread    OMP_NUM_THREADS=1

With `--bc_run ID` (a BC run under logs/) it also times the real thing: `train_rl` fine-tuning ID for
4,000 steps and a `test` of 6 tracks, each alone and then started together, under each setting but "1 thread".

    python bench/two_processes.py [--seconds 20] [--bc_run ID]
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
SETTINGS = {"spin": {"GOMP_SPINCOUNT": "300000"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"},
            "brief spin": {"GOMP_SPINCOUNT": "2000"}, "1 thread": {"OMP_NUM_THREADS": "1"}}


def worker(seconds: float) -> None:
    """Fine-tuning steps for `seconds`; prints steps/s."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from env import EnvConfig
    from networks import ActorCritic, ModelConfig
    from replay_buffer import FrameReplay, sample_mixed
    from rl import RLConfig, SACLearner

    rng = np.random.default_rng(0)
    env_config, model_config = EnvConfig(), ModelConfig()
    learner = SACLearner(ActorCritic(env_config.obs_shape, model_config), RLConfig(train_encoder=False),
                         torch.device("cpu"))
    features = FrameReplay(5000, 1, (model_config.feature_dim,), 1, dtype=np.float32)
    features.start(0, rng.normal(size=model_config.feature_dim).astype(np.float32))
    for _ in range(4999):
        features.add(0, rng.uniform(-1, 1, 3), rng.normal(),
                     rng.normal(size=model_config.feature_dim).astype(np.float32), False)
    obs = torch.as_tensor(rng.integers(0, 256, (2, *env_config.obs_shape), dtype=np.uint8))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        with torch.no_grad():
            learner.model.actor.sample(learner.model.encoder(obs))
        learner.update(sample_mixed(None, features, 256, 0.0, rng, 0.99, 3), bc_weight=1.0)
        steps += 1
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start), "threads": torch.get_num_threads()}))


def measure(setting: dict, copies: int, seconds: float) -> list[float]:
    env = clean_env(setting)
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(seconds)], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(copies)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1])["steps_per_s"] for p in procs]


def clean_env(setting: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    return {**env, **setting}


def time_commands(bc_run: str, setting: dict, train: bool, test: bool) -> dict:
    """Wall seconds of a short `train_rl` and/or a `test` started together, each until its own exit."""
    import shutil

    run_id = "two_processes_probe"
    shutil.rmtree(ROOT / "logs" / run_id, ignore_errors=True)
    commands = {}
    if train:
        commands["train_rl_s"] = ["train_rl", "--resume_run_id", bc_run, "--run_id", run_id, "--total_steps", "4000",
                                  "--eval_every", "0", "--eval_video", "0"]
    if test:
        commands["test_s"] = ["test", "--resume_run_id", bc_run, "--episodes", "6"]
    start = time.perf_counter()
    running = {name: subprocess.Popen([sys.executable, "main.py", *argv], cwd=ROOT, env=clean_env(setting),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for name, argv in commands.items()}
    out = {}
    while running:
        for name, process in list(running.items()):
            if process.poll() is not None:
                if process.returncode:
                    raise SystemExit(f"{name[:-2]} failed (exit {process.returncode}) under {setting}")
                out[name] = time.perf_counter() - start
                del running[name]
        time.sleep(0.05)
    shutil.rmtree(ROOT / "logs" / run_id, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per worker")
    parser.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bc_run", default=None,
                        help="also time train_rl fine-tuning this BC run and a test of it, alone and together")
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker)
    if args.bc_run and not (ROOT / "logs" / args.bc_run / "config.json").exists():
        raise SystemExit(f"--bc_run {args.bc_run}: no run at {ROOT / 'logs' / args.bc_run} "
                         "(train one with main.py train_bc)")
    results = {}
    print(f"fine-tuning steps/s (encoder on 2 observations + one cached-feature update), {os.cpu_count()} cores:")
    for name, setting in SETTINGS.items():
        alone = measure(setting, 1, args.seconds)[0]
        pair = measure(setting, 2, args.seconds)
        results[name] = {"alone": alone, "beside_another": pair}
        print(f"  {name:10s} alone {alone:7.1f}   two at once {pair[0]:7.1f} + {pair[1]:7.1f}   "
              f"each keeps {min(pair) / alone:.0%}")
    real = {}
    if args.bc_run:
        print(f"train_rl, 4,000 steps fine-tuning {args.bc_run} (wall seconds):")
        for name, setting in SETTINGS.items():
            if name == "1 thread":
                continue
            alone = {**time_commands(args.bc_run, setting, True, False),
                     **time_commands(args.bc_run, setting, False, True)}
            pair = time_commands(args.bc_run, setting, True, True)
            real[name] = {"alone": alone, "together": pair}
            print(f"  {name:10s} alone: train_rl {alone['train_rl_s']:5.1f} s, test {alone['test_s']:5.1f} s   "
                  f"started together: train_rl {pair['train_rl_s']:5.1f} s, test {pair['test_s']:5.1f} s")
    out = Path(__file__).parent / "results" / "two_processes.json"
    out.write_text(json.dumps({"cores": os.cpu_count(), "seconds": args.seconds, "steps_per_s": results,
                               "train_rl_4000_steps": real}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
