"""Masked diffusion's NELBO computed exactly, by enumerating every mask of a short sequence: the yardstick
that ``MaskedDiffusion``'s Monte-Carlo loss and bound are tested against (a mixin of ``MaskedDiffusion``)."""

from __future__ import annotations

import math

import torch

from .. import schedules
from .._checks import check_choice, check_int
from ..base import is_time_conditioned


class ExactNelbo:
    """The exact weights c_k, ``exact_nelbo`` and ``exact_loss`` of ``MaskedDiffusion`` (which supplies
    ``alpha``, ``schedule``, ``alpha_min``, ``mask_id``, ``check_x0`` and ``log_probs``)."""

    def mask_weights(self, length: int) -> torch.Tensor:
        """c_k for k = 1..L: the weight of one mask with k positions in the exact NELBO (float64, (L,)),

            c_k = int_0^{1 - alpha(1)} u^(k-1) (1 - u)^(L-k) du,   = (k-1)! (L-k)! / L! when alpha(1) = 0.

        With alpha(1) = 0 the C(L, k) masks of size k, each summing k terms, weigh C(L, k) k c_k = 1 in
        total: every "number of tokens already known" counts once, as in an any-order AR model."""
        L = check_int("length", length, low=1)
        u_max = 1 - float(self.alpha(torch.ones(1, dtype=torch.float64)))
        if u_max >= 1:
            c = [math.exp(math.lgamma(k) + math.lgamma(L - k + 1) - math.lgamma(L + 1)) for k in range(1, L + 1)]
        else:
            from scipy.special import beta, betainc

            c = [float(betainc(k, L - k + 1, u_max) * beta(k, L - k + 1)) for k in range(1, L + 1)]
        return torch.tensor(c, dtype=torch.float64)


    @torch.no_grad()
    def exact_loss(self, model, x0: torch.Tensor, weighting: str = "nelbo") -> torch.Tensor:
        """E_t E_{z_t}[``loss(model, x0, weighting=...)``] per sequence by enumerating the 2^L masks:
        sum_M weight_|M| sum_{i in M} -log p_theta(x^i | x outside M), weight c_k (NELBO) or d_k (token)."""
        x0, token = self.check_x0(x0), check_choice("weighting", weighting, ("nelbo", "token")) == "token"
        L = x0.shape[1]           # c_k, or d_k = P(k) (L / k) / C(L, k) (``schedules.token_loss_weights``)
        weights = schedules.token_loss_weights(self.schedule, L, self.alpha_min) if token else self.mask_weights(L)
        return self._sum_over_masks(model, x0, weights.tolist())


    @torch.no_grad()
    def exact_nelbo(self, model, x0: torch.Tensor) -> torch.Tensor:
        """The NELBO per sequence computed exactly by enumerating all 2^L masks (short sequences only).

        Substituting u = 1 - alpha(t) (the masking probability) gives w(t) dt = du / u, so a mask M
        with k = |M| positions carries the weight c_k = int_0^{1 - alpha(1)} u^(k-1) (1 - u)^(L-k) du,
        whatever the schedule, and

            NELBO(x) = sum_M c_|M| sum_{i in M} -log p_theta(x^i | x outside M).

        With alpha_min = 0 (alpha(1) = 0) c_k = (k-1)! (L-k)! / L!, and with exact conditionals this is
        -log p(x) (the average over orders of autoregressive factorisations).
        """
        x0 = self.check_x0(x0)
        return self._sum_over_masks(model, x0, self.mask_weights(x0.shape[1]).tolist())


    def _sum_over_masks(self, model, x0: torch.Tensor, c: list[float]) -> torch.Tensor:
        """sum_M c[|M| - 1] sum_{i in M} -log p_theta(x^i | x outside M), over all 2^L - 1 non-empty masks."""
        if is_time_conditioned(model):
            raise ValueError("exact_nelbo needs a model without time conditioning: the sum over masks assumes the "
                             "prediction depends on z_t only")
        if (L := x0.shape[1]) > 16:
            raise ValueError(f"exact_nelbo enumerates 2^L masks; length L={L} is too long (at most 16)")
        B = x0.shape[0]
        masks = torch.tensor([[(m >> i) & 1 for i in range(L)] for m in range(1, 2 ** L)], dtype=torch.bool)
        total = torch.zeros(B, dtype=torch.float64)
        for b in range(B):
            z = torch.where(masks, torch.full((len(masks), L), self.mask_id), x0[b].cpu())
            t = torch.ones(len(masks))
            logp = self.log_probs(model, z.to(x0.device), t.to(x0.device)).cpu().double()
            nll = -logp.gather(-1, x0[b].cpu().expand(len(masks), L)[..., None])[..., 0]
            per_mask = torch.where(masks, nll, torch.zeros_like(nll)).sum(-1)
            weights = torch.tensor([c[k - 1] for k in masks.sum(-1).tolist()], dtype=torch.float64)
            total[b] = (weights * per_mask).sum()
        return total
