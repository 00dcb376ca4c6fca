"""nnref on ``torch.distributed``: the process group ``torchrun`` asks for, and the few collectives the loop uses.

A job started by ``torchrun`` (its environment holds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) joins a process
group — gloo on the CPU, NCCL on CUDA with one GPU per rank (``cuda:LOCAL_RANK``).  Without ``torchrun``
everything here is the identity: one process, rank 0 of 1, no process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.rendezvous import rendezvous

from .config import TrainingError

__all__ = ["World", "launched_by_torchrun", "world_size_from_env", "init_world", "shard_range"]


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1")) if launched_by_torchrun() else 1


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous rows [start, end) of n that rank owns: sizes differ by at most one, in rank order."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


@dataclass
class World:
    """This process's place in the job: rank ``rank`` of ``size``; ``group`` is True inside a process group."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    group: bool = False
    device: torch.device = torch.device("cpu")  # where this rank's collectives run (NCCL: its GPU)

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the run log and the checkpoints."""
        return self.rank == 0

    def shard(self, n: int) -> slice:
        return slice(*shard_range(n, self.rank, self.size))

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``t`` over every rank (in place; ``t`` itself in one process)."""
        if self.group:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def cat(self, t: torch.Tensor) -> torch.Tensor:
        """The concatenation, in rank order, of every rank's ``t`` (first dimension may differ by rank)."""
        if not self.group:
            return t
        sizes = torch.tensor([t.shape[0]], device=t.device)
        all_sizes = [torch.zeros_like(sizes) for _ in range(self.size)]
        dist.all_gather(all_sizes, sizes)
        longest = int(max(s.item() for s in all_sizes))
        padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=t.device)
        padded[: t.shape[0]] = t
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[: int(s.item())] for p, s in zip(parts, all_sizes)])

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on any rank: one all-reduce, so every rank decides alike
        (a stop that one rank was asked for is a stop of the job, at the same step)."""
        if not self.group:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.group:
            dist.barrier()

    def close(self, finished: bool = False) -> None:
        """Leave the process group.  ``finished`` (every rank got here normally): wait for the others first, so no
        rank tears its group down while a peer's last collective still talks to it (gloo's worker threads then
        end the process with "terminate called without an active exception").  After an error there is no
        waiting: a peer may be gone."""
        if self.group and dist.is_initialized():
            if finished:
                dist.barrier()
            dist.destroy_process_group()
        self.group = False


def init_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group of a ``torchrun`` job (or stay alone without one); returns the world and this
    rank's device: ``cuda:LOCAL_RANK`` on CUDA.  Checks that hold for every rank run before joining, so a
    bad job stops on every rank with the same message instead of hanging."""
    if not launched_by_torchrun():
        return World(), device
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if per_node > torch.cuda.device_count():
            raise TrainingError(
                f"--device cuda with {per_node} processes per node, but this machine has "
                f"{torch.cuda.device_count()} GPU(s): use --nproc-per-node "
                f"{torch.cuda.device_count()} or --device cpu"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = timedelta(seconds=float(os.environ.get("NNREF_DIST_TIMEOUT", "300")))
    # torchrun's store outlives a restart of the group: without a prefix of its own, a restarted rank can read the
    # address a dead rank of the previous attempt left there and fail to connect ("Connection refused")
    store, rank, size = next(rendezvous("env://", rank, size, timeout=timeout))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"nnref/attempt-{attempt}", store)
    dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=timeout)
    return World(rank, size, local_rank, group=True, device=device), device
