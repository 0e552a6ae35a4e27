"""Noise schedules: a schedule is just a table of noise levels.

Gaussian diffusion uses a table of ``betas`` (the variance added at each of T steps) and its
running product ``alphas_cumprod`` (written abar_t):

    abar_t = prod_{s<=t} (1 - beta_s),        q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)

and the signal-to-noise ratio SNR(t) = abar_t / (1 - abar_t).

Names and numbers follow diffusers: "linear" is ``linear`` (1e-4 to 0.02) and "cosine" is
``squaredcos_cap_v2`` (Nichol & Dhariwal, 2021). "sqrt" is Diffusion-LM's schedule
abar(t) = 1 - sqrt(t / T + 1e-4) (Li et al., 2022), which adds noise quickly at the start.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import check_choice, check_int

BETA_SCHEDULES = ("linear", "cosine", "sqrt")


def betas_for_alpha_bar(alpha_bar: Callable[[float], float], num_train_timesteps: int,
                        max_beta: float = 0.999) -> torch.Tensor:
    """Discretise a continuous abar(s), s in [0, 1], into T betas.

        beta_i = min(1 - abar((i + 1) / T) / abar(i / T), max_beta)
    """
    T = num_train_timesteps
    betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)]
    return torch.tensor(betas, dtype=torch.float32)


def _cosine_alpha_bar(s: float) -> float:
    # abar(s) = cos^2((s + 0.008) / 1.008 * pi / 2)
    return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


def _sqrt_alpha_bar(s: float) -> float:
    # abar(s) = 1 - sqrt(s + 1e-4)
    return 1 - math.sqrt(s + 1e-4)


def make_betas(beta_schedule: str, num_train_timesteps: int = 1000) -> torch.Tensor:
    """The betas of a named schedule, a float32 tensor of length ``num_train_timesteps``."""
    check_choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
    T = check_int("num_train_timesteps", num_train_timesteps, low=2)
    if beta_schedule == "linear":
        return torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
    if beta_schedule == "cosine":
        return betas_for_alpha_bar(_cosine_alpha_bar, T)
    return betas_for_alpha_bar(_sqrt_alpha_bar, T)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s<=t} (1 - beta_s)."""
    return torch.cumprod(1.0 - betas, dim=0)


def snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """SNR(t) = abar_t / (1 - abar_t): how much signal is left at step t."""
    return alphas_cumprod / (1.0 - alphas_cumprod)


# ---------------------------------------------------------------------------------------------
# Masking schedules for token diffusion, in continuous time t in [0, 1].
#
# alpha(t) is the probability that a token is still clean at time t (alpha(0) = 1). The masked
# diffusion NELBO weights the loss at time t by -alpha'(t) / (1 - alpha(t)).

MASK_SCHEDULES = ("loglinear", "cosine")


def mask_alpha(schedule: str, t: torch.Tensor, alpha_min: float = 1e-3) -> torch.Tensor:
    """alpha(t): "loglinear" is 1 - (1 - alpha_min) t (MDLM: the noise -log alpha(t) is log-linear in t);
    "cosine" is alpha_min + (1 - alpha_min) cos(pi t / 2) (clipped so that alpha(1) = alpha_min, as the
    log-linear one)."""
    check_choice("schedule", schedule, MASK_SCHEDULES)
    if schedule == "loglinear":
        return 1 - (1 - alpha_min) * t
    return alpha_min + (1 - alpha_min) * torch.cos(math.pi * t / 2)


def mask_alpha_derivative(schedule: str, t: torch.Tensor, alpha_min: float = 1e-3) -> torch.Tensor:
    """alpha'(t): -(1 - alpha_min) for "loglinear"; -(1 - alpha_min) (pi / 2) sin(pi t / 2) for "cosine"."""
    check_choice("schedule", schedule, MASK_SCHEDULES)
    if schedule == "loglinear":
        return torch.full_like(t, -(1 - alpha_min))
    return -(1 - alpha_min) * (math.pi / 2) * torch.sin(math.pi * t / 2)


def mask_loss_weight(schedule: str, t: torch.Tensor, alpha_min: float = 1e-3) -> torch.Tensor:
    """w(t) = -alpha'(t) / (1 - alpha(t)); for "loglinear", (1 - alpha_min) / ((1 - alpha_min) t) = 1 / t."""
    return -mask_alpha_derivative(schedule, t, alpha_min) / (1 - mask_alpha(schedule, t, alpha_min))


