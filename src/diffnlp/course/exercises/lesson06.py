"""Lesson 06's exercises: each checker with its reference solution."""

from __future__ import annotations

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, compare, run_learner


def reference_guided_log_probs(cond: torch.Tensor, uncond: torch.Tensor, w: float) -> torch.Tensor:
    """log p_w = log_softmax((1 - w) log p(x | z) + w log p(x | z, c)) (``guidance.ClassifierFreeGuidance``)."""
    from ...sampling.guidance import ClassifierFreeGuidance

    return ClassifierFreeGuidance(lambda z, t: cond, lambda z, t: uncond, w)(None)


def check_guided_log_probs(fn) -> Verdict:
    """Exercise: classifier-free guidance of one token's log-probabilities (..., V) at scale w."""
    g = torch.Generator().manual_seed(5)
    cond = torch.log_softmax(torch.randn(4, 6, generator=g, dtype=torch.float64) * 2, -1)
    uncond = torch.log_softmax(torch.randn(4, 6, generator=g, dtype=torch.float64) * 2, -1)
    for w in (0.0, 1.0, 0.5, 2.5):
        got, err = run_learner(fn, cond, uncond, w)
        if err or got is None:
            return err or NOT_ATTEMPTED
        want = reference_guided_log_probs(cond, uncond, w)
        if isinstance(got, torch.Tensor) and got.shape == want.shape and w not in (0.0, 1.0):
            if torch.allclose(torch.log_softmax(got.double(), -1), want, atol=1e-6) and \
                    not torch.allclose(got.double(), want, atol=1e-6):
                return Verdict("incorrect", f"at w={w} your values are right up to a constant per token: normalise "
                                            "them (torch.log_softmax) so that the probabilities sum to 1")
            mixed = torch.log((1 - w) * uncond.exp() + w * cond.exp())
            if torch.allclose(got.double(), mixed, atol=1e-6) or got.isnan().any():
                return Verdict("incorrect", "you mixed probabilities; guidance mixes *log*-probabilities "
                                            "(a product of powers p(x|z)^(1-w) p(x|z,c)^w)")
        v = compare(got, want, f"the guided log-probabilities at w={w}", atol=1e-6)
        if not v.correct:
            return v
    return Verdict("correct", "w = 0 is unconditional, w = 1 conditional, and w = 2.5 sharpens toward the condition")
