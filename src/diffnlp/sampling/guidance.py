"""Classifier-free guidance for token denoisers (Ho and Salimans, 2022, applied to masked diffusion).

One network trained with and without the condition c (the condition dropped at random) gives both
p(x^i | z_t, c) and p(x^i | z_t). Guidance with scale w mixes them in log space:

    log p_w(x^i | z_t, c) = log_softmax( (1 - w) log p(x^i | z_t) + w log p(x^i | z_t, c) ),

so w = 0 is unconditional, w = 1 conditional, and w > 1 sharpens toward c, in effect multiplying by
p(c | x)^(w - 1) (the course's scale convention, docs/notation.md). Control success is judged on the
samples, by the grammar.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_float, check_int
from ..runtime import accum_dtype

LOG_FLOOR = -1e9      # impossible tokens: a finite floor, so (1 - w)(-inf) never meets w(-inf)


class Conditioned(nn.Module):
    """A class-conditional Transformer (``num_classes > 0``) with its label fixed, called as a plain token
    denoiser ``model(z_t, t)``: ``label`` is a class id, or None for the unconditional ("no label") model."""

    def __init__(self, model, label: int | None):
        super().__init__()
        n = getattr(getattr(model, "config", None), "num_classes", 0)
        if not n:
            raise ValueError("model must be a class-conditional Transformer (config.num_classes > 0)")
        if label is not None:
            check_int("label", label, low=0, high=n - 1)
        self.model, self.label = model, label
        self.config = model.config

    def forward(self, z_t: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        label = None if self.label is None else torch.full((z_t.shape[0],), self.label, dtype=torch.long,
                                                          device=z_t.device)
        return self.model(z_t, t, label=label)


def _log_probs(denoiser, z_t, t) -> torch.Tensor:
    """log_softmax of a denoiser's logits, in float64 on the CPU and float32 elsewhere (``runtime.accum_dtype``)."""
    logits = denoiser(z_t, t)
    return torch.log_softmax(logits.to(accum_dtype(logits.device)), -1)


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
            return _log_probs(self.unconditional, z_t, t)
        cond = _log_probs(self.conditional, z_t, t).clamp_min(LOG_FLOOR)
        if w == 1.0:
            return cond
        uncond = _log_probs(self.unconditional, z_t, t).clamp_min(LOG_FLOOR)
        return torch.log_softmax((1 - w) * uncond + w * cond, -1)        # (1 - w) log p(x | z) + w log p(x | z, c)

    @classmethod
    def for_label(cls, model, label: int, scale: float = 1.0) -> ClassifierFreeGuidance:
        """Guidance toward class ``label`` with one class-conditional Transformer (``num_classes > 0``):
        the conditional denoiser is the model with the label, the unconditional one without it."""
        check_int("label", label, low=0)
        return cls(Conditioned(model, label), Conditioned(model, None), scale)


@dataclass
class ClassifierGuidance:
    """Plug-and-play control (Diffusion-LM, section 4.3): after each reverse step, ``steps`` gradient
    steps on x_{t-1} up the classifier's log-probability of the wanted attribute,

        x_{t-1} <- x_{t-1} + scale (1 - abar_{t-1}) grad_x log p(c = target | x_{t-1}, t-1).

    The factor 1 - abar (the noise variance left) makes the step shrink to 0 as the sample becomes
    clean, so the diffusion keeps the last word on fluency. ``scale`` = 0 is unguided; larger scales
    trade fluency for control. ``classifier(x_t, timesteps)`` returns logits (B, C)."""

    classifier: nn.Module
    target: int
    scale: float = 1.0
    steps: int = 1

    def __post_init__(self):
        n = getattr(getattr(self.classifier, "config", None), "num_classes", None)
        check_int("target", self.target, low=0, high=None if n is None else n - 1)
        check_float("scale", self.scale, low=0.0)
        check_int("steps", self.steps, low=1)
        if self.scale == float("inf"):
            raise ValueError("scale=inf is out of range; allowed: a finite scale >= 0")

    def apply(self, x: torch.Tensor, timestep: int, abar: float) -> torch.Tensor:
        """``steps`` times: x <- x + scale (1 - abar) grad_x log p(target | x, t), with the noisy classifier."""
        if self.scale == 0 or abar >= 1:
            return x
        t = torch.full((x.shape[0],), max(int(timestep), 0), dtype=torch.long, device=x.device)
        for _ in range(self.steps):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                logp = torch.log_softmax(self.classifier(xg, t), dim=-1)[:, self.target].sum()
                (grad,) = torch.autograd.grad(logp, xg)
            x = x + self.scale * (1 - abar) * grad
        return x.detach()
