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


# ---------------------------------------------------------------- predict: where does cosine cross abar = 0.5?
def reference_cosine_half_signal() -> int:
    """The first t at which the cosine schedule's abar_t <= 0.5 (computed, not guessed)."""
    return reference_half_signal_t(GaussianDiffusion(beta_schedule="cosine"))


def check_cosine_half_signal(guess) -> Verdict:
    """Predict: the linear schedule loses half the signal's variance at t = 259. At which t does cosine?"""
    if guess is None:
        return NOT_ATTEMPTED
    if isinstance(guess, torch.Tensor):
        guess = guess.item()
    if isinstance(guess, float) and guess.is_integer():
        guess = int(guess)
    if not isinstance(guess, int) or isinstance(guess, bool):
        return Verdict("incorrect", f"give your guess as an int timestep, got {type(guess).__name__} {guess!r}")
    linear, cosine = reference_half_signal_t(GaussianDiffusion()), reference_cosine_half_signal()
    off = f"cosine crosses abar = 0.5 at t = {cosine} (linear at t = {linear}); you were off by {abs(guess - cosine)}"
    if guess <= linear:
        return Verdict("incorrect", f"{off}. Cosine crosses later, not earlier: it removes signal more gently "
                                    "at the start (look at the two abar curves in the explorer)")
    if abs(guess - cosine) > 100:
        return Verdict("incorrect", f"right direction (later than linear), but {off} steps")
    return Verdict("correct", f"{off} steps: cosine keeps half the signal about twice as long as linear")


# ---------------------------------------------------------------- derive: the variance after two steps
def reference_two_step_variance(beta1: float, beta2: float) -> float:
    """Var[x_2 | x_0] = (1 - beta2) beta1 + beta2 = 1 - (1 - beta1)(1 - beta2) = 1 - abar_2.

    x_2 = sqrt(1 - beta2) x_1 + sqrt(beta2) eps_2 and x_1 = sqrt(1 - beta1) x_0 + sqrt(beta1) eps_1, so the
    noise in x_2 is sqrt((1 - beta2) beta1) eps_1 + sqrt(beta2) eps_2: independent, their variances add."""
    return (1 - beta2) * beta1 + beta2


_TWO_STEP_CASES = ((0.1, 0.2), (0.5, 0.3), (0.02, 0.9), (0.3, 0.3))


def check_two_step_variance(fn) -> Verdict:
    """Derive: the variance of x_2 given x_0 after two noising steps with betas beta1, beta2."""
    from ...schedules import alphas_cumprod

    for b1, b2 in _TWO_STEP_CASES:
        got, err = run_learner(fn, b1, b2)
        if err or got is None:
            return err or NOT_ATTEMPTED
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Verdict("incorrect", f"return a number, got {type(got).__name__}")
        want = 1 - float(alphas_cumprod(torch.tensor([b1, b2], dtype=torch.float64))[1])   # 1 - abar_2
        if abs(got - want) <= 1e-6:
            continue
        where = f"with beta1={b1}, beta2={b2} you return {got:.4g}, the variance is {want:.4g}"
        if abs(got - (b1 + b2)) < 1e-6:
            return Verdict("incorrect", f"{where}: you added beta1 and beta2, but the second step also shrinks "
                                        "the first step's noise by sqrt(1 - beta2)")
        if abs(got - (b1 ** 0.5 + b2 ** 0.5) ** 2) < 1e-6:
            return Verdict("incorrect", f"{where}: independent noises add their variances, not their standard "
                                        "deviations")
        if abs(got - (1 - b1) * (1 - b2)) < 1e-6:
            return Verdict("incorrect", f"{where}: (1 - beta1)(1 - beta2) is the share of x_0's variance kept "
                                        "(abar_2); the noise's variance is what x_0 lost")
        return Verdict("incorrect", f"{where}: write x_2 in terms of x_0, eps_1 and eps_2 first")
    return Verdict("correct", "Var[x_2 | x_0] = (1 - beta2) beta1 + beta2 = 1 - (1 - beta1)(1 - beta2): "
                              "that is 1 - abar_2, the closed form of the next cell")


# ---------------------------------------------------------------- implement: one DDPM reverse step
def reference_ddpm_step(x_t: torch.Tensor, eps_hat: torch.Tensor, t: int, z: torch.Tensor,
                        betas: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_hat) / sqrt(alpha_t) + sqrt(beta~_t) z,

    beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t), with abar_{t-1} = 1 at t = 0 (so no noise is added)."""
    abar_prev = abar[t - 1] if t > 0 else torch.tensor(1.0)
    mean = (x_t - betas[t] / (1 - abar[t]).sqrt() * eps_hat) / (1 - betas[t]).sqrt()
    var = betas[t] * (1 - abar_prev) / (1 - abar[t])
    return mean + var.sqrt() * z


def check_ddpm_step(fn) -> Verdict:
    """Implement one DDPM reverse step; compared with GaussianDiffusion.step(method="ddpm")."""
    d = GaussianDiffusion()
    g = torch.Generator().manual_seed(4)
    x_t, eps_hat, z = (torch.randn(64, 2, generator=g) for _ in range(3))
    for t in (999, 500, 10, 0):
        got, err = run_learner(fn, x_t, eps_hat, t, z, d.betas, d.alphas_cumprod)
        if err or got is None:
            return err or NOT_ATTEMPTED
        want = d.step(eps_hat, t, x_t, t - 1, method="ddpm", noise=z)
        v = compare(got, want, f"x_(t-1) at t={t}")
        if v.correct:
            continue
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return v
        b, a = d.betas[t], d.alphas_cumprod[t]
        mean = (x_t - b / (1 - a).sqrt() * eps_hat) / (1 - b).sqrt()
        if t == 0:
            return Verdict("incorrect", f"{v.message}. At t = 0 the step goes to clean data: abar_(t-1) is 1 "
                                        "there (not alphas_cumprod[-1]), so the variance is 0")
        diagnoses = {
            "you added no noise: the DDPM step draws x_(t-1), so add sqrt(variance) * z": mean,
            "your variance is beta_t (DDPM's 'fixed large' choice); this lesson's step uses the posterior's "
            "beta_t (1 - abar_(t-1)) / (1 - abar_t)": mean + b.sqrt() * z,
            "divide by sqrt(alpha_t) = sqrt(1 - beta_t), one step's scale, not by sqrt(abar_t)":
                (x_t - b / (1 - a).sqrt() * eps_hat) / a.sqrt() + (want - mean),
        }
        for message, candidate in diagnoses.items():
            if compare(got, candidate, "").correct:
                return Verdict("incorrect", f"at t={t}: {message}")
        return v
    return Verdict("correct", "your step equals the package's DDPM step at t = 999, 500, 10 and 0")
