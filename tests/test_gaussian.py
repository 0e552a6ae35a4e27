"""Every formula of diffnlp.processes.gaussian against an independent derivation: closed form vs the
iterated chain, posterior vs Bayes' rule, parameterisation round trips, score, loss, sampling."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from diffnlp import GaussianDiffusion
from diffnlp.evaluation.oracle import GaussianMixtureDenoiser
from diffnlp.processes.gaussian import PREDICTION_TYPES
from diffnlp.schedules import BETA_SCHEDULES

T = 1000
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)
_CACHE: dict = {}


def diffusion(schedule: str = "linear", prediction_type: str = "epsilon", T: int = T) -> GaussianDiffusion:
    key = (schedule, prediction_type, T)
    if key not in _CACHE:
        _CACHE[key] = GaussianDiffusion(T, schedule, prediction_type)
    return _CACHE[key]


def abar_table(d: GaussianDiffusion) -> np.ndarray:
    """abar_t in float64, with abar_{-1} = 1 at index 0 (so abar_t is at index t + 1)."""
    return np.concatenate([[1.0], d.alphas_cumprod.double().numpy()])


def randn(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------------------------------ forward process
@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
def test_add_noise_closed_form(schedule):
    d = diffusion(schedule)
    x0, eps = randn((5, 3), 0), randn((5, 3), 1)
    t = torch.tensor([0, 1, 250, 998, 999])
    abar = d.alphas_cumprod.double()[t][:, None]
    expected = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    torch.testing.assert_close(d.add_noise(x0, eps, t), expected)
    # an int timestep applies to every row
    torch.testing.assert_close(d.add_noise(x0, eps, 250), abar[2].sqrt() * x0 + (1 - abar[2]).sqrt() * eps)


def test_add_noise_keeps_shape_dtype_and_broadcasts_per_row():
    d = diffusion()
    x0 = randn((4, 1, 8, 8), 0, torch.float32)
    eps = randn((4, 1, 8, 8), 1, torch.float32)
    out = d.add_noise(x0, eps, torch.tensor([0, 10, 100, 999]))
    assert out.shape == x0.shape and out.dtype == torch.float32
    a = float(d.alphas_cumprod[10])
    torch.testing.assert_close(out[1], math.sqrt(a) * x0[1] + math.sqrt(1 - a) * eps[1])


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
def test_chain_variance_is_one_minus_alphas_cumprod(schedule):
    """Brute force product of the per-step affine maps x_s = sqrt(1-b_s) x_{s-1} + sqrt(b_s) eps_s:
    the coefficient of x0 is prod sqrt(1-b_s), the noise variance sum_s b_s prod_{r>s} (1-b_r)."""
    d = diffusion(schedule)
    b = d.betas.double().numpy()
    mean_coef, var = 1.0, 0.0
    mean_coefs, variances = [], []
    for s in range(T):  # iterate the affine maps one at a time
        mean_coef = math.sqrt(1 - b[s]) * mean_coef
        var = (1 - b[s]) * var + b[s]
        mean_coefs.append(mean_coef)
        variances.append(var)
    abar = d.alphas_cumprod.double().numpy()
    np.testing.assert_allclose(np.array(mean_coefs) ** 2, abar, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(np.array(variances), 1 - abar, rtol=1e-5, atol=5e-7)  # float32 abar


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
@pytest.mark.parametrize("t", [0, 1, 37, 500, 999])
def test_add_noise_equals_the_iterated_chain_on_the_same_draws(schedule, t):
    """Replay q_sample_chain's draws eps_0..eps_t: the chain's x_t is sqrt(abar_t) x0 + sum_s c_s eps_s,
    so add_noise with eps = sum_s c_s eps_s / sqrt(sum_s c_s^2) must give the same point."""
    d = diffusion(schedule)
    x0 = randn((64, 2), 3)
    chain = d.q_sample_chain(x0, t, generator=torch.Generator().manual_seed(11))
    g = torch.Generator().manual_seed(11)
    b = d.betas.double().numpy()
    combined = torch.zeros_like(x0)
    total_var = 0.0
    for s in range(t + 1):
        eps_s = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
        c = math.sqrt(b[s]) * math.prod(math.sqrt(1 - b[r]) for r in range(s + 1, t + 1))
        combined += c * eps_s
        total_var += c * c
    eps = combined / math.sqrt(total_var)
    torch.testing.assert_close(d.add_noise(x0, eps, t), chain, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("schedule,t", [("linear", 300), ("cosine", 80), ("sqrt", 20)])
def test_chain_statistics_match_closed_form(schedule, t):
    """Many independent chains: their mean and variance are those of q(x_t | x_0)."""
    d = diffusion(schedule)
    n = 20000
    x0 = torch.full((n, 1), 1.5, dtype=torch.float64)
    xs = d.q_sample_chain(x0, t, generator=torch.Generator().manual_seed(0)).squeeze(1).numpy()
    abar = float(d.alphas_cumprod[t])
    mean, var = math.sqrt(abar) * 1.5, 1 - abar
    assert abs(xs.mean() - mean) < 4 * math.sqrt(var / n)
    assert abs(xs.var() - var) < 4 * var * math.sqrt(2 / n)
    closed = d.add_noise(x0, randn((n, 1), 1), t).squeeze(1).numpy()
    assert stats.ks_2samp(xs, closed).pvalue > 1e-3


def test_chain_statistics_can_detect_a_wrong_timestep():
    """The statistical comparison above has power: t and t+40 are told apart."""
    d = diffusion("linear")
    x0 = torch.full((20000, 1), 1.5, dtype=torch.float64)
    xs = d.q_sample_chain(x0, 300, generator=torch.Generator().manual_seed(0)).squeeze(1).numpy()
    closed = d.add_noise(x0, randn((20000, 1), 1), 340).squeeze(1).numpy()
    assert stats.ks_2samp(xs, closed).pvalue < 1e-3


# ------------------------------------------------------------------------------------------ posterior
def bayes_posterior(x_t, x0, abar_t, abar_s):
    """q(x_s | x_t, x_0) proportional to q(x_t | x_s) q(x_s | x_0), a product of two Gaussians in x_s:
    N(x_t; sqrt(a) x_s, 1 - a) with a = abar_t / abar_s, and N(x_s; sqrt(abar_s) x0, 1 - abar_s)."""
    a = abar_t / abar_s
    prec = 1 / (1 - abar_s) + a / (1 - a)
    var = 1 / prec
    mean = var * (math.sqrt(abar_s) * x0 / (1 - abar_s) + math.sqrt(a) * x_t / (1 - a))
    return mean, var


@st.composite
def timestep_pairs(draw):
    t = draw(st.integers(1, T - 1))
    s = draw(st.integers(-1, t - 1))
    return t, s


@PROPERTY
@given(schedule=st.sampled_from(BETA_SCHEDULES), ts=timestep_pairs(), seed=st.integers(0, 2**16))
def test_posterior_is_bayes_rule(schedule, ts, seed):
    t, s = ts
    d = diffusion(schedule)
    x_t, x0 = randn((3, 2), seed), randn((3, 2), seed + 1)
    tt = torch.full((3,), t)
    mean, var = d.posterior(x_t, x0, tt, torch.full((3,), s))
    tab = abar_table(d)
    if s == -1:
        exp_mean, exp_var = x0.numpy(), np.zeros((3, 2))
    else:
        exp_mean, exp_var = bayes_posterior(x_t.numpy(), x0.numpy(), tab[t + 1], tab[s + 1])
        exp_var = np.broadcast_to(exp_var, (3, 2))
    np.testing.assert_allclose(mean.numpy(), exp_mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(var.numpy(), exp_var, rtol=1e-6, atol=1e-12)
    assert var.shape == x_t.shape


def test_posterior_default_prev_is_t_minus_one_and_int_prev_works():
    d = diffusion("cosine")
    x_t, x0 = randn((4, 3), 0), randn((4, 3), 1)
    t = torch.tensor([1, 5, 500, 999])
    m1, v1 = d.posterior(x_t, x0, t)
    m2, v2 = d.posterior(x_t, x0, t, t - 1)
    torch.testing.assert_close(m1, m2)
    torch.testing.assert_close(v1, v2)
    m3, v3 = d.posterior(x_t, x0, 700, 680)
    m4, v4 = d.posterior(x_t, x0, torch.full((4,), 700), torch.full((4,), 680))
    torch.testing.assert_close(m3, m4)
    torch.testing.assert_close(v3, v4)


def test_posterior_mixed_rows_including_s_minus_one():
    """Each row has its own (t, s); rows with s = -1 (and t = 0 by default) return x0 with variance 0."""
    d = diffusion("linear")
    x_t, x0 = randn((4, 2), 5), randn((4, 2), 6)
    t = torch.tensor([0, 20, 999, 40])
    s = torch.tensor([-1, -1, 979, 0])
    mean, var = d.posterior(x_t, x0, t, s)
    tab = abar_table(d)
    torch.testing.assert_close(mean[:2], x0[:2])
    assert float(var[:2].abs().max()) == 0.0
    for i in (2, 3):
        m, v = bayes_posterior(x_t[i].numpy(), x0[i].numpy(), tab[int(t[i]) + 1], tab[int(s[i]) + 1])
        np.testing.assert_allclose(mean[i].numpy(), m, rtol=1e-6)
        np.testing.assert_allclose(var[i].numpy(), v, rtol=1e-6)
    m0, v0 = d.posterior(x_t[:1], x0[:1], torch.tensor([0]))
    torch.testing.assert_close(m0, x0[:1])
    assert float(v0.abs().max()) == 0.0


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
@pytest.mark.parametrize("t,s", [(5, 4), (20, 0), (500, 480), (999, 979), (300, 1)])
def test_posterior_matches_numerical_integration(schedule, t, s):
    """Normalise q(x_t | x_s) q(x_s | x_0) on a fine grid of x_s and integrate its mean and variance."""
    d = diffusion(schedule)
    tab = abar_table(d)
    abar_t, abar_s = tab[t + 1], tab[s + 1]
    a = abar_t / abar_s
    x0, x_t = 0.7, -0.4
    grid = np.linspace(-6, 6, 400_001)
    logp = (-0.5 * (x_t - math.sqrt(a) * grid) ** 2 / (1 - a)
            - 0.5 * (grid - math.sqrt(abar_s) * x0) ** 2 / (1 - abar_s))
    w = np.exp(logp - logp.max())
    w /= w.sum()
    num_mean = float((w * grid).sum())
    num_var = float((w * (grid - num_mean) ** 2).sum())
    mean, var = d.posterior(torch.tensor([[x_t]], dtype=torch.float64), torch.tensor([[x0]], dtype=torch.float64),
                            torch.tensor([t]), torch.tensor([s]))
    assert float(mean) == pytest.approx(num_mean, abs=1e-5)
    assert float(var) == pytest.approx(num_var, rel=1e-3)


# ------------------------------------------------------------------------------------------ parameterisations
@PROPERTY
@given(prediction_type=st.sampled_from(PREDICTION_TYPES), schedule=st.sampled_from(BETA_SCHEDULES),
       t=st.integers(0, T - 1), seed=st.integers(0, 2**16))
def test_parameterisations_round_trip(prediction_type, schedule, t, seed):
    d = diffusion(schedule, prediction_type)
    x0, eps = randn((4, 3), seed), randn((4, 3), seed + 1)
    x_t = d.add_noise(x0, eps, t)
    abar = float(d.alphas_cumprod[t])
    target = d.target(x0, eps, t)
    # the target of each prediction type, written out independently
    v = math.sqrt(abar) * eps - math.sqrt(1 - abar) * x0
    expected = {"epsilon": eps, "sample": x0, "v_prediction": v}[prediction_type]
    torch.testing.assert_close(target, expected)
    torch.testing.assert_close(d.velocity(x0, eps, t), v)
    # split_prediction inverts the target
    x0_hat, eps_hat = d.split_prediction(target, x_t, t)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-6, atol=1e-6)
    # and the single conversions
    torch.testing.assert_close(d.predict_x0(x_t, eps, t), x0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(d.predict_epsilon(x_t, x0, t), eps, rtol=1e-6, atol=1e-6)
    # v's inverse formulas: x0 = sqrt(abar) x_t - sqrt(1-abar) v, eps = sqrt(1-abar) x_t + sqrt(abar) v
    torch.testing.assert_close(math.sqrt(abar) * x_t - math.sqrt(1 - abar) * v, x0, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(math.sqrt(1 - abar) * x_t + math.sqrt(abar) * v, eps, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_split_prediction_float32_moderate_t(prediction_type):
    d = diffusion("linear", prediction_type)
    x0, eps = randn((8, 2), 0, torch.float32), randn((8, 2), 1, torch.float32)
    t = torch.tensor([0, 3, 50, 200, 400, 600, 800, 900])
    x_t = d.add_noise(x0, eps, t)
    x0_hat, eps_hat = d.split_prediction(d.target(x0, eps, t), x_t, t)
    assert x0_hat.dtype == torch.float32
    torch.testing.assert_close(x0_hat, x0, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
def test_score_is_minus_eps_over_sigma(prediction_type, schedule):
    d = diffusion(schedule, prediction_type)
    x0, eps = randn((6, 2), 0), randn((6, 2), 1)
    t = torch.tensor([0, 1, 100, 500, 900, 999])
    x_t = d.add_noise(x0, eps, t)
    sigma = (1 - d.alphas_cumprod.double()[t]).sqrt()[:, None]
    torch.testing.assert_close(d.score(d.target(x0, eps, t), x_t, t), -eps / sigma, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_score_of_exact_denoiser_is_gradient_of_log_density(prediction_type):
    """For mixture data, q_t is a known mixture; the score read off the exact denoiser must equal
    d/dx log q_t(x), computed by central finite differences."""
    d = diffusion("linear", prediction_type)
    means, stds, weights = [[-1.0], [0.5], [2.0]], [0.3, 0.5, 0.2], [0.3, 0.5, 0.2]
    oracle = GaussianMixtureDenoiser(d, means, stds, weights)
    mu, sd, w = np.array(means)[:, 0], np.array(stds), np.array(weights)

    def log_q(x, abar):
        var = abar * sd**2 + 1 - abar
        comp = np.log(w) - 0.5 * (x[:, None] - math.sqrt(abar) * mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var)
        return np.logaddexp.reduce(comp, axis=1)

    x = np.linspace(-2.5, 2.5, 11)
    for t in (0, 30, 200, 600, 999):
        abar = float(d.alphas_cumprod.double()[t])
        h = 1e-5
        fd = (log_q(x + h, abar) - log_q(x - h, abar)) / (2 * h)
        xt = torch.tensor(x[:, None])
        tt = torch.full((len(x),), t)
        score = d.score(oracle(xt, tt), xt, tt)[:, 0].numpy()
        np.testing.assert_allclose(score, fd, rtol=1e-4, atol=1e-4 / math.sqrt(1 - abar))


# ------------------------------------------------------------------------------------------ loss
class _ReplayModel(torch.nn.Module):
    """Knows the loss's draws: replays the same generator to get t and eps, returns target + offset."""

    def __init__(self, d, x0, seed, offset=0.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.t = torch.randint(0, d.num_train_timesteps, (x0.shape[0],), generator=g)
        self.eps = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
        abar = d.alphas_cumprod.to(x0.dtype)[self.t].view(-1, *([1] * (x0.ndim - 1)))
        self.x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * self.eps
        v = abar.sqrt() * self.eps - (1 - abar).sqrt() * x0
        self.target = {"epsilon": self.eps, "sample": x0, "v_prediction": v}[d.prediction_type] + offset
        self.calls = 0

    def forward(self, x_t, timesteps):
        self.calls += 1
        assert torch.equal(timesteps, self.t)
        torch.testing.assert_close(x_t, self.x_t)
        return self.target


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("offset", [0.0, 0.1, -0.3])
def test_loss_of_a_model_returning_the_exact_target(prediction_type, offset):
    d = diffusion("cosine", prediction_type)
    x0 = randn((32, 2), 0, torch.float32)
    model = _ReplayModel(d, x0, seed=7, offset=offset)
    loss = d.loss(model, x0, generator=torch.Generator().manual_seed(7))
    assert model.calls == 1
    assert loss.shape == (32,) and torch.isfinite(loss).all()
    assert torch.allclose(loss, torch.full_like(loss, offset**2), rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_loss_is_zero_for_a_denoiser_that_knows_point_mass_data(prediction_type):
    """Data is one point c: x0 is known, so eps = (x_t - sqrt(abar) c) / sqrt(1 - abar) is exact."""
    d = diffusion("linear", prediction_type)
    c = torch.tensor([0.3, -1.2], dtype=torch.float64)
    abar_all = d.alphas_cumprod.double()

    def model(x_t, t):
        abar = abar_all[t][:, None]
        eps = (x_t - abar.sqrt() * c) / (1 - abar).sqrt()
        x0 = c.expand_as(x_t)
        return {"epsilon": eps, "sample": x0, "v_prediction": abar.sqrt() * eps - (1 - abar).sqrt() * x0}[
            prediction_type]

    x0 = c.expand(256, 2).clone()
    loss = d.loss(model, x0, generator=torch.Generator().manual_seed(0))
    assert float(loss.max()) < 1e-12
    # a model that is wrong by 0.5 everywhere has loss 0.25
    loss = d.loss(lambda x_t, t: model(x_t, t) + 0.5, x0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(loss, torch.full_like(loss, 0.25), rtol=1e-9)


def test_loss_is_differentiable_finite_and_seeded():
    from diffnlp.models.denoisers import MLPDenoiser

    torch.manual_seed(0)
    model = MLPDenoiser(hidden=16, depth=1, time_dim=8)
    d = diffusion()
    x0 = randn((64, 2), 0, torch.float32)
    l1 = d.loss(model, x0, generator=torch.Generator().manual_seed(1)).mean()
    l2 = d.loss(model, x0, generator=torch.Generator().manual_seed(1)).mean().detach()
    l3 = d.loss(model, x0, generator=torch.Generator().manual_seed(2)).mean().detach()
    assert l1.shape == () and torch.isfinite(l1) and l1.requires_grad
    assert float(l1.detach()) == float(l2) and float(l1.detach()) != float(l3)
    l1.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# ------------------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("n,expected", [
    (1, [0]),
    (3, [666, 333, 0]),
    (50, list(range(980, -1, -20))),
    (1000, list(range(999, -1, -1))),
    (None, list(range(999, -1, -1))),
    (7, [852, 710, 568, 426, 284, 142, 0]),
])
def test_inference_timesteps_leading_spacing(n, expected):
    ts = diffusion().inference_timesteps(n)
    assert ts.dtype == torch.long
    assert ts.tolist() == expected


def test_inference_timesteps_small_T():
    d = diffusion(T=10)
    assert d.inference_timesteps(3).tolist() == [6, 3, 0]
    assert d.inference_timesteps(10).tolist() == list(range(9, -1, -1))


class _Recorder(torch.nn.Module):
    """A fixed linear 'denoiser' that records the timesteps it is called with."""

    def __init__(self):
        super().__init__()
        self.calls: list[torch.Tensor] = []

    def forward(self, x_t, timesteps):
        self.calls.append(timesteps.clone())
        return 0.5 * x_t


@pytest.mark.parametrize("method,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
@pytest.mark.parametrize("n", [1, 3, 20])
def test_sample_yields_every_state_and_is_seeded(method, eta, n):
    d = diffusion("linear")
    shape = (5, 2)
    model = _Recorder()
    traj = list(d.sample(model, shape, n, method=method, eta=eta, generator=torch.Generator().manual_seed(0)))
    assert len(traj) == n + 1
    assert all(x.shape == shape and torch.isfinite(x).all() for x in traj)
    # x_T is the first draw of the generator
    torch.testing.assert_close(traj[0], torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    # the model saw the inference timesteps in order, as LongTensors of shape (batch,)
    assert [c.tolist() for c in model.calls] == [[t] * 5 for t in d.inference_timesteps(n).tolist()]
    assert all(c.dtype == torch.long for c in model.calls)
    final = d.sample(model, shape, n, method=method, eta=eta, generator=torch.Generator().manual_seed(0)).run()
    assert torch.equal(final, traj[-1])
    other = d.sample(model, shape, n, method=method, eta=eta, generator=torch.Generator().manual_seed(1)).run()
    assert not torch.allclose(final, other)


@pytest.mark.parametrize("method,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 0.5)])
def test_sample_trajectory_is_the_chain_of_steps(method, eta):
    """sample() == x_T, then step(model(x, t), t, x, t - T//n, noise=z) with the generator's next draws."""
    d = diffusion("cosine", "v_prediction")
    shape, n = (4, 3), 10
    model = _Recorder()
    traj = list(d.sample(model, shape, n, method=method, eta=eta, generator=torch.Generator().manual_seed(3)))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=g)
    for i, t in enumerate(d.inference_timesteps(n).tolist()):
        z = torch.randn(shape, generator=g)
        x = d.step(0.5 * x, t, x, t - T // n, method=method, eta=eta, noise=z)
        torch.testing.assert_close(traj[i + 1], x)


# ------------------------------------------------------------------------------------------ single steps
@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("t,s", [(999, 998), (500, 480), (20, 0), (1, 0)])
def test_ddpm_step_is_posterior_sample(prediction_type, t, s):
    d = diffusion("linear", prediction_type)
    x0, eps, z = randn((5, 2), 0), randn((5, 2), 1), randn((5, 2), 2)
    x_t = d.add_noise(x0, eps, t)
    out = d.target(x0, eps, t)
    x_s = d.step(out, t, x_t, s, method="ddpm", noise=z)
    tab = abar_table(d)
    mean, var = bayes_posterior(x_t.numpy(), x0.numpy(), tab[t + 1], tab[s + 1])
    np.testing.assert_allclose(x_s.numpy(), mean + math.sqrt(var) * z.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_last_ddpm_step_returns_predicted_x0_without_noise(prediction_type):
    d = diffusion("cosine", prediction_type)
    x0, eps = randn((5, 2), 0), randn((5, 2), 1)
    x_t = d.add_noise(x0, eps, 0)
    out = d.target(x0, eps, 0)
    torch.testing.assert_close(d.step(out, 0, x_t, -1, method="ddpm"), x0)
    torch.testing.assert_close(d.step(out, 0, x_t, -20, method="ddpm", noise=randn((5, 2), 9)), x0)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
@pytest.mark.parametrize("t,s", [(999, 979), (400, 300), (10, -1)])
def test_ddim_eta0_with_exact_prediction_moves_along_q(prediction_type, schedule, t, s):
    """With the exact (x0, eps) the deterministic DDIM step lands on add_noise(x0, eps, s)."""
    d = diffusion(schedule, prediction_type)
    x0, eps = randn((5, 2), 0), randn((5, 2), 1)
    x_t = d.add_noise(x0, eps, t)
    x_s = d.step(d.target(x0, eps, t), t, x_t, s, method="ddim", eta=0.0)
    expected = x0 if s < 0 else d.add_noise(x0, eps, s)
    torch.testing.assert_close(x_s, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("t,s", [(999, 998), (600, 550), (50, 0)])
def test_ddim_eta1_equals_ddpm(prediction_type, t, s):
    """eta = 1 makes sigma^2 the posterior variance, and the DDIM mean the posterior mean."""
    d = diffusion("cosine", prediction_type)
    x_t, out, z = randn((6, 2), 0), randn((6, 2), 1), randn((6, 2), 2)
    ddim = d.step(out, t, x_t, s, method="ddim", eta=1.0, noise=z)
    ddpm = d.step(out, t, x_t, s, method="ddpm", noise=z)
    torch.testing.assert_close(ddim, ddpm, rtol=1e-6, atol=1e-6)
    # and the noise enters with sigma = sqrt(posterior variance)
    ddim0 = d.step(out, t, x_t, s, method="ddim", eta=1.0, noise=torch.zeros_like(z))
    x0_hat, _ = d.split_prediction(out, x_t, torch.full((6,), t))
    _, var = d.posterior(x_t, x0_hat, torch.full((6,), t), torch.full((6,), s))
    torch.testing.assert_close(ddim - ddim0, var.sqrt() * z, rtol=1e-6, atol=1e-8)


def test_ddim_eta_interpolates_the_noise_scale():
    d = diffusion("linear")
    x_t, out, z = randn((4, 2), 0), randn((4, 2), 1), randn((4, 2), 2)
    t, s = 500, 450
    tab = abar_table(d)
    a_t, a_s = tab[t + 1], tab[s + 1]
    sigma1 = math.sqrt((1 - a_s) / (1 - a_t) * (1 - a_t / a_s))
    x0_hat, eps_hat = d.split_prediction(out, x_t, torch.full((4,), t))
    for eta in (0.0, 0.3, 0.7):
        sigma = eta * sigma1
        expected = math.sqrt(a_s) * x0_hat + math.sqrt(1 - a_s - sigma**2) * eps_hat + sigma * z
        torch.testing.assert_close(d.step(out, t, x_t, s, method="ddim", eta=eta, noise=z), expected)


# ------------------------------------------------------------------------------------------ other spacings
_HAS_SPACING = "timestep_spacing" in inspect.signature(GaussianDiffusion.inference_timesteps).parameters
needs_spacing = pytest.mark.skipif(not _HAS_SPACING, reason="inference_timesteps has no timestep_spacing")


@needs_spacing
@PROPERTY
@given(spacing=st.sampled_from(["leading", "trailing", "quadratic"]), T=st.integers(2, 1000), data=st.data())
def test_every_spacing_gives_n_distinct_descending_timesteps_in_range(spacing, T, data):
    n = data.draw(st.integers(1, T))
    ts = diffusion(T=T).inference_timesteps(n, timestep_spacing=spacing).tolist()
    assert len(ts) == n
    assert all(a > b for a, b in zip(ts[:-1], ts[1:], strict=True))
    assert 0 <= ts[-1] and ts[0] <= T - 1
    if spacing != "leading":
        assert ts[0] == T - 1  # trailing and quadratic start from pure noise
    if spacing == "quadratic" and n > 1:
        assert ts[-1] == 0
        gaps = [a - b for a, b in zip(ts[:-1], ts[1:], strict=True)]
        assert gaps[-1] <= gaps[0]  # finest steps near the data


@needs_spacing
@pytest.mark.parametrize("spacing", ["trailing", "quadratic"])
@pytest.mark.parametrize("method,eta", [("ddpm", 0.0), ("ddim", 0.0)])
def test_sample_walks_the_spacing_to_minus_one(spacing, method, eta):
    d = diffusion("cosine")
    shape, n = (3, 2), 7
    model = _Recorder()
    traj = list(d.sample(model, shape, n, method=method, eta=eta, generator=torch.Generator().manual_seed(0),
                         timestep_spacing=spacing))
    ts = d.inference_timesteps(n, timestep_spacing=spacing).tolist()
    assert [int(c[0]) for c in model.calls] == ts
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    for i, (t, s) in enumerate(zip(ts, ts[1:] + [-1], strict=True)):
        z = torch.randn(shape, generator=g)
        x = d.step(0.5 * x, t, x, s, method=method, eta=eta, noise=z)
        torch.testing.assert_close(traj[i + 1], x)


@pytest.mark.parametrize("schedule,prediction_type", [("linear", "epsilon"), ("cosine", "v_prediction")])
def test_nelbo_is_unbiased_against_its_closed_form_for_gaussian_data(schedule, prediction_type):
    """Data N(0, s^2 I) and its exact denoiser x0_hat = m_t x_t: every term of the NELBO has a closed form,

        E||eps - eps_hat||^2 = (1 - g_t sqrt(1 - abar_t))^2 + g_t^2 abar_t x_0^2   per dimension,
        g_t = (1 - sqrt(abar_t) m_t) / sqrt(1 - abar_t),   m_t = sqrt(abar_t) s^2 / (abar_t s^2 + 1 - abar_t),

    so the Monte-Carlo estimate must agree with the exact sum within its standard error, and it bounds the
    model's exact -log p_theta(x_0) (a linear-Gaussian chain: its variance is propagated step by step)."""
    from diffnlp.evaluation.oracle import GaussianMixtureDenoiser

    d, s, dim = GaussianDiffusion(1000, schedule, prediction_type), 0.5, 2
    oracle = GaussianMixtureDenoiser(d, torch.zeros(1, dim), torch.tensor([s]), torch.ones(1))
    x0 = torch.randn(400, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * s
    est = d.nelbo(oracle, x0, generator=torch.Generator().manual_seed(1), n_samples=32)
    a = d.alphas_cumprod.double()
    m = a.sqrt() * s**2 / (a * s**2 + 1 - a)
    g = (1 - a.sqrt() * m) / (1 - a).sqrt()
    sq = (x0**2).sum(1)
    lam = d.elbo_weights()
    kl = sum(lam[t] * (dim * (1 - g[t] * (1 - a[t]).sqrt()) ** 2 + g[t] ** 2 * a[t] * sq) for t in range(1, 1000))
    beta0 = 1 - a[0]
    decoder = ((1 - m[0] * a[0].sqrt()) ** 2 * sq + dim * m[0] ** 2 * (1 - a[0])) / (2 * beta0) + \
        0.5 * dim * math.log(2 * math.pi * beta0)
    prior = 0.5 * (a[-1] * sq + dim * ((1 - a[-1]) - 1 - math.log(1 - a[-1])))
    exact = prior + decoder + kl
    diff = est.mean - exact                      # unbiased: its mean over 400 examples is 0 within 4 standard errors
    assert abs(float(diff.mean())) < 4 * float(diff.std()) / math.sqrt(len(diff)), (diff.mean(), diff.std())
    # the model's exact -log p_theta(x_0): x_s = (c0 m_t + c1) x_t + sigma_t z, then the decoder
    v = torch.tensor(1.0, dtype=torch.float64)                               # x_{T-1} ~ N(0, 1)
    for t in range(999, 0, -1):
        abar_s, beta = a[t - 1], 1 - a[t] / a[t - 1]
        c0, c1 = abar_s.sqrt() * beta / (1 - a[t]), (1 - beta).sqrt() * (1 - abar_s) / (1 - a[t])
        v = (c0 * m[t] + c1) ** 2 * v + (1 - abar_s) / (1 - a[t]) * beta
    v = m[0] ** 2 * v + beta0
    nll = sq / (2 * v) + 0.5 * dim * torch.log(2 * math.pi * v)
    assert float((exact - nll).min()) > 0                                   # a bound, for every example
    assert float((exact - nll).mean()) < 2.0                                 # and not a loose one


# ------------------------------------------------------------------ lesson 01: one-hot words under noise

def test_argmax_flip_rates_and_the_flip_band():
    from diffnlp.processes.gaussian import argmax_flip_rates, flip_band

    V = 15
    ids = torch.randint(0, V, (2000,), generator=torch.Generator().manual_seed(0))
    d = GaussianDiffusion(1000, "linear")
    rates = argmax_flip_rates(d, ids, V, torch.Generator().manual_seed(1))
    assert rates.shape == (1000,) and rates[0] == 0                         # abar_0 = 0.9999: nothing flips
    assert abs(rates[-1] - (1 - 1 / V)) < 0.03                              # pure noise: a random word
    one = torch.nn.functional.one_hot(ids[:7], V).double() * 2 - 1          # by hand at t = 300
    eps = torch.randn(2000, V, generator=torch.Generator().manual_seed(1), dtype=torch.float64)[:7]
    a = d.alphas_cumprod[300].double()
    by_hand = ((a.sqrt() * one + (1 - a).sqrt() * eps).argmax(-1) != ids[:7]).double().mean()
    assert by_hand == (argmax_flip_rates(d, ids[:7], V, torch.Generator().manual_seed(1))[300])
    lo, hi = flip_band(rates, V)
    level = 1 - 1 / V
    assert rates[lo] >= 0.1 * level > rates[lo - 1] and rates[hi] >= 0.9 * level > rates[:hi].max()
    assert flip_band(torch.tensor([0.0, 0.2, 0.5, 0.95]), 2) == (1, 2)      # levels 0.05 and 0.45
    with pytest.raises(ValueError, match="never reach"):
        flip_band(torch.zeros(10), V)
