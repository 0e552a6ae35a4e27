"""Lesson 05's exercises: each checker with its reference solution."""

from __future__ import annotations

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, run_learner


def reference_remask_reveal_probability(alpha_t: float, alpha_s: float, sigma: float) -> float:
    """ReMDM: a masked token is revealed with probability (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)."""
    return (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)


def check_remask_reveal_probability(fn) -> Verdict:
    """Exercise: with remasking probability sigma, the reveal probability that keeps q(z_s | x)."""
    from ...processes.masked import MaskedDiffusion

    md = MaskedDiffusion("loglinear")
    for t, s, eta in ((0.9, 0.7, 0.05), (0.5, 0.4, 0.1), (0.2, 0.1, 0.02), (0.6, 0.3, 0.0)):
        sigma, want = md.remask_probabilities(torch.tensor([t], dtype=torch.float64),
                                              torch.tensor([s], dtype=torch.float64), eta)
        a_t, a_s = float(md.alpha(torch.tensor(t))), float(md.alpha(torch.tensor(s)))
        got, err = run_learner(fn, a_t, a_s, float(sigma))
        if err or got is None:
            return err or NOT_ATTEMPTED
        try:
            got = float(got)
        except (TypeError, ValueError, RuntimeError):
            return Verdict("incorrect", f"return a number, got {type(got).__name__}")
        if not abs(got - float(want)) <= 1e-6:                # NaN fails too
            if sigma > 0 and abs(got - (a_s - a_t) / (1 - a_t)) < 1e-6:
                return Verdict("incorrect", "that is MDLM's reveal probability: with remasking, a decided token "
                                            "leaves with probability sigma, so more masks must be revealed to keep "
                                            "q(z_s clean) = alpha_s")
            return Verdict("incorrect", f"at alpha_t={a_t:.3f}, alpha_s={a_s:.3f}, sigma={float(sigma):.3f} you "
                                        f"return {got:.4f}, expected {float(want):.4f}")
    return Verdict("correct", "(1 - sigma) alpha_t + p (1 - alpha_t) = alpha_s: remasking keeps the marginals")
