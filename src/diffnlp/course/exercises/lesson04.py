"""Lesson 04's exercises: each checker with its reference solution.

1. (implement) LLaDA's confidence step: ``check_confidence_step``.
2. (derive) the chance that two positions are revealed in the same ancestral step: ``check_same_step_probability``.
3. (predict) which sampler writes more valid stories with K = 8 steps: ``check_validity_prediction``.
"""

from __future__ import annotations

import math

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, run_learner


# ---------------------------------------------------------------- 1. implement: one confidence step
def reference_confidence_step(z: torch.Tensor, x: torch.Tensor, log_probs: torch.Tensor, n_k: torch.Tensor,
                              mask_id: int) -> torch.Tensor:
    """LLaDA's low-confidence remasking, one step: of the masked positions of z (B, L), reveal the n_k (B,)
    whose drawn token x (B, L) has the highest probability log p(x) under log_probs (B, L, V)."""
    masked = z == mask_id
    score = log_probs.gather(-1, x[..., None])[..., 0]                       # log p(x^i | z_t): the draw's own
    score = torch.where(masked, score, torch.full_like(score, -math.inf))   # only masked positions compete
    rank = score.argsort(dim=1, descending=True, stable=True).argsort(dim=1)  # 0 = the most confident
    return torch.where(masked & (rank < n_k[:, None]), x, z)


def _confidence_cases():
    g = torch.Generator().manual_seed(0)
    B, L, V, M = 6, 12, 7, 1
    log_probs = torch.log_softmax(torch.randn(B, L, V, generator=g) * 2, -1)
    z = torch.where(torch.rand(B, L, generator=g) < 0.6, M, torch.randint(2, V, (B, L), generator=g))
    x = torch.randint(2, V, (B, L), generator=g)                               # draws, not always the argmax
    n_k = torch.tensor([0, 1, 2, 3, 4, 12])
    return z, x, log_probs, n_k, M


def check_confidence_step(fn) -> Verdict:
    """Exercise: ``fn(z, x, log_probs, n_k, mask_id)`` -> z_s, LLaDA's confidence step, checked against
    ``diffnlp.sampling.kernels.confidence_step`` on random inputs."""
    from ...sampling.kernels import confidence_step

    z, x, log_probs, n_k, M = _confidence_cases()
    got, err = run_learner(fn, z.clone(), x.clone(), log_probs.clone(), n_k.clone(), M)
    if err or got is None:
        return err or NOT_ATTEMPTED
    if not isinstance(got, torch.Tensor) or got.shape != z.shape:
        return Verdict("incorrect", f"return z_s, a tensor of shape {tuple(z.shape)} like z; got "
                                    f"{type(got).__name__} {tuple(getattr(got, 'shape', ()))}")
    want = confidence_step(z, x, log_probs, z == M, n_k)
    if torch.equal(got.long(), want):
        return Verdict("correct", "the n_k masked positions whose own draw is most probable are revealed; the others "
                                  "stay masked, and decided tokens never change")
    masked = z == M
    if (got[~masked] != z[~masked]).any():
        return Verdict("incorrect", "a position that was already decided changed: only masked positions compete")
    revealed = (got != M) & masked
    if not torch.equal(revealed.sum(1), n_k.clamp(max=masked.sum(1))):
        return Verdict("incorrect", f"reveal exactly n_k masked positions per row: you revealed "
                                    f"{revealed.sum(1).tolist()}, n_k = {n_k.tolist()}")
    if (got[revealed] != x[revealed]).any():
        return Verdict("incorrect", "a revealed position must take the token that was drawn there, x")
    by_max = confidence_step(z, x, log_probs.max(-1, keepdim=True).values.expand_as(log_probs), masked, n_k)
    if torch.equal(got.long(), by_max):
        return Verdict("incorrect", "you ranked positions by their most probable token; LLaDA ranks by the "
                                    "probability of the token actually drawn there, log p(x^i)")
    return Verdict("incorrect", "you revealed the right number of tokens, but not the most confident ones: rank "
                                "the masked positions by log_probs at x, highest first")


# ---------------------------------------------------------------- 2. derive: revealed in the same step
def reference_same_step_probability(alpha, num_steps: int) -> float:
    """P(two given positions are revealed in the same ancestral step of K), for a schedule ``alpha(t)``:
    a position is revealed at step k (t_k -> t_{k+1}, t_k = 1 - k/K) with probability
    q_k = P(still masked at t_k) * reveal prob = (1 - a(t_k))/(1 - a(1)) * (a(t_{k+1}) - a(t_k))/(1 - a(t_k)),
    which telescopes to (a(t_{k+1}) - a(t_k)) / (1 - a(1)); two independent positions meet with sum_k q_k^2."""
    K = num_steps
    t = [1 - k / K for k in range(K + 1)]
    a = [float(alpha(torch.tensor(tk, dtype=torch.float64))) for tk in t]
    q = [(a[k + 1] - a[k]) / (1 - a[0]) for k in range(K)]
    return sum(qk * qk for qk in q)


