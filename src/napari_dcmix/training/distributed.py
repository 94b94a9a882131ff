"""Data-parallel training on torch.distributed: one process per GPU (NCCL) or CPU process (gloo).

``torchrun --nproc-per-node N -m napari_dcmix train …`` starts N copies of the CLI; each finds its
rank here, trains on its shard of the training sites with DistributedDataParallel, and every
decision (early stopping, the best checkpoint) is taken on values all-reduced across the ranks, so
the copies never disagree. Rank 0 alone prints and writes. A plain run is world size 1: no
process group, no communication, the same code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import DcmixError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, values: list[float], device: torch.device) -> list[float]:
        """Elementwise sum over the ranks (identity when alone)."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def gather(self, obj):
        """Every rank's ``obj`` in rank order (a list of one when alone)."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def world_from_env() -> DistContext:
    """The context torchrun describes in WORLD_SIZE/RANK/LOCAL_RANK (world size 1 without it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise DcmixError("WORLD_SIZE/RANK/LOCAL_RANK are not numbers; start data-parallel runs with torchrun") from None
    return DistContext(rank, world, local)


def setup(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun prepared (once per process) -> (context, this rank's device)."""
    ctx = world_from_env()
    if not ctx.active:
        return ctx, device
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ctx, device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
