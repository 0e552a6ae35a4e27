"""Lesson 02's checkers: each accepts its reference, rejects the typical wrong answer with a specific message,
and reports a stub as "not attempted" (never an error)."""

import torch

from diffnlp import GaussianDiffusion
from diffnlp.course.exercises import lesson02 as ex


def _stub(*args):
    raise NotImplementedError


def test_eps_from_v_checker_names_the_typical_mistakes():
    assert ex.check_eps_from_v(ex.reference_eps_from_v).correct
    assert "swapped" in ex.check_eps_from_v(lambda x_t, v, a: a ** 0.5 * x_t + (1 - a) ** 0.5 * v).message
    assert "sign" in ex.check_eps_from_v(lambda x_t, v, a: (1 - a) ** 0.5 * x_t - a ** 0.5 * v).message
    assert "x_0" in ex.check_eps_from_v(lambda x_t, v, a: a ** 0.5 * x_t - (1 - a) ** 0.5 * v).message
    assert "eliminate" in ex.check_eps_from_v(lambda x_t, v, a: x_t).message
    assert ex.check_eps_from_v(_stub).status == "not attempted"


def test_v_loss_weight_checker():
    assert ex.check_v_loss_weight(ex.reference_v_loss_weight).correct
    d = GaussianDiffusion()
    a = d.alphas_cumprod[300].double()
    assert abs(ex.reference_v_loss_weight(float(d.snr[300])) - 1 / float(a)) < 1e-4     # = 1 / abar_t
    assert "x_0 error" in ex.check_v_loss_weight(lambda snr: 1 + snr).message
    assert "relative to the eps error" in ex.check_v_loss_weight(lambda snr: 1 / snr).message
    assert "SNR alone" in ex.check_v_loss_weight(lambda snr: snr).message
    assert ex.check_v_loss_weight(lambda snr: 1.0).status == "incorrect"
    assert ex.check_v_loss_weight(lambda snr: "x").status == "incorrect"
    assert ex.check_v_loss_weight(lambda snr: torch.tensor(1 + 1 / snr)).correct
    assert ex.check_v_loss_weight(None).status == "not attempted"
    assert ex.check_v_loss_weight(_stub).status == "not attempted"
    assert "ZeroDivisionError" in ex.check_v_loss_weight(lambda s: 1 / 0).message


def test_spread_prediction_checker():
    assert ex.reference_spread_prediction(1.7) == "too wide"
    assert ex.reference_spread_prediction(0.95) == "about right"
    assert ex.reference_spread_prediction(0.7) == "too narrow"
    assert ex.check_spread_prediction(ex.reference_spread_prediction(1.7), 1.7).correct
    assert ex.check_spread_prediction(" Too Wide", 1.7).correct
    wrong = ex.check_spread_prediction("about right", 1.7)
    assert wrong.status == "incorrect" and "1.70" in wrong.message and "too wide" in wrong.message
    assert ex.check_spread_prediction("wider", 1.7).status == "incorrect"
    assert ex.check_spread_prediction(None, 1.7).status == "not attempted"


def test_ddim_step_checker():
    assert ex.check_ddim_step(ex.reference_ddim_step).correct
    assert "x0_hat" in ex.check_ddim_step(lambda x, e, a, s: s ** 0.5 * x + (1 - s) ** 0.5 * e).message
    assert "divide by sqrt(abar_t)" in ex.check_ddim_step(
        lambda x, e, a, s: s ** 0.5 * (x - (1 - a) ** 0.5 * e) + (1 - s) ** 0.5 * e).message
    assert "not abar_s" in ex.check_ddim_step(
        lambda x, e, a, s: s * (x - (1 - a) ** 0.5 * e) / a ** 0.5 + (1 - s) * e).message
    assert ex.check_ddim_step(lambda *a: a[0]).status == "incorrect"
    assert ex.check_ddim_step(lambda *a: 3).status == "incorrect"
    assert ex.check_ddim_step(None).status == "not attempted"
    assert ex.check_ddim_step(_stub).status == "not attempted"
    assert "ZeroDivisionError" in ex.check_ddim_step(lambda *a: 1 / 0).message
