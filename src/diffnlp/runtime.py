"""Where and how code runs: the device, seeds and the CPU thread count."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager

import numpy as np
import torch


def device() -> torch.device:
    """The device the course runs on: cuda when there is one, otherwise the CPU.

    Apple's ``mps`` is used only when asked for (``DIFFNLP_DEVICE=mps``). The course's models have about
    a million parameters: at that size a step is dominated by kernel launches, not arithmetic, and
    on a laptop the CPU is as fast as MPS or faster; MPS also has no float64 (the package keeps float64
    on the CPU, so it would work, but nothing is gained). A CUDA GPU does speed up training at batch 64.

    Setting the environment variable ``DIFFNLP_DEVICE`` (e.g. ``cpu``, ``mps``, ``cuda:1``) overrides the
    choice; the notebook tests use it to run on the CPU everywhere.
    """
    forced = os.environ.get("DIFFNLP_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch's global RNG; return a CPU ``torch.Generator`` seeded with ``seed``.

    The package draws every random number it needs from a generator it is given, so the global seeds
    only matter for code outside it (and for a model's initial weights)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def set_threads(n: int | None = None) -> int:
    """Fix torch's CPU thread count (``DIFFNLP_THREADS`` or ``n``, default 2), so timings and
    float results do not depend on how many cores a machine has."""
    n = int(os.environ.get("DIFFNLP_THREADS", n or 2))
    torch.set_num_threads(n)
    return n


@contextmanager
def threads(n: int):
    """Run a block with torch on exactly ``n`` CPU threads (whatever ``DIFFNLP_THREADS`` says), then restore
    the count. Timing small models uses one thread: a second one hardly speeds up a batch-1 step, and when
    another program keeps a core busy, every parallel step waits for the thread that shares that core
    (measured here: an AR story takes 25 ms on 1 or 2 idle threads, 25 ms on 1 thread beside a busy
    process, and 400-600 ms on 2)."""
    from ._checks import check_int

    check_int("n", n, low=1)
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)


def accum_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype for exact sums and probability tables on ``device``: float64 on the CPU, float32 elsewhere.

    The package's one device rule: float64 lives on the CPU only (MPS has none, and a GPU is slow at it);
    a float64 sum of values computed on a GPU is taken after moving them to the CPU."""
    return torch.float64 if torch.device(device).type == "cpu" else torch.float32
