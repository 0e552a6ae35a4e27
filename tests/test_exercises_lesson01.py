"""Lesson 01's checkers: each accepts its reference, rejects the typical wrong answer with a specific message,
and reports a stub as "not attempted" (never an error)."""

import torch

from diffnlp import GaussianDiffusion
from diffnlp.course.exercises import lesson01 as ex


def _stub(*args):
    raise NotImplementedError


def test_cosine_half_signal_checker():
    linear = ex.reference_half_signal_t(GaussianDiffusion())
    cosine = ex.reference_cosine_half_signal()
    a = GaussianDiffusion(beta_schedule="cosine").alphas_cumprod
    assert a[cosine] <= 0.5 < a[cosine - 1] and cosine > linear
    assert ex.check_cosine_half_signal(cosine).correct
    assert ex.check_cosine_half_signal(cosine + 80).correct                 # a prediction, not an exact answer
    assert ex.check_cosine_half_signal(float(cosine)).correct
    v = ex.check_cosine_half_signal(linear - 50)                            # "cosine destroys faster"
    assert v.status == "incorrect" and "later, not earlier" in v.message and f"t = {cosine}" in v.message
    v = ex.check_cosine_half_signal(cosine + 300)
    assert v.status == "incorrect" and "right direction" in v.message
    assert ex.check_cosine_half_signal("500").status == "incorrect"
    assert ex.check_cosine_half_signal(True).status == "incorrect"
    assert ex.check_cosine_half_signal(None).status == "not attempted"


def test_two_step_variance_checker():
    assert ex.check_two_step_variance(ex.reference_two_step_variance).correct
    assert ex.check_two_step_variance(lambda b1, b2: 1 - (1 - b1) * (1 - b2)).correct
    assert ex.check_two_step_variance(lambda b1, b2: torch.tensor(b1 + b2 - b1 * b2)).correct
    assert "shrinks" in ex.check_two_step_variance(lambda b1, b2: b1 + b2).message
    assert "not their standard" in ex.check_two_step_variance(lambda b1, b2: (b1 ** 0.5 + b2 ** 0.5) ** 2).message
    assert "kept" in ex.check_two_step_variance(lambda b1, b2: (1 - b1) * (1 - b2)).message
    assert ex.check_two_step_variance(lambda b1, b2: b2).status == "incorrect"
    assert ex.check_two_step_variance(lambda b1, b2: "x").status == "incorrect"
    assert ex.check_two_step_variance(None).status == "not attempted"
    assert ex.check_two_step_variance(_stub).status == "not attempted"
    assert "ZeroDivisionError" in ex.check_two_step_variance(lambda *a: 1 / 0).message


def test_ddpm_step_checker():
    assert ex.check_ddpm_step(ex.reference_ddpm_step).correct
    d = GaussianDiffusion()

    def no_noise(x_t, eps_hat, t, z, betas, abar):
        return ex.reference_ddpm_step(x_t, eps_hat, t, torch.zeros_like(z), betas, abar)

    assert "no noise" in ex.check_ddpm_step(no_noise).message

    def fixed_large(x_t, eps_hat, t, z, betas, abar):
        mean = (x_t - betas[t] / (1 - abar[t]).sqrt() * eps_hat) / (1 - betas[t]).sqrt()
        return mean + betas[t].sqrt() * z

    assert "fixed large" in ex.check_ddpm_step(fixed_large).message

    def wrong_scale(x_t, eps_hat, t, z, betas, abar):
        noise = ex.reference_ddpm_step(x_t, eps_hat, t, z, betas, abar) - ex.reference_ddpm_step(
            x_t, eps_hat, t, torch.zeros_like(z), betas, abar)
        return (x_t - betas[t] / (1 - abar[t]).sqrt() * eps_hat) / abar[t].sqrt() + noise

    assert "sqrt(alpha_t)" in ex.check_ddpm_step(wrong_scale).message

    def wraps_at_zero(x_t, eps_hat, t, z, betas, abar):                    # abar[t - 1] is abar[-1] at t = 0
        mean = (x_t - betas[t] / (1 - abar[t]).sqrt() * eps_hat) / (1 - betas[t]).sqrt()
        return mean + (betas[t] * (1 - abar[t - 1]) / (1 - abar[t])).sqrt() * z

    assert "t = 0" in ex.check_ddpm_step(wraps_at_zero).message
    assert d.step(torch.zeros(2, 2), 0, torch.ones(2, 2), -1).equal(torch.ones(2, 2) / (1 - d.betas[0]).sqrt())
    assert ex.check_ddpm_step(lambda *a: a[0]).status == "incorrect"
    assert ex.check_ddpm_step(lambda *a: 3).status == "incorrect"
    assert ex.check_ddpm_step(None).status == "not attempted"
    assert ex.check_ddpm_step(_stub).status == "not attempted"
    assert "ZeroDivisionError" in ex.check_ddpm_step(lambda *a: 1 / 0).message
