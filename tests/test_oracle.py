"""Samplers driven by the exact mixture denoiser must reproduce the data distribution; the exact
denoiser itself must agree with brute-force Bayes (E[x0 | x_t] by integration on a grid)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from diffnlp import GaussianDiffusion
from diffnlp.data.toy2d import MIXTURE_STD, MIXTURE_WEIGHTS, mixture_means
from diffnlp.evaluation.oracle import GaussianMixtureDenoiser
from diffnlp.processes.gaussian import PREDICTION_TYPES

# A 1-D mixture: three well-separated components with unequal weights and widths.
MEANS_1D = np.array([[-2.0], [0.0], [2.0]])
STDS_1D = np.array([0.25, 0.35, 0.2])
WEIGHTS_1D = np.array([0.5, 0.3, 0.2])
N = 4000


def draw(prediction_type, steps, method="ddpm", eta=0.0, schedule="linear", means=MEANS_1D, stds=STDS_1D,
         weights=WEIGHTS_1D, n=N, seed=0):
    d = GaussianDiffusion(1000, schedule, prediction_type)
    oracle = GaussianMixtureDenoiser(d, means, stds, weights)
    x = d.sample(oracle, (n, means.shape[1]), steps, method=method, eta=eta,
                              generator=torch.Generator().manual_seed(seed)).run()
    assert x.shape == (n, means.shape[1]) and bool(torch.isfinite(x).all())
    return x.double().numpy()


def check_mixture(x, means, stds, weights, mean_z=4.0, std_rel=None):
    """Nearest-mean assignment; chi-square test of the counts; each component's mean within mean_z SEs."""
    k = ((x[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    counts = np.bincount(k, minlength=len(weights))
    p = stats.chisquare(counts, weights * len(x)).pvalue
    assert p > 1e-3, f"component counts {counts.tolist()} do not match weights {weights.tolist()} (p={p:.2g})"
    for j in range(len(weights)):
        xs = x[k == j]
        se = stds[j] / math.sqrt(len(xs))
        z = np.abs(xs.mean(0) - means[j]) / se
        assert z.max() < mean_z, f"component {j}: mean {xs.mean(0)} vs {means[j]} ({z.max():.1f} SE)"
        if std_rel is not None:
            ratio = (xs - means[j]).std() / stds[j]
            assert abs(ratio - 1) < std_rel, f"component {j}: std ratio {ratio:.3f}"


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_ddpm_1000_steps_reproduces_the_mixture(prediction_type):
    x = draw(prediction_type, 1000)
    check_mixture(x, MEANS_1D, STDS_1D, WEIGHTS_1D, std_rel=0.06)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_ddpm_100_steps_reproduces_the_mixture(prediction_type):
    x = draw(prediction_type, 100)
    check_mixture(x, MEANS_1D, STDS_1D, WEIGHTS_1D)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_ddim_100_steps_reproduces_the_mixture(prediction_type):
    x = draw(prediction_type, 100, method="ddim", eta=0.0)
    check_mixture(x, MEANS_1D, STDS_1D, WEIGHTS_1D)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_on_the_2d_course_mixture(schedule):
    """The "mixture" point cloud of lesson 01 (8 components, weights 0.05..0.2), DDIM with 100 steps."""
    means, stds = mixture_means(), np.full(8, MIXTURE_STD)
    x = draw("epsilon", 100, method="ddim", schedule=schedule, means=means, stds=stds, weights=MIXTURE_WEIGHTS)
    check_mixture(x, means, stds, MIXTURE_WEIGHTS)


def test_ddim_eta1_reproduces_the_mixture():
    x = draw("v_prediction", 100, method="ddim", eta=1.0, schedule="cosine")
    check_mixture(x, MEANS_1D, STDS_1D, WEIGHTS_1D)


def test_the_mixture_check_has_power():
    """Samples of a mixture with the weights permuted fail the chi-square test against the true weights."""
    x = draw("epsilon", 100, method="ddim", weights=WEIGHTS_1D[[1, 2, 0]])
    with pytest.raises(AssertionError, match="do not match weights"):
        check_mixture(x, MEANS_1D, STDS_1D, WEIGHTS_1D)
    shifted = draw("epsilon", 100, method="ddim", means=MEANS_1D + 0.05)
    with pytest.raises(AssertionError, match="SE"):
        check_mixture(shifted, MEANS_1D, STDS_1D, WEIGHTS_1D)


# ------------------------------------------------------------------------------------------ one Gaussian
def linear_chain(d, steps, mu, s, ddpm):
    """For data N(mu, s^2) the exact denoiser is affine, E[x0|x_t] = mu + g (x_t - sqrt(abar) mu), so each
    sampler step is affine in x_t plus independent noise: x_s = A x_t + B + sqrt(V) z. Returns the final
    (A, B, V) of x_0 = A x_T + B + noise of variance V, composed step by step in float64."""
    abar = d.alphas_cumprod.double().numpy()
    r = 1000 // steps
    A, B, V = 1.0, 0.0, 0.0
    for t in range(r * (steps - 1), -1, -r):
        a_t, a_s = abar[t], (abar[t - r] if t - r >= 0 else 1.0)
        g = math.sqrt(a_t) * s * s / (a_t * s * s + 1 - a_t)
        x0_a, x0_b = g, mu - g * math.sqrt(a_t) * mu  # x0_hat = x0_a x_t + x0_b
        if ddpm:
            beta = 1 - a_t / a_s
            c0, ct = math.sqrt(a_s) * beta / (1 - a_t), math.sqrt(a_t / a_s) * (1 - a_s) / (1 - a_t)
            step_a, step_b, step_v = ct + c0 * x0_a, c0 * x0_b, ((1 - a_s) / (1 - a_t) * beta if t > 0 else 0.0)
        else:  # DDIM, eta = 0: x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s) (x_t - sqrt(a_t) x0_hat) / sqrt(1 - a_t)
            k = math.sqrt((1 - a_s) / (1 - a_t))
            step_a = math.sqrt(a_s) * x0_a + k * (1 - math.sqrt(a_t) * x0_a)
            step_b = math.sqrt(a_s) * x0_b - k * math.sqrt(a_t) * x0_b
            step_v = 0.0
        A, B, V = step_a * A, step_a * B + step_b, step_a**2 * V + step_v
    return A, B, V


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [10, 100])
def test_ddim_on_one_gaussian_is_the_exact_affine_map(schedule, steps):
    """DDIM with eta = 0 is deterministic: each sample is A x_T + B, x_T the generator's first draw."""
    d = GaussianDiffusion(1000, schedule, "epsilon")
    mu, s = 0.8, 0.3
    oracle = GaussianMixtureDenoiser(d, [[mu]], [s], [1.0])
    traj = list(d.sample(oracle, (256, 1), steps, method="ddim", generator=torch.Generator().manual_seed(0)))
    A, B, _ = linear_chain(d, steps, mu, s, ddpm=False)
    expected = A * traj[0].double() + B
    torch.testing.assert_close(traj[-1].double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("steps", [100, 1000])
def test_ddpm_on_one_gaussian_has_the_variance_of_the_affine_chain(steps):
    """DDPM with the posterior ("fixed_small") variance under-disperses slightly, by a known amount:
    the sample variance must equal the composed chain's A^2 + V (x_T ~ N(0, 1)), not just s^2."""
    d = GaussianDiffusion(1000, "linear", "sample")
    mu, s, n = -0.5, 0.1, 10000
    x = draw("sample", steps, means=np.array([[mu]]), stds=np.array([s]), weights=np.array([1.0]), n=n)[:, 0]
    A, B, V = linear_chain(d, steps, mu, s, ddpm=True)
    var = A * A + V
    assert abs(x.mean() - B) < 4 * math.sqrt(var / n)
    assert abs(x.var() - var) < 4 * var * math.sqrt(2 / n)
    # the check has power: the naive variance s^2 lies well outside the tolerance
    assert abs(s * s - var) > 4 * var * math.sqrt(2 / n)


# ------------------------------------------------------------------------------------------ the oracle itself
@pytest.mark.parametrize("schedule", ["linear", "cosine", "sqrt"])
def test_posterior_mean_matches_integration_on_a_grid(schedule):
    """E[x0 | x_t] = int x0 p(x0) N(x_t; sqrt(abar) x0, 1 - abar) dx0 / int p(x0) N(...) dx0."""
    d = GaussianDiffusion(1000, schedule)
    oracle = GaussianMixtureDenoiser(d, MEANS_1D, STDS_1D, WEIGHTS_1D)
    grid = np.linspace(-5, 5, 200_001)
    prior = sum(w * stats.norm.pdf(grid, m[0], s) for m, s, w in zip(MEANS_1D, STDS_1D, WEIGHTS_1D, strict=True))
    x_t = np.linspace(-3, 3, 13)
    for t in (0, 10, 100, 500, 999):
        abar = float(d.alphas_cumprod.double()[t])
        loglik = -0.5 * (x_t[:, None] - math.sqrt(abar) * grid[None]) ** 2 / (1 - abar)
        w = prior[None] * np.exp(loglik - loglik.max(1, keepdims=True))
        expected = (w * grid[None]).sum(1) / w.sum(1)
        got = oracle.posterior_mean(torch.tensor(x_t[:, None]), torch.full((len(x_t),), t))[:, 0].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=f"t={t}")


def test_posterior_mean_monte_carlo_2d():
    """E[x0 | x_t] by self-normalised importance sampling: x0 ~ p(x0), weights N(x_t; sqrt(abar) x0, 1 - abar)."""
    d = GaussianDiffusion(1000, "cosine")
    means, stds = mixture_means(), np.full(8, MIXTURE_STD)
    oracle = GaussianMixtureDenoiser(d, means, stds, MIXTURE_WEIGHTS)
    rng = np.random.default_rng(0)
    m = 400_000
    k = rng.choice(8, size=m, p=MIXTURE_WEIGHTS)
    x0 = means[k] + MIXTURE_STD * rng.standard_normal((m, 2))
    x_t = np.array([[0.3, -0.2], [1.0, 1.0], [-1.2, 0.4]])
    t = 600
    abar = float(d.alphas_cumprod.double()[t])
    for xt in x_t:
        logw = -0.5 * ((xt - math.sqrt(abar) * x0) ** 2).sum(1) / (1 - abar)
        w = np.exp(logw - logw.max())
        est = (w[:, None] * x0).sum(0) / w.sum()
        got = oracle.posterior_mean(torch.tensor(xt[None]), torch.tensor([t]))[0].numpy()
        np.testing.assert_allclose(got, est, atol=0.01, err_msg=f"x_t={xt}")


def test_single_component_posterior_mean_closed_form():
    d = GaussianDiffusion(1000, "linear")
    mu, s = np.array([0.5, -1.0]), 0.4
    oracle = GaussianMixtureDenoiser(d, mu[None], [s], [1.0])
    x_t = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.tensor([0, 5, 50, 300, 700, 999])
    abar = d.alphas_cumprod.double()[t][:, None]
    expected = torch.tensor(mu) + abar.sqrt() * s**2 / (abar * s**2 + 1 - abar) * (x_t - abar.sqrt() * torch.tensor(mu))
    torch.testing.assert_close(oracle.posterior_mean(x_t, t), expected)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_oracle_output_is_the_target_of_its_prediction_type(prediction_type):
    d = GaussianDiffusion(1000, "cosine", prediction_type)
    oracle = GaussianMixtureDenoiser(d, MEANS_1D, STDS_1D, WEIGHTS_1D)
    x_t = torch.linspace(-3, 3, 9, dtype=torch.float64)[:, None]
    t = torch.tensor([0, 1, 10, 100, 300, 500, 700, 900, 990])
    out = oracle(x_t, t)
    assert out.dtype == x_t.dtype and out.shape == x_t.shape
    x0_hat, _ = d.split_prediction(out, x_t, t)
    torch.testing.assert_close(x0_hat, oracle.posterior_mean(x_t, t), rtol=1e-6, atol=1e-6)
    # float32 in, float32 out
    assert oracle(x_t.float(), t).dtype == torch.float32


def test_oracle_accepts_a_scalar_std_and_registers_buffers():
    d = GaussianDiffusion(1000)
    oracle = GaussianMixtureDenoiser(d, [[0.0, 0.0], [1.0, 1.0]], 0.2, [0.25, 0.75])
    assert oracle.stds.tolist() == [0.2, 0.2]
    assert set(dict(oracle.named_buffers())) == {"means", "stds", "weights"}
    assert list(oracle.parameters()) == []
