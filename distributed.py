"""Multi-process training with PyTorch's own engine: torch.distributed + DistributedDataParallel.

Launched by torchrun (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), every rank runs its
own environments and replay shard; DDP all-reduces (averages) the gradients, so all ranks keep identical
weights. A plain `python main.py ...` runs with world size 1 and no process group.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from errors import UserError

# A rank stuck in a collective (a peer hung) errors out after this. It must outlast rank 0's periodic
# evaluation, during which the other ranks wait; a peer that *dies* is caught by torchrun at once.
COLLECTIVE_TIMEOUT = timedelta(minutes=int(os.environ.get("BCSAC_COLLECTIVE_TIMEOUT_MIN", "30")))


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks CUDA when present; under torchrun each rank takes GPU `local_rank`."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine")
        if name == "cuda":
            name = f"cuda:{local_rank % torch.cuda.device_count()}"
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UserError(f"--device {name!r}: use cpu, cuda, cuda:N or auto")
    return torch.device(name)


def setup(device_name: str) -> DistContext:
    """Join the torchrun process group if launched by torchrun (gloo on CPU, NCCL on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size == 1:
        return DistContext(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


@contextmanager
def process_group(device_name: str) -> Iterator[DistContext]:
    """`setup`, then leave the group however the block ends; on success every rank meets first, so none leaves
    while a peer still works in it (after an error no rank waits: torchrun ends the job). Free the DDP-wrapped models
    inside the block: the test worker once kept them as module globals, alive until the interpreter's exit after the
    group was gone, and a rank aborted at exit about once in eight CI runs ("terminate called without an active
    exception")."""
    ctx = setup(device_name)
    try:
        yield ctx
        barrier(ctx)
    finally:
        if ctx.enabled and dist.is_initialized():
            dist.destroy_process_group()


def wrap(model: nn.Module, ctx: DistContext) -> SimpleNamespace:
    """Handles for the trained parts of an ActorCritic: DDP wrappers under torchrun, the modules otherwise.

    Each part is wrapped on its own because SAC runs them in separate forward/backward passes; DDP
    broadcasts rank 0's weights at wrap time, so the targets are re-synced after wrapping.
    """
    parts = {name: getattr(model, name) for name in ("encoder", "actor", "critic")}
    if ctx.enabled:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        for name, module in parts.items():
            if any(p.requires_grad for p in module.parameters()):
                parts[name] = DistributedDataParallel(module, device_ids=ids)
            else:  # a frozen part has no gradients to average; it only needs rank 0's weights
                for p in module.parameters():
                    dist.broadcast(p.data, src=0)
        model.sync_targets(1.0)
    return SimpleNamespace(**parts)


def average(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """In-place mean over ranks (for the few tensors DDP does not handle, e.g. the temperature's gradient)."""
    if ctx.enabled:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= ctx.world_size
    return value


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def broadcast_object(value, ctx: DistContext):
    """Rank 0's `value` on every rank (e.g. a timestamped run id)."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
