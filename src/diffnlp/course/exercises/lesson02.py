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
            hint = _eps_from_v_diagnosis(got, x_t, v, float(d.alphas_cumprod[t]))
            return Verdict("incorrect", f"{verdict.message}: {hint}" if hint else
                           f"{verdict.message}. Substitute x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps into v, "
                           "and eliminate x_0")
    return Verdict("correct", "eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v recovered the noise exactly")


def _eps_from_v_diagnosis(got, x_t, v, abar_t) -> str | None:
    """The typical wrong answers to "eps from v", each with what to fix (None: no known mistake)."""
    a, b = abar_t ** 0.5, (1 - abar_t) ** 0.5
    mistakes = {
        "you swapped the two coefficients: at large t (abar -> 0) x_t is almost pure noise, so eps ~ x_t":
            a * x_t + b * v,
        "check the sign of the v term: v = sqrt(abar) eps - sqrt(1 - abar) x_0": b * x_t - a * v,
        "that is x_0, not eps": a * x_t - b * v,
    }
    for message, candidate in mistakes.items():
        if isinstance(got, torch.Tensor) and got.shape == candidate.shape and compare(got, candidate, "").correct:
            return message
    return None




# ---------------------------------------------------------------- derive: v-prediction's weight on the eps error
def reference_v_loss_weight(snr):
    """||v - v_hat||^2 = (1 + 1/SNR) ||eps - eps_hat||^2 at fixed x_t.

    With x_t fixed, x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar), so v = sqrt(abar) eps - sqrt(1 - abar) x_0
    = eps / sqrt(abar) - (terms in x_t): v - v_hat = (eps - eps_hat) / sqrt(abar), and 1 / abar = 1 + 1/SNR.
    (Relative to the x_0 error, v's weight is 1 + SNR: ||v - v_hat||^2 = (1 + SNR) ||x_0 - x0_hat||^2.)"""
    return 1 + 1 / snr


def check_v_loss_weight(fn) -> Verdict:
    """Derive: the weight w(SNR) with ||v - v_hat||^2 = w ||eps - eps_hat||^2, measured live with the package."""
    d = GaussianDiffusion()
    g = torch.Generator().manual_seed(5)
    x0, eps, err_eps = (torch.randn(16, 2, generator=g, dtype=torch.float64) for _ in range(3))
    d.alphas_cumprod = d.alphas_cumprod.double()
    for t in (10, 300, 900):
        x_t = d.add_noise(x0, eps, t)
        eps_hat = eps + 0.1 * err_eps
        v, v_hat = d.velocity(x0, eps, t), d.velocity(d.predict_x0(x_t, eps_hat, t), eps_hat, t)
        measured = float(((v - v_hat) ** 2).sum() / ((eps - eps_hat) ** 2).sum())
        snr = float(d.snr[t])
        got, err = run_learner(fn, snr)
        if err or got is None:
            return err or NOT_ATTEMPTED
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Verdict("incorrect", f"return a number for a given SNR, got {type(got).__name__}")
        if abs(got - measured) <= 1e-6 * measured:
            continue
        where = f"at t={t} (SNR = {snr:.4g}) the measured ratio is {measured:.6g}, you return {got:.6g}"
        known = {1 + snr: "1 + SNR is v's weight relative to the x_0 error ||x_0 - x0_hat||^2, not the eps error",
                 1 / snr: "1/SNR is the x_0 error's weight relative to the eps error; v's is larger",
                 snr: "SNR alone cannot be right: at large t (SNR -> 0) v ~ -x_0 and its error grows like 1/SNR"}
        for value, message in known.items():
            if abs(got - value) <= 1e-6 * abs(value):
                return Verdict("incorrect", f"{where}: {message}")
        return Verdict("incorrect", f"{where}. Hold x_t fixed, write x_0 in terms of x_t and eps, and substitute it "
                                    "into v")
    return Verdict("correct", "||v - v_hat||^2 = (1 + 1/SNR) ||eps - eps_hat||^2 = ||eps - eps_hat||^2 / abar_t")