def time_grid(num_steps: int) -> torch.Tensor:
    """The one time grid of every token sampler: K + 1 times 1 = t_0 > t_1 > ... > t_K = 0, t_k = 1 - k / K
    (float64, shape (K + 1,)). Step k goes from t = t_k to s = t_{k+1}. Flow matching, whose time runs the
    other way, reads 1 - t on the same grid."""
    K = check_int("num_steps", num_steps, low=1)
    return 1 - torch.arange(K + 1, dtype=torch.float64) / K


def masked_count_probabilities(schedule: str, length: int, alpha_min: float = 1e-3) -> torch.Tensor:
    """P(k) for k = 0..L (float64, (L + 1,)): the chance that k of L tokens are masked at t ~ U(0, 1), the
    training loss's time. Log-linear schedule only, with u_max = 1 - alpha_min (u = u_max t masked):

        P(k) = C(L, k) int_0^1 (u_max t)^k (1 - u_max t)^(L-k) dt = C(L, k) B_{u_max}(k + 1, L - k + 1) / u_max,

    = 1 / (L + 1) for every k when alpha_min = 0 (the Beta integral k! (L-k)! / (L+1)!)."""
    L = check_int("length", length, low=1)
    if schedule != "loglinear":
        raise ValueError(f"masked_count_probabilities needs schedule='loglinear' (t uniform makes the masked "
                         f"share u uniform), got {schedule!r}")
    u_max = 1 - alpha_min
    if u_max >= 1:
        return torch.full((L + 1,), 1 / (L + 1), dtype=torch.float64)
    from scipy.special import beta, betainc

    return torch.tensor([math.comb(L, k) * float(betainc(k + 1, L - k + 1, u_max) * beta(k + 1, L - k + 1)) / u_max
                         for k in range(L + 1)], dtype=torch.float64)


def token_loss_weights(schedule: str, length: int, alpha_min: float = 1e-3) -> torch.Tensor:
    """d_k for k = 1..L (float64, (L,)): the weight of one mask of k positions in the expectation of the
    per-token loss (``MaskedDiffusion.loss(weighting="token")``), the counterpart of the NELBO's c_k:

        E_t E_{z_t}[token loss] = sum_M d_|M| sum_{i in M} -log p_theta(x^i | x outside M),
        d_k = P(k) (L / k) / C(L, k)   (= L / (L + 1) c_k when alpha_min = 0)."""
    L = check_int("length", length, low=1)
    P = masked_count_probabilities(schedule, L, alpha_min)
    return torch.tensor([float(P[k]) * L / k / math.comb(L, k) for k in range(1, L + 1)], dtype=torch.float64)


def reveal_step_probabilities(schedule: str, num_steps: int, alpha_min: float = 1e-3) -> torch.Tensor:
    """q_k for k = 0..K-1 (float64, (K,)): the chance that MDLM's ancestral sampler with K steps, started from
    all [MASK] at t = 1, reveals a given position at step k (from t_k to t_{k+1} on ``time_grid``):

        q_k = (alpha(t_{k+1}) - alpha(t_k)) / (1 - alpha(1)),

    the product of "still masked at t_k", (1 - alpha(t_k)) / (1 - alpha(1)), and the reveal probability.
    Log-linear: q_k = 1/K, a uniform step. Positions are revealed independently."""
    a = mask_alpha(schedule, time_grid(check_int("num_steps", num_steps, low=1)), alpha_min)
    return (a[1:] - a[:-1]) / (1 - a[0])


def same_step_probability(schedule: str, num_steps: int, positions: int = 2, alpha_min: float = 1e-3) -> float:
    """The chance that, of ``positions`` given positions (a name and its pronoun: 2), at least two are revealed
    in the same ancestral step of K. Positions are revealed independently, at step k with probability q_k
    (``reveal_step_probabilities``), so all m land in different steps with probability m! e_m(q) (e_m: the
    elementary symmetric polynomial) and

        P(same step) = 1 - m! e_m(q_0, ..., q_{K-1}),   = sum_k q_k^2 for m = 2 (= 1/K, log-linear)."""
    q = reveal_step_probabilities(schedule, num_steps, alpha_min)
    m = check_int("positions", positions, low=2)
    e = torch.zeros(m + 1, dtype=torch.float64)                 # e_0..e_m, built one q_k at a time
    e[0] = 1.0
    for qk in q:
        e[1:] = e[1:] + qk * e[:-1].clone()
    return float(1 - math.factorial(m) * e[m])
