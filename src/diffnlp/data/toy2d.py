"""2-D point clouds: small distributions you can see whole.

Every cloud is scaled to roughly unit spread, so the same schedule suits them all. Sampling is
deterministic for a given seed (a NumPy ``Generator``), and returns a float32 tensor (n, 2).
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_choice, check_int

DATASETS = ("moons", "spiral", "ring", "mixture")

# The "mixture" cloud: 8 Gaussians on a circle. Its exact denoiser is known (diffnlp.evaluation.oracle).
MIXTURE_WEIGHTS = np.array([0.2, 0.05, 0.15, 0.1, 0.2, 0.05, 0.15, 0.1])
MIXTURE_STD = 0.1


def mixture_means() -> np.ndarray:
    """The 8 centres of the "mixture" cloud, on the unit circle scaled by 1.5."""
    angles = np.arange(8) * 2 * np.pi / 8
    return 1.5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_points(name: str, n: int, seed: int = 0, noise: float = 0.05) -> torch.Tensor:
    """n points of the named cloud ("moons", "spiral", "ring" or "mixture")."""
    check_choice("name", name, DATASETS)
    n = check_int("n", n, low=1)
    rng = np.random.default_rng(seed)
    if name == "moons":
        # two interleaved half circles (as scikit-learn's make_moons), centred and scaled
        k = rng.integers(0, 2, n)
        a = rng.uniform(0, np.pi, n)
        x = np.where(k == 0, np.cos(a), 1 - np.cos(a))
        y = np.where(k == 0, np.sin(a), 0.5 - np.sin(a))
        pts = np.stack([x - 0.5, y - 0.25], axis=1) * 1.2
        pts += noise * 1.2 * 2 * rng.standard_normal((n, 2))
    elif name == "spiral":
        r = np.sqrt(rng.uniform(0, 1, n))
        a = 3 * np.pi * r
        pts = 1.6 * np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
        pts += noise * rng.standard_normal((n, 2))
    elif name == "ring":
        a = rng.uniform(0, 2 * np.pi, n)
        pts = 1.3 * np.stack([np.cos(a), np.sin(a)], axis=1) + noise * rng.standard_normal((n, 2))
    else:
        k = rng.choice(8, size=n, p=MIXTURE_WEIGHTS)
        pts = mixture_means()[k] + MIXTURE_STD * rng.standard_normal((n, 2))
    return torch.as_tensor(pts, dtype=torch.float32)