# ---------------------------------------------------------------- predict: DDIM's clusters at K = 10
SPREAD_CHOICES = ("too wide", "about right", "too narrow")


def reference_spread_prediction(measured_spread: float) -> str:
    """What the measured cluster spread says (``oracle.mixture_fit``; 1 is the truth): "too wide" above 1.1,
    "too narrow" below 0.9, else "about right"."""
    return "too wide" if measured_spread > 1.1 else "too narrow" if measured_spread < 0.9 else "about right"


def check_spread_prediction(guess, measured_spread: float) -> Verdict:
    """Predict, before running: with K = 10 steps, are DDIM's clusters too wide, about right or too narrow?"""
    if guess is None:
        return NOT_ATTEMPTED
    if not isinstance(guess, str) or guess.strip().lower() not in SPREAD_CHOICES:
        return Verdict("incorrect", f"answer one of {', '.join(repr(c) for c in SPREAD_CHOICES)}, got {guess!r}")
    want = reference_spread_prediction(measured_spread)
    said = f"DDIM's clusters at K = 10 measure {measured_spread:.2f} x the true width: {want}"
    if guess.strip().lower() == want:
        return Verdict("correct", f"{said}. Now read how the width moves as K grows, in the table")
    return Verdict("incorrect", f"{said}, not {guess.strip().lower()}. Read how the width moves as K grows, in "
                                "the table, and the paragraph after it")


# ---------------------------------------------------------------- implement: one DDIM step
def reference_ddim_step(x_t: torch.Tensor, eps_hat: torch.Tensor, abar_t: float, abar_s: float) -> torch.Tensor:
    """x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps_hat,

    with x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)."""
    x0_hat = (x_t - (1 - abar_t) ** 0.5 * eps_hat) / abar_t ** 0.5
    return abar_s ** 0.5 * x0_hat + (1 - abar_s) ** 0.5 * eps_hat


def check_ddim_step(fn) -> Verdict:
    """Implement one deterministic DDIM step t -> s; compared with GaussianDiffusion.step(method="ddim")."""
    d = GaussianDiffusion()
    g = torch.Generator().manual_seed(6)
    x_t, eps_hat = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g)
    for t, s in ((999, 799), (500, 480), (20, -1)):
        a_t = float(d.alphas_cumprod[t])
        a_s = 1.0 if s < 0 else float(d.alphas_cumprod[s])
        got, err = run_learner(fn, x_t, eps_hat, a_t, a_s)
        if err or got is None:
            return err or NOT_ATTEMPTED
        want = d.step(eps_hat, t, x_t, s, method="ddim")
        v = compare(got, want, f"x_s for t={t} -> s={s}", atol=1e-3)
        if v.correct:
            continue
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return v
        mistakes = {
            "you used x_t where the step needs the predicted clean sample x0_hat":
                a_s ** 0.5 * x_t + (1 - a_s) ** 0.5 * eps_hat,
            "x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t): divide by sqrt(abar_t)":
                a_s ** 0.5 * (x_t - (1 - a_t) ** 0.5 * eps_hat) + (1 - a_s) ** 0.5 * eps_hat,
            "the coefficients are sqrt(abar_s) and sqrt(1 - abar_s), not abar_s and 1 - abar_s":
                a_s * (x_t - (1 - a_t) ** 0.5 * eps_hat) / a_t ** 0.5 + (1 - a_s) * eps_hat,
        }
        for message, candidate in mistakes.items():
            if compare(got, candidate, "", atol=1e-3).correct:
                return Verdict("incorrect", f"{v.message}: {message}")
        return v
    return Verdict("correct", "your DDIM step equals the package's for t -> s = 999 -> 799, 500 -> 480 and 20 -> -1")
