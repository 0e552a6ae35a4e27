"""scikit-learn's 8x8 handwritten digits (1797 images; they ship inside scikit-learn).

Pixels 0..16 are scaled to [-1, 1], the range Gaussian diffusion expects. The split into
train and held-out digits is fixed by ``seed``.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_float


def load_digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0):
    """Return ``(images, labels)``: float32 (n, 1, 8, 8) in [-1, 1] and int64 (n,).

    ``split`` is "train", "test" or "all".
    """
    from sklearn.datasets import load_digits as _sk_load

    from .._checks import check_choice

    check_choice("split", split, ("train", "test", "all"))
    check_float("test_fraction", test_fraction, 0.0, 0.9)
    d = _sk_load()
    x = d.images.astype(np.float32) / 8.0 - 1.0
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    idx = {"test": order[:n_test], "train": order[n_test:], "all": np.arange(len(y))}[split]
    return torch.from_numpy(x[idx]).unsqueeze(1), torch.from_numpy(y[idx])


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """Map images in [-1, 1] back to scikit-learn's 0..16 scale, flattened to (n, 64)."""
    x = images.detach().float().cpu().clamp(-1, 1)
    return ((x + 1.0) * 8.0).reshape(x.shape[0], -1).numpy()
