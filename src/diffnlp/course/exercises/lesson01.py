"""Lesson 01's exercises: each checker with its reference solution."""

from __future__ import annotations

import torch

from ...processes.gaussian import GaussianDiffusion
from ._verdict import NOT_ATTEMPTED, Verdict, compare, run_learner


def reference_add_noise(x0: torch.Tensor, noise: torch.Tensor, abar_t: float) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
    return abar_t ** 0.5 * x0 + (1 - abar_t) ** 0.5 * noise


def check_add_noise(fn) -> Verdict:
    """Exercise: write x_t from x_0, eps and abar_t (a float)."""
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g)
    d = GaussianDiffusion()
    for t in (0, 250, 999):
        got, err = run_learner(fn, x0, noise, float(d.alphas_cumprod[t]))
        if err or got is None:
            return err or NOT_ATTEMPTED
        v = compare(got, d.add_noise(x0, noise, t), f"x_t at t={t}")
        if not v.correct:
            return v
    return Verdict("correct", "x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps at t = 0, 250 and 999")


def reference_half_signal_t(diffusion: GaussianDiffusion) -> int:
    """The first t at which abar_t <= 0.5: half the signal's variance is gone."""
    return int((diffusion.alphas_cumprod <= 0.5).nonzero()[0])


def check_half_signal_t(t, schedule: str = "linear") -> Verdict:
    """Exercise: at which timestep does abar_t first drop to 0.5 or below?"""
    if t is None:
        return NOT_ATTEMPTED
    if isinstance(t, torch.Tensor):
        t = t.item()
    if not isinstance(t, int) or isinstance(t, bool):
        return Verdict("incorrect", f"give an int timestep, got {type(t).__name__} {t!r}")
    want = reference_half_signal_t(GaussianDiffusion(beta_schedule=schedule))
    if t == want:
        return Verdict("correct", f"abar_{t} is the first value <= 0.5 under the {schedule} schedule")
    hint = "later" if t < want else "earlier"
    return Verdict("incorrect", f"t={t} is not it: look {hint} (compare diffusion.alphas_cumprod with 0.5)")
