"""Beta schedules: shapes, dtypes, the formulas they discretise, and the SNR."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffnlp import GaussianDiffusion
from diffnlp.schedules import BETA_SCHEDULES, alphas_cumprod, betas_for_alpha_bar, make_betas, snr


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
@pytest.mark.parametrize("T", [2, 10, 1000])
def test_shapes_dtype_range(schedule, T):
    betas = make_betas(schedule, T)
    abar = alphas_cumprod(betas)
    assert betas.shape == (T,) and abar.shape == (T,)
    assert betas.dtype == torch.float32 and abar.dtype == torch.float32
    assert bool((betas > 0).all()) and bool((betas <= 0.999 + 1e-7).all())
    assert bool((abar > 0).all()) and bool((abar < 1).all())


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
def test_alphas_cumprod_strictly_decreasing(schedule):
    abar = alphas_cumprod(make_betas(schedule, 1000))
    assert bool((abar[1:] < abar[:-1]).all())


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
def test_alphas_cumprod_is_the_running_product(schedule):
    betas = make_betas(schedule, 1000)
    expected = np.cumprod(1.0 - betas.double().numpy())
    np.testing.assert_allclose(alphas_cumprod(betas).double().numpy(), expected, rtol=1e-4, atol=1e-9)


def test_linear_endpoints_and_spacing():
    betas = make_betas("linear", 1000).double().numpy()
    np.testing.assert_allclose(betas, np.linspace(1e-4, 0.02, 1000), rtol=1e-6)
    assert betas[0] == pytest.approx(1e-4, rel=1e-6)
    assert betas[-1] == pytest.approx(0.02, rel=1e-6)


def _cosine(s):
    return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


def _sqrt(s):
    return 1 - math.sqrt(s + 1e-4)


@pytest.mark.parametrize("schedule,abar_fn", [("cosine", _cosine), ("sqrt", _sqrt)])
@pytest.mark.parametrize("T", [10, 1000])
def test_continuous_schedules_discretise_their_formula(schedule, abar_fn, T):
    """beta_i = min(1 - abar((i+1)/T) / abar(i/T), 0.999), written out here without the package."""
    expected = np.array([min(1 - abar_fn((i + 1) / T) / abar_fn(i / T), 0.999) for i in range(T)])
    np.testing.assert_allclose(make_betas(schedule, T).double().numpy(), expected, rtol=1e-6, atol=1e-9)


def test_sqrt_schedule_alphas_cumprod_telescopes():
    """Away from the 0.999 cap, prod_{s<=t}(1 - beta_s) = abar((t+1)/T) / abar(0) for abar(s) = 1 - sqrt(s + 1e-4)."""
    T = 1000
    abar = alphas_cumprod(make_betas("sqrt", T)).double().numpy()
    t = np.arange(T - 1)  # the last beta is capped (abar(1) < 0)
    expected = (1 - np.sqrt((t + 1) / T + 1e-4)) / (1 - math.sqrt(1e-4))
    np.testing.assert_allclose(abar[:-1], expected, rtol=2e-4)
    # Diffusion-LM's schedule adds noise quickly: a fifth of the signal variance is gone after 5% of steps
    assert abar[49] < 0.8


def test_sqrt_schedule_last_beta_is_capped():
    assert float(make_betas("sqrt", 1000)[-1]) == pytest.approx(0.999, rel=1e-6)


def test_betas_for_alpha_bar_caps_at_max_beta():
    betas = betas_for_alpha_bar(lambda s: 1 - s, 4, max_beta=0.5)
    # 1 - abar((i+1)/4)/abar(i/4): 1/4, 1/3, 1/2, 1 -> capped at 0.5
    np.testing.assert_allclose(betas.numpy(), [0.25, 1 / 3, 0.5, 0.5], rtol=1e-6)
    assert betas.dtype == torch.float32


def test_cosine_starts_and_ends_like_glide():
    abar = alphas_cumprod(make_betas("cosine", 1000)).double().numpy()
    # abar_0 = abar(1/T)/abar(0), and abar decays to ~0 at T
    assert abar[0] == pytest.approx(_cosine(1e-3) / _cosine(0), rel=1e-6)
    assert abar[-1] < 1e-6
    assert abar[499] == pytest.approx(_cosine(0.5) / _cosine(0), rel=1e-4)


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
def test_snr_formula_and_monotone(schedule):
    d = GaussianDiffusion(1000, schedule)
    s = d.snr
    abar = d.alphas_cumprod
    torch.testing.assert_close(s, abar / (1 - abar))
    torch.testing.assert_close(snr(abar), s)
    assert bool((s[1:] < s[:-1]).all())
    assert bool((s > 0).all())


def test_snr_known_values():
    abar = torch.tensor([0.5, 0.8, 0.2])
    torch.testing.assert_close(snr(abar), torch.tensor([1.0, 4.0, 0.25]))


def test_diffusion_holds_its_schedule():
    d = GaussianDiffusion(50, "cosine")
    torch.testing.assert_close(d.betas, make_betas("cosine", 50))
    torch.testing.assert_close(d.alphas, 1 - d.betas)
    torch.testing.assert_close(d.alphas_cumprod, torch.cumprod(1 - d.betas, 0))
    assert "cosine" in repr(d) and "50" in repr(d)
