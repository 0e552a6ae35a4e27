"""Lesson 02's exercises: each checker with its reference solution."""

from __future__ import annotations

import torch

from ...processes.gaussian import GaussianDiffusion
from ._verdict import NOT_ATTEMPTED, Verdict, compare, run_learner


def reference_posterior_mean(x_t: torch.Tensor, x0: torch.Tensor, abar_t: float, abar_prev: float) -> torch.Tensor:
    """mu = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t."""
    alpha_t = abar_t / abar_prev
    beta_t = 1 - alpha_t
    return abar_prev ** 0.5 * beta_t / (1 - abar_t) * x0 + alpha_t ** 0.5 * (1 - abar_prev) / (1 - abar_t) * x_t


def check_posterior_mean(fn) -> Verdict:
    """Exercise: the mean of q(x_{t-1} | x_t, x_0) from x_t, x_0, abar_t and abar_{t-1}."""
    g = torch.Generator().manual_seed(2)
    x_t, x0 = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g)
    d = GaussianDiffusion()
    for t in (10, 100, 900):
        got, err = run_learner(fn, x_t, x0, float(d.alphas_cumprod[t]), float(d.alphas_cumprod[t - 1]))
        if err or got is None:
            return err or NOT_ATTEMPTED
        v = compare(got, d.posterior(x_t, x0, t)[0], f"posterior mean at t={t}")
        if not v.correct:
            return v
    return Verdict("correct", "your posterior mean matches GaussianDiffusion.posterior at t = 10, 100, 900")


def reference_eps_from_v(x_t: torch.Tensor, v: torch.Tensor, abar_t: float) -> torch.Tensor:
    """eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v."""
    return (1 - abar_t) ** 0.5 * x_t + abar_t ** 0.5 * v


def check_eps_from_v(fn) -> Verdict:
    """Exercise: recover eps from x_t and a v-prediction."""
    g = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g)
    d = GaussianDiffusion()
    for t in (10, 500, 990):
        x_t = d.add_noise(x0, eps, t)
        v = d.velocity(x0, eps, t)
        got, err = run_learner(fn, x_t, v, float(d.alphas_cumprod[t]))
        if err or got is None:
            return err or NOT_ATTEMPTED
        verdict = compare(got, eps, f"eps at t={t}")
        if not verdict.correct:
            return verdict
    return Verdict("correct", "eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v recovered the noise exactly")
