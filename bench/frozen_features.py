"""Do a BC run's fixed features hold what a recovery needs? A new actor on a BC run's frozen encoder, cloned from
other demonstrations.

    python bench/frozen_features.py ft_bc_strong_0_e100_ln1_dash1_avg0.9 ft_recovery_0   # then `test --shove 0.01`

BC-SAC fine-tuning keeps the BC encoder fixed (README, Design notes), so whatever the critic and actor learn off the
road they learn on features trained to imitate laps that hardly leave it. This clones the autopilot's actions of
DATASET (e.g. the strong laps recorded with the test's shoves: recovery demos) into a freshly initialised actor
reading BC_RUN's encoder, fixed, with train_bc's batch size, learning rate, epochs, augmentation and weight average.
If that actor recovers about as often as BC trained end to end on the same laps, the features are enough and the
fine-tuning's failure to recover is in what the critic learns; if it recovers about as rarely as BC_RUN, the fixed
features are the limit. The new run, logs/<BC_RUN>_head_<DATASET>, is a BC run `test` and Agent.load read.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import trange

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import demos  # noqa: E402
from bc import BCConfig  # noqa: E402
from env import EnvConfig  # noqa: E402
from networks import ActorCritic, ModelConfig, polyak_update  # noqa: E402
from replay_buffer import demo_replay  # noqa: E402
from runs import checkpoint_path, load_checkpoint, load_config, run_dir, save_checkpoint, save_config  # noqa: E402


def train_head(bc_run: str, dataset: str, seed: int = 0) -> Path:
    source = run_dir(bc_run)
    saved = load_config(source)
    config = BCConfig(**{**saved["train"], "dataset": dataset})
    env_config, model_config = EnvConfig(**saved["env"]), ModelConfig(**saved["model"])
    torch.manual_seed(seed)
    model = ActorCritic(env_config.obs_shape, model_config)
    fresh_actor = copy.deepcopy(model.actor.state_dict())
    model.load_state_dict(load_checkpoint(checkpoint_path(source))["model"])
    model.actor.load_state_dict(fresh_actor)  # the encoder (and critics) stay BC_RUN's
    model.encoder.requires_grad_(False)
    data = demo_replay(demos.load_named_dataset(dataset), env_config, config.gamma)
    optimizer = torch.optim.Adam(model.actor.parameters(), lr=config.lr)
    averaged = copy.deepcopy(model)
    rng = np.random.default_rng(seed)
    updates_per_epoch = max(1, len(data) // config.batch_size)
    for epoch in trange(1, config.epochs + 1, desc="epochs"):
        for _ in range(updates_per_epoch):
            batch = data.sample(config.batch_size, rng, config.gamma)
            with torch.no_grad():
                features = model.encoder(torch.as_tensor(batch["obs"]), config.augment_pad)
            mean, _ = model.actor(features)
            loss = F.mse_loss(model.actor.squash(mean), torch.as_tensor(batch["action"]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        polyak_update(averaged, model, 1.0 if epoch == 1 else 1.0 - config.weight_average)
    path = run_dir(f"{source.name}_head_{Path(dataset).name}", must_exist=False)
    save_config(path, {**saved, "train": asdict(config)})
    save_checkpoint(path, "head", {"model": averaged.state_dict(), "epoch": config.epochs})
    print(f"actor loss {loss.item():.4f}; test with  python main.py test --resume_run_id {path.name} --shove 0.01")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bc_run", help="the BC run whose encoder is kept")
    parser.add_argument("dataset", help="demonstrations the new actor clones")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_head(args.bc_run, args.dataset, args.seed)


if __name__ == "__main__":
    main()
