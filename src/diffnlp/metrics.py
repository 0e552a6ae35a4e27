"""How good are the samples? Measures that need no trained judge, and one that does.

- ``sliced_wasserstein``: project both point sets onto random directions; in 1-D the
  Wasserstein-2 distance between equal-size samples is the RMS gap of the sorted values:

      SWD(X, Y) = sqrt( mean_theta mean_i (sort(X theta)_i - sort(Y theta)_i)^2 )

  Two finite samples of the *same* distribution are not at distance 0, so every SWD is read
  against its floor SWD(data, fresh data) at the same n.
- ``DigitsJudge``: a fixed logistic regression trained on the real training digits. Generated
  digits are scored by its mean confidence (max class probability), relative to its confidence
  on held-out real digits, and by each class's share of the samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_int, check_tensor


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, num_projections: int = 512, seed: int = 0) -> float:
    """Sliced Wasserstein-2 distance between two equal-size point sets (n, d)."""
    check_tensor("x", x, floating=True)
    check_tensor("y", y, floating=True)
    if x.ndim != 2 or y.ndim != 2 or x.shape != y.shape:
        raise ValueError("x and y must both have shape (n, d) and the same n; "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")
    num_projections = check_int("num_projections", num_projections, low=1)
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], num_projections, generator=g, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)  # unit directions
    px = torch.sort(x.detach().cpu().double() @ theta, dim=0).values
    py = torch.sort(y.detach().cpu().double() @ theta, dim=0).values
    return float(((px - py) ** 2).mean().sqrt())


def swd_mean(x: torch.Tensor, y: torch.Tensor, num_projections: int = 512, seeds=(0, 1, 2, 3, 4)) -> float:
    """The mean SWD over several projection seeds (the course's reported figure: 5 seeds)."""
    return float(np.mean([sliced_wasserstein(x, y, num_projections, seed=s) for s in seeds]))


@dataclass
class JudgeReport:
    confidence: float          # mean max-probability on the generated digits
    real_confidence: float     # the same on held-out real digits
    relative_confidence: float  # confidence / real_confidence
    class_shares: list[float]  # share of samples assigned to each class 0..9

    @property
    def min_share(self) -> float:
        return min(self.class_shares)

    def __str__(self) -> str:
        shares = " ".join(f"{i}:{s:.0%}" for i, s in enumerate(self.class_shares))
        return (f"judge confidence {self.confidence:.3f} vs {self.real_confidence:.3f} on real digits "
                f"({self.relative_confidence:.1%}); class shares {shares}")


class DigitsJudge:
    """A logistic regression on the real training digits, fixed by its seed and split."""

    def __init__(self, seed: int = 0):
        from sklearn.linear_model import LogisticRegression

        from .data.digits import load_digits, to_pixels

        x, y = load_digits("train", seed=seed)
        xt, yt = load_digits("test", seed=seed)
        self.classifier = LogisticRegression(max_iter=5000, C=1.0)
        self.classifier.fit(to_pixels(x) / 16.0, y.numpy())
        self.test_accuracy = float(self.classifier.score(to_pixels(xt) / 16.0, yt.numpy()))
        self.real_confidence = self.confidence(xt)

    def probabilities(self, images: torch.Tensor) -> np.ndarray:
        """Class probabilities (n, 10) for images in [-1, 1] shaped (n, 1, 8, 8) or (n, 64)."""
        from .data.digits import to_pixels

        check_tensor("images", images, floating=True, ndim_min=1)
        if images.shape[0] == 0 or images[0].numel() != 64:
            raise ValueError(f"images must be a non-empty batch of 8x8 digits, got shape {tuple(images.shape)}")
        return self.classifier.predict_proba(to_pixels(images) / 16.0)

    def confidence(self, images: torch.Tensor) -> float:
        return float(self.probabilities(images).max(axis=1).mean())

    def judge(self, images: torch.Tensor) -> JudgeReport:
        p = self.probabilities(images)
        conf = float(p.max(axis=1).mean())
        shares = np.bincount(p.argmax(axis=1), minlength=10) / len(p)
        return JudgeReport(conf, self.real_confidence, conf / self.real_confidence, shares.tolist())
