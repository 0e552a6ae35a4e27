"""Lesson 04's exercises: each checker with its reference solution."""

from __future__ import annotations

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, compare, run_learner


def reference_reveal_probability(alpha_t: float, alpha_s: float) -> float:
    """A token still masked at time t is revealed by time s < t with probability (alpha_s - alpha_t) / (1 - alpha_t)."""
    return (alpha_s - alpha_t) / (1 - alpha_t)


def check_reveal_probability(fn) -> Verdict:
    """Exercise: the probability that a masked token is unmasked in one ancestral step from t to s,
    given alpha_t = alpha(t) and alpha_s = alpha(s)."""
    from ...processes.masked import MaskedDiffusion

    md = MaskedDiffusion("cosine", mask_id=1)
    for t, s in ((1.0, 0.75), (0.5, 0.25), (0.1, 0.0), (0.9, 0.89)):
        a_t, a_s = (float(md.alpha(torch.tensor(v, dtype=torch.float64))) for v in (t, s))
        got, err = run_learner(fn, a_t, a_s)
        if err or got is None:
            return err or NOT_ATTEMPTED
        want = float(md.reveal_probability(torch.tensor(t, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)))
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Verdict("incorrect", f"return a number, got {type(got).__name__}")
        if abs(got - want) > 1e-6:
            hint = " (hint: it is a probability *given* that the token is still masked at t)" \
                if abs(got - (a_s - a_t)) < 1e-6 else ""
            return Verdict("incorrect", f"from t={t} to s={s}: got {got:.4f}, expected {want:.4f}{hint}")
    return Verdict("correct", "(alpha_s - alpha_t) / (1 - alpha_t): at the last step (alpha_s = 1) every mask goes")


def reference_mask_weights(length: int) -> torch.Tensor:
    """c_k = (k-1)! (L-k)! / L! for k = 1..L."""
    import math

    return torch.tensor([math.factorial(k - 1) * math.factorial(length - k) / math.factorial(length)
                         for k in range(1, length + 1)], dtype=torch.float64)


def check_mask_weights(fn) -> Verdict:
    """Exercise: the weight c_k of one mask of size k in the exact NELBO (alpha_min = 0), for k = 1..L."""
    from ...processes.masked import MaskedDiffusion

    md = MaskedDiffusion("loglinear", mask_id=1, alpha_min=0.0)
    for L in (1, 3, 8):
        got, err = run_learner(fn, L)
        if err or got is None:
            return err or NOT_ATTEMPTED
        if not isinstance(got, torch.Tensor):
            got = torch.as_tensor(got, dtype=torch.float64)
        v = compare(got.double(), md.mask_weights(L), f"c_k for L={L}", atol=1e-9)
        if not v.correct:
            return v
    return Verdict("correct", "c_k = (k-1)! (L-k)! / L!: the C(L,k) masks of size k, k terms each, weigh 1 in all")
