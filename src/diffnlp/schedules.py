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
