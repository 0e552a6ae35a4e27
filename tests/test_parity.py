"""Parity with diffusers' DDPMScheduler and DDIMScheduler: the same names must give the same numbers."""

from __future__ import annotations

import inspect

import pytest
import torch

from diffnlp import GaussianDiffusion
from diffnlp.processes.gaussian import PREDICTION_TYPES

diffusers = pytest.importorskip("diffusers")

T = 1000
SCHEDULES = [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]  # (ours, diffusers')
TOL = {"rtol": 1e-4, "atol": 1e-5}


def ddpm_pair(schedule, prediction_type="epsilon"):
    ours, theirs = schedule
    d = GaussianDiffusion(T, ours, prediction_type)
    s = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=theirs, clip_sample=False,
                                variance_type="fixed_small", prediction_type=prediction_type)
    return d, s


def ddim_pair(schedule, prediction_type="epsilon"):
    ours, theirs = schedule
    d = GaussianDiffusion(T, ours, prediction_type)
    s = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule=theirs, clip_sample=False,
                                set_alpha_to_one=True, prediction_type=prediction_type)
    return d, s


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s[0])
def test_betas_and_alphas_cumprod(schedule):
    d, s = ddpm_pair(schedule)
    assert d.betas.dtype == s.betas.dtype == torch.float32
    torch.testing.assert_close(d.betas, s.betas, rtol=0, atol=1e-6)
    torch.testing.assert_close(d.alphas_cumprod, s.alphas_cumprod, rtol=0, atol=1e-6)
    d2, s2 = ddim_pair(schedule)
    torch.testing.assert_close(d2.alphas_cumprod, s2.alphas_cumprod, rtol=0, atol=1e-6)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s[0])
def test_add_noise_and_velocity(schedule):
    d, s = ddpm_pair(schedule)
    x0, noise = randn((6, 1, 4, 4), 0), randn((6, 1, 4, 4), 1)
    t = torch.tensor([0, 1, 10, 500, 998, 999])
    torch.testing.assert_close(d.add_noise(x0, noise, t), s.add_noise(x0, noise, t), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(d.velocity(x0, noise, t), s.get_velocity(x0, noise, t), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 10, 50, 999, 1000])
def test_inference_timesteps(n):
    d, s = ddpm_pair(SCHEDULES[0])
    s.set_timesteps(n)
    assert d.inference_timesteps(n).tolist() == s.timesteps.tolist()
    d2, s2 = ddim_pair(SCHEDULES[0])
    s2.set_timesteps(n)
    assert d2.inference_timesteps(n).tolist() == s2.timesteps.tolist()


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s[0])
@pytest.mark.parametrize("n", [None, 50])
def test_ddpm_step(prediction_type, schedule, n):
    """One DDPM step for every kind of t (first, middle, last) with the same variance noise: diffusers
    draws it as randn(shape, generator=generator, dtype=model_output.dtype), so we draw it the same way."""
    d, s = ddpm_pair(schedule, prediction_type)
    if n is not None:
        s.set_timesteps(n)
    ratio = T // (n or T)
    ts = d.inference_timesteps(n).tolist()
    for t in (ts[0], ts[1], ts[len(ts) // 2], ts[-2], ts[-1]):
        x_t, out = randn((8, 3), t), randn((8, 3), t + 5000)
        theirs = s.step(out, t, x_t, generator=torch.Generator().manual_seed(t)).prev_sample
        z = torch.randn(out.shape, generator=torch.Generator().manual_seed(t), dtype=out.dtype)
        ours = d.step(out, t, x_t, t - ratio, method="ddpm", noise=z)
        torch.testing.assert_close(ours, theirs, **TOL)
        # a different noise draw gives a different answer for t > 0 (the comparison has power)
        if t > 0:
            other = d.step(out, t, x_t, t - ratio, method="ddpm", noise=-z)
            assert not torch.allclose(other, theirs, **TOL)


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s[0])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step(prediction_type, schedule, eta):
    d, s = ddim_pair(schedule, prediction_type)
    n = 50
    s.set_timesteps(n)
    ts = d.inference_timesteps(n).tolist()
    for t in (ts[0], ts[1], ts[len(ts) // 2], ts[-2], ts[-1]):
        x_t, out, z = randn((8, 3), t), randn((8, 3), t + 5000), randn((8, 3), t + 9000)
        theirs = s.step(out, t, x_t, eta=eta, variance_noise=z).prev_sample
        ours = d.step(out, t, x_t, t - T // n, method="ddim", eta=eta, noise=z)
        torch.testing.assert_close(ours, theirs, **TOL)


class _FixedNet(torch.nn.Module):
    """A small fixed nonlinear 'denoiser' so that a whole trajectory depends on every step."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(0.3 * torch.randn(3, 3, generator=g))

    def forward(self, x, t):
        return torch.tanh(x @ self.w) + 1e-3 * t.float()[:, None]


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("method,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
def test_whole_trajectory(prediction_type, method, eta):
    """sample() vs the diffusers loop with the same generator: x_T, then one draw per noisy step."""
    schedule = SCHEDULES[1]
    d, s = ddpm_pair(schedule, prediction_type) if method == "ddpm" else ddim_pair(schedule, prediction_type)
    model, shape, n = _FixedNet(), (16, 3), 25
    with torch.no_grad():
        ours = list(d.sample(model, shape, n, method=method, eta=eta, generator=torch.Generator().manual_seed(1)))
        g = torch.Generator().manual_seed(1)
        x = torch.randn(shape, generator=g)
        s.set_timesteps(n)
        theirs = [x]
        for t in s.timesteps:
            out = model(x, torch.full((shape[0],), int(t)))
            kwargs = {"eta": eta} if method == "ddim" else {}
            x = s.step(out, t, x, generator=g, **kwargs).prev_sample
            theirs.append(x)
    assert len(ours) == len(theirs) == n + 1
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    final = d.sample(model, shape, n, method=method, eta=eta, generator=torch.Generator().manual_seed(1)).run()
    assert torch.equal(final, ours[-1])


@pytest.mark.skipif("timestep_spacing" not in inspect.signature(GaussianDiffusion.inference_timesteps).parameters,
                    reason="inference_timesteps has no timestep_spacing")
@pytest.mark.parametrize("n", [1, 3, 7, 10, 50, 999, 1000])
def test_trailing_timesteps(n):
    d = GaussianDiffusion(T)
    s = diffusers.DDPMScheduler(num_train_timesteps=T, timestep_spacing="trailing")
    s.set_timesteps(n)
    assert d.inference_timesteps(n, timestep_spacing="trailing").tolist() == s.timesteps.tolist()


@pytest.mark.skipif("timestep_spacing" not in inspect.signature(GaussianDiffusion.inference_timesteps).parameters,
                    reason="inference_timesteps has no timestep_spacing")
@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_ddpm_trajectory_with_trailing_spacing(prediction_type):
    """DDPMScheduler steps to the next timestep of its list, as sample() does (n = 7 does not divide T)."""
    d, s = ddpm_pair(SCHEDULES[0], prediction_type)
    s = diffusers.DDPMScheduler.from_config(s.config, timestep_spacing="trailing")
    model, shape, n = _FixedNet(), (16, 3), 7
    with torch.no_grad():
        ours = d.sample(model, shape, n, generator=torch.Generator().manual_seed(2),
                                     timestep_spacing="trailing").run()
        g = torch.Generator().manual_seed(2)
        x = torch.randn(shape, generator=g)
        s.set_timesteps(n)
        for t in s.timesteps:
            x = s.step(model(x, torch.full((shape[0],), int(t))), t, x, generator=g).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)