def check_same_step_probability(fn) -> Verdict:
    """Exercise: ``fn(alpha, K)`` -> the chance that two given positions (a name and its pronoun) are revealed
    in the same step of MDLM's ancestral sampler with K steps, for any schedule alpha(t). Checked against
    ``MaskedDiffusion.same_step_probability`` for the log-linear and the cosine schedule."""
    from ...processes.masked import MaskedDiffusion

    for schedule, K in (("loglinear", 8), ("loglinear", 3), ("cosine", 8), ("cosine", 32)):
        md = MaskedDiffusion(schedule, mask_id=1)
        got, err = run_learner(fn, md.alpha, K)
        if err or got is None:
            return err or NOT_ATTEMPTED
        try:
            got = float(got)
        except (TypeError, ValueError, RuntimeError):
            return Verdict("incorrect", f"return a number, got {type(got).__name__}")
        want = md.same_step_probability(K)
        if abs(got - want) <= 1e-9:
            continue
        t = torch.linspace(1, 0, K + 1, dtype=torch.float64)
        p = (md.alpha(t[1:]) - md.alpha(t[:-1])) / (1 - md.alpha(t[:-1]))
        if abs(got - 1 / K ** 2) < 1e-9:
            hint = " (1/K^2 is the chance that both land in one *given* step: add up over the K steps)"
        elif abs(got - float((p * p).sum())) < 1e-9:
            hint = (" (the reveal probability (alpha_s - alpha_t)/(1 - alpha_t) is conditional on being still "
                    "masked at t: multiply by that chance first)")
        else:
            hint = ""
        return Verdict("incorrect", f"{schedule} schedule, K = {K}: got {got:.5f}, expected {want:.5f}{hint}")
    return Verdict("correct", "q_k = (alpha(t_{k+1}) - alpha(t_k)) / (1 - alpha(1)) and P = sum_k q_k^2: exactly 1/K "
                              "for the log-linear schedule (each position picks a step uniformly), 1/8 at K = 8")


# ---------------------------------------------------------------- 3. predict: validity at K = 8
CHOICES = ("ancestral", "confidence", "same")


def reference_validity_prediction(measured: dict) -> str:
    """The answer the measurement gives: the strategy whose share of valid stories is higher by more than
    3 standard errors of the difference, or "same" (within noise). ``measured``: {"ancestral": StoryReport,
    "confidence": StoryReport}, both at K = 8."""
    a, c = measured["ancestral"], measured["confidence"]
    se = math.hypot(a.valid_stderr, c.valid_stderr)
    if a.valid - c.valid > 3 * se:
        return "ancestral"
    if c.valid - a.valid > 3 * se:
        return "confidence"
    return "same"


def check_validity_prediction(guess, measured: dict) -> Verdict:
    """Exercise: before the sweep runs, guess which sampler writes more valid stories with K = 8 steps for 32
    tokens: "ancestral", "confidence" or "same" (within noise). ``measured``: the sweep's StoryReports at
    K = 8, {"ancestral": ..., "confidence": ...}."""
    if guess is None:
        return NOT_ATTEMPTED
    if not isinstance(guess, str) or guess.strip().lower() not in CHOICES:
        return Verdict("incorrect", f"answer one of {', '.join(map(repr, CHOICES))}; got {guess!r}")
    try:
        a, c = measured["ancestral"], measured["confidence"]
        numbers = (f"measured at K = 8: ancestral {a.valid:.0%} +- {a.valid_stderr:.0%}, confidence "
                   f"{c.valid:.0%} +- {c.valid_stderr:.0%} valid")
        truth = reference_validity_prediction(measured)
    except (KeyError, TypeError, AttributeError):
        return Verdict("incorrect", "pass the sweep's reports at K = 8: {'ancestral': report, 'confidence': report}")
    why = {"ancestral": "confidence commits to the easy tokens first, and at K = 8 it takes 4 tokens a step: "
                        "the three pronouns look alike to it, so they are picked together and drawn independently",
           "confidence": "here the confidence sampler did better",
           "same": "the two are within noise here"}[truth]
    if guess.strip().lower() == truth:
        return Verdict("correct", f"{numbers}. {why}")
    return Verdict("incorrect", f"{numbers}: the answer is {truth!r}. {why}")
