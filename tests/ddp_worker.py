"""Launched by tests/test_distributed.py under torchrun: a few DDP learner updates on rank-specific data.

Writes each rank's flattened weights to $OUT/rank<r>.pt. With FAIL_RANK=r, rank r raises mid-training.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import distributed  # noqa: E402
from networks import ActorCritic, ModelConfig  # noqa: E402
from rl import RLConfig, SACLearner  # noqa: E402

OBS_SHAPE = (2, 48, 48)


def train_and_save(ctx: distributed.DistContext) -> None:
    torch.manual_seed(ctx.rank)  # different initial weights: DDP must make them equal
    model = ActorCritic(OBS_SHAPE, ModelConfig(encoder="small", feature_dim=8, hidden_dim=16))
    train_encoder = os.environ.get("TRAIN_ENCODER", "1") == "1"
    learner = SACLearner(model, RLConfig(augment_pad=1, train_encoder=train_encoder), ctx.device, ctx)
    rng = np.random.default_rng(100 + ctx.rank)  # different data per rank
    for update in range(3):
        if update == 1 and os.environ.get("FAIL_RANK") == str(ctx.rank):
            raise RuntimeError(f"rank {ctx.rank} failing on purpose")
        n = 8
        batch = {"obs": rng.integers(0, 256, (n, *OBS_SHAPE), dtype=np.uint8),
                 "next_obs": rng.integers(0, 256, (n, *OBS_SHAPE), dtype=np.uint8),
                 "action": rng.uniform(0, 1, (n, 3)).astype(np.float32),
                 "reward": rng.normal(size=n).astype(np.float32),
                 "discount": np.full(n, 0.99, np.float32), "is_demo": np.arange(n) < 4, "off_track": np.zeros(n, bool),
                 "critic_only": np.zeros(n, bool), "mc_return": np.zeros(n, np.float32)}
        batch["bc_action"] = batch["action"]
        if not train_encoder:  # a fixed encoder: the replay holds its features
            batch["obs"], batch["next_obs"] = (rng.uniform(-1, 1, (n, 8)).astype(np.float32) for _ in range(2))
        learner.update(batch, bc_weight=1.0)
    weights = torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.dtype.is_floating_point])
    torch.save({"weights": weights, "alpha": learner.alpha, "world_size": ctx.world_size},
               Path(os.environ["OUT"]) / f"rank{ctx.rank}.pt")


if __name__ == "__main__":
    with distributed.process_group("cpu") as ctx:
        train_and_save(ctx)
