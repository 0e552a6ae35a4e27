"""Discrete flow matching (Campbell et al., 2024; Gat et al., 2024) with the masking probability path.

Time runs the other way from lesson 04: t = 0 is all [MASK], t = 1 is the data. Each token follows

    p_t(x^i | x_1) = kappa(t) [x^i = x_1^i] + (1 - kappa(t)) [x^i = MASK],

with a scheduler kappa (kappa(0) = 0, kappa(1) = 1). The denoiser p_{1|t}(x_1^i | x_t) is trained with
plain cross-entropy on the masked positions, and generation follows the velocity

    u_t(y | x_t) = kappa'(t) / (1 - kappa(t)) p_{1|t}(y | x_t)      (a masked position, y != MASK)

with Euler steps of size h: a masked token jumps to y with probability h kappa'/(1 - kappa) p(y | x_t).

**Relation to MDLM.** With kappa(t) = alpha(1 - t) this is MDLM's process read backwards in time; the
weight kappa'/(1 - kappa) of the ELBO is MDLM's w(1 - t); and for the linear scheduler kappa(t) = t the
Euler jump probability h / (1 - t) equals MDLM's ancestral reveal probability (alpha_s - alpha_t) /
(1 - alpha_t). The network is the same token denoiser, called with MDLM's time 1 - t.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .._checks import check_choice, check_int
from ..base import Estimate, Trajectory, model_device
from ..sampling.kernels import ancestral_step
from ..schedules import time_grid
from .masked import MaskedDiffusion

SCHEDULERS = ("linear", "cubic")


class MaskedFlowMatching:
    """Discrete flow matching on the masking path. ``scheduler``: "linear" (kappa = t) or "cubic"
    (kappa = 3t^2 - 2t^3); the denoiser and the SUBS parameterisation are MDLM's (``MaskedDiffusion``)."""

    def __init__(self, scheduler: str = "linear", mask_id: int = 1):
        self.scheduler = check_choice("scheduler", scheduler, SCHEDULERS)
        self.masking = MaskedDiffusion("loglinear", mask_id, alpha_min=0.0)
        self.mask_id = self.masking.mask_id

    def __repr__(self) -> str:
        return f"MaskedFlowMatching(scheduler={self.scheduler!r}, mask_id={self.mask_id})"

    def kappa(self, t: torch.Tensor) -> torch.Tensor:
        """kappa(t): the probability that a token has reached its data value by time t."""
        return t if self.scheduler == "linear" else 3 * t ** 2 - 2 * t ** 3

    def kappa_rate(self, t: torch.Tensor) -> torch.Tensor:
        """kappa'(t) / (1 - kappa(t)): the rate at which a masked token jumps (1 / (1 - t) for "linear")."""
        d = torch.ones_like(t) if self.scheduler == "linear" else 6 * t - 6 * t ** 2
        return d / (1 - self.kappa(t))

    def noisy(self, x1: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_t ~ p_t(. | x_1): each token is kept with probability kappa(t), masked otherwise."""
        x1 = self.masking.check_x0(x1)
        u = torch.rand(x1.shape, generator=generator).to(x1.device)
        keep = u < self.kappa(t.to(x1.device))[:, None]
        return torch.where(keep, x1, torch.full_like(x1, self.mask_id))

    def loss(self, model, x1: torch.Tensor, *, generator: torch.Generator | None = None,
             t: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy -log p_{1|t}(x_1^i | x_t) summed over the masked positions, per sequence, t ~ U[0, 1)."""
        x1 = self.masking.check_x0(x1)
        if t is None:
            t = 1 - self.masking.sample_t(x1.shape[0], generator)          # stratified, in [0, 1)
        t = t.to(x1.device)
        x_t = self.noisy(x1, t, generator)
        logp = self.masking.log_probs(model, x_t, (1 - t).clamp_min(1e-6))  # MDLM's time: 1 - t
        nll = -logp.gather(-1, x1[..., None])[..., 0]
        masked = x_t == self.mask_id
        return torch.where(masked, nll, torch.zeros_like(nll)).sum(-1)

    def nelbo(self, model, x1: torch.Tensor, *, generator: torch.Generator | None = None,
              n_samples: int = 64) -> Estimate:
        """The NELBO per sequence (nats): with kappa(t) = alpha(1 - t) the masking path is MDLM's process read
        backwards in time and the network is MDLM's denoiser, so the bound is ``MaskedDiffusion.nelbo``."""
        return self.masking.nelbo(model, x1, generator=generator, n_samples=n_samples)

    sample_options: dict[str, str] = {}

    def sample(self, model, num_samples: int, length: int, num_steps: int | None = None, *,
               generator: torch.Generator | None = None) -> Trajectory:
        """Euler steps of size h = 1 / num_steps from t = 0 (all [MASK]) to t = 1; a ``Trajectory`` of every state."""
        num_samples = check_int("num_samples", num_samples, low=1)
        length = check_int("length", length, low=1)
        num_steps = check_int("num_steps", length if num_steps is None else num_steps, low=1)
        return Trajectory(lambda traj: self._run(traj, model, num_samples, length, num_steps, generator))

    def _run(self, traj, model, B, L, K, generator) -> Iterator[torch.Tensor]:
        z = torch.full((B, L), self.mask_id, dtype=torch.long, device=model_device(model))
        mdlm_time = time_grid(K)                                             # MDLM's t = 1 - (flow time)
        yield z.clone()
        for k in range(K):
            t = torch.full((B,), 1 - mdlm_time[k].item(), dtype=torch.float64)     # flow time k / K
            logp = self.masking.log_probs(model, z, (1 - t).float().to(z.device))
            traj.network_calls += 1
            p_jump = (self.kappa_rate(t) / K).clamp(max=1.0)                 # h kappa' / (1 - kappa)
            if k == K - 1:
                p_jump = torch.ones_like(p_jump)                              # kappa(1) = 1: every mask goes
            z = ancestral_step(z, logp, p_jump, self.mask_id, generator)      # the Euler step is MDLM's step
            yield z.clone()
