"""Classifier-free guidance for token denoisers (Ho and Salimans, 2022, applied to masked diffusion).

One network trained with and without the condition c (the condition dropped at random) gives both
p(x^i | z_t, c) and p(x^i | z_t). Guidance with scale w mixes them in log space:

    log p_w(x^i | z_t, c) = log_softmax( (1 - w) log p(x^i | z_t) + w log p(x^i | z_t, c) ),

so w = 0 is unconditional, w = 1 conditional, and w > 1 sharpens toward c, in effect multiplying by
p(c | x)^(w - 1) (DESIGN.md's scale convention). Control success is judged on the samples, by the grammar.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_float

LOG_FLOOR = -1e9      # impossible tokens: a finite floor, so (1 - w)(-inf) never meets w(-inf)


class ClassifierFreeGuidance(nn.Module):
    """A token denoiser ``model(z_t, t)`` returning guided log-probabilities (B, L, V) from two denoisers
    called the same way: ``conditional`` (with the condition fixed) and ``unconditional``."""

    def __init__(self, conditional, unconditional, scale: float = 1.0):
        super().__init__()
        if not callable(conditional) or not callable(unconditional):
            raise TypeError("conditional and unconditional must be callables model(z_t, t) -> logits")
        self.conditional, self.unconditional = conditional, unconditional
        self.scale = check_float("scale", scale, 0.0, 1e3)
        self.config = getattr(conditional, "config", None)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        w = self.scale
        if w == 0.0:                                   # the endpoints call one network only
            return torch.log_softmax(self.unconditional(z_t, t).double(), -1)
        cond = torch.log_softmax(self.conditional(z_t, t).double(), -1).clamp_min(LOG_FLOOR)
        if w == 1.0:
            return cond
        uncond = torch.log_softmax(self.unconditional(z_t, t).double(), -1).clamp_min(LOG_FLOOR)
        return torch.log_softmax((1 - w) * uncond + w * cond, -1)
