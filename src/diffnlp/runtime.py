"""Where and how code runs: the device, seeds and the CPU thread count."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def device() -> torch.device:
    """The best available device: cuda, then mps, then cpu.

    Setting the environment variable ``DIFFNLP_DEVICE`` (e.g. ``cpu``) overrides the choice;
    the notebook tests use it to run on the CPU everywhere.
    """
    forced = os.environ.get("DIFFNLP_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded the same way."""
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
