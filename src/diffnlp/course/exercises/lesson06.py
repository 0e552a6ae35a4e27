"""Lesson 06's exercises: each checker with its reference solution."""

from __future__ import annotations

import itertools
import math

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, compare, run_learner


# ---------------------------------------------------------------- 1. derive: SEDD's true score (absorbing)
def reference_true_score(x0_probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """The true concrete score at a masked position, s_y = r p(x_0^i = y | z_t) with r = alpha / (1 - alpha)
    (``ScoreEntropy.true_log_scores``, in log form)."""
    from ...processes.sedd import ScoreEntropy

    a = torch.as_tensor(alpha, dtype=torch.float64)
    t = (1 - a) / (1 - 1e-3)                                 # the time at which the loglinear alpha(t) = alpha
    log_s = ScoreEntropy("loglinear").true_log_scores(torch.log(x0_probs.double())[None, None], t.reshape(1))
    return log_s[0, 0].exp()


def _score_cases():
    """Brute force on a tiny distribution (2 positions, 3 tokens, [MASK] = 3): for z_t = (MASK, visible) the
    ratio of marginals p_t(z with z^0 = y) / p_t(z), and the posterior p(x_0^0 = y | z_t) it should be built from."""
    g = torch.Generator().manual_seed(6)
    p = torch.rand(9, generator=g, dtype=torch.float64) ** 2 + 0.02
    p = p / p.sum()
    seqs = list(itertools.product(range(3), repeat=2))

    def marginal(z, a):                                      # p_t(z) = sum_x p(x) prod_j q(z_j | x_j)
        total = 0.0
        for px, x in zip(p.tolist(), seqs):
            q = 1.0
            for zj, xj in zip(z, x):
                q *= a if zj == xj else (1 - a) if zj == 3 else 0.0
            total += px * q
        return total

    cases = []
    for a, visible in ((0.3, 0), (0.8, 2), (0.05, 1), (0.5, 1)):
        z = (3, visible)
        post = torch.tensor([sum(px for px, x in zip(p.tolist(), seqs) if x == (y, visible)) for y in range(3)],
                            dtype=torch.float64)
        post = post / post.sum()                             # p(x_0^0 = y | z_t): the visible token is exact
        ratio = torch.tensor([marginal((y, visible), a) / marginal(z, a) for y in range(3)], dtype=torch.float64)
        cases.append((post, a, ratio))
    return cases


def check_true_score(fn) -> Verdict:
    """Exercise (derive): the true concrete score s_y = p_t(z with z^i = y) / p_t(z) at a masked position, from
    the posterior ``x0_probs`` = p(x_0^i = y | z_t) (V,) and the chance ``alpha`` that a token is still clean.
    Checked against the ratio of marginals computed by brute force on a tiny distribution."""
    for post, a, ratio in _score_cases():
        got, err = run_learner(fn, post.clone(), a)
        if err or got is None:
            return err or NOT_ATTEMPTED
        if not isinstance(got, torch.Tensor):
            try:
                got = torch.as_tensor(got, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                return Verdict("incorrect", f"return a tensor of V scores, got {type(got).__name__}")
        if got.shape == ratio.shape:
            g = got.double()
            wrong = {"the posterior itself: the score is a ratio of marginals p_t, not a probability, so it also "
                     "carries the chance of being clean at y against being masked": post,
                     "the ratio the wrong way up: at z^i = y the token was kept (probability alpha), at "
                     "z^i = [MASK] it was masked (probability 1 - alpha)": (1 - a) / a * post,
                     "alpha p: you have the chance of z^i = y, now divide by the chance of z^i = [MASK]": a * post}
            for why, bad in wrong.items():
                if torch.allclose(g, bad, atol=1e-9) and not torch.allclose(bad, ratio, atol=1e-9):
                    return Verdict("incorrect", f"at alpha = {a} you return {why}")
        v = compare(got, ratio, f"the scores at alpha = {a}", atol=1e-9)
        if not v.correct:
            return v
    return Verdict("correct", "s_y = alpha / (1 - alpha) p(x_0^i = y | z_t) = r(t) p(x_0^i = y | z_t), equal to the "
                              "brute-force ratio of marginals; with it the score entropy becomes MDLM's loss")


# ---------------------------------------------------------------- 2. implement: classifier-free guidance
def reference_guided_log_probs(cond: torch.Tensor, uncond: torch.Tensor, w: float) -> torch.Tensor:
    """log p_w = log_softmax((1 - w) log p(x | z) + w log p(x | z, c)) (``guidance.ClassifierFreeGuidance``)."""
    from ...sampling.guidance import ClassifierFreeGuidance

    return ClassifierFreeGuidance(lambda z, t: cond, lambda z, t: uncond, w)(None)


def check_guided_log_probs(fn) -> Verdict:
    """Exercise (implement): classifier-free guidance of one token's log-probabilities (..., V) at scale w."""
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


# ---------------------------------------------------------------- 3. predict: where guidance breaks validity
def reference_cfg_break(reports: dict):
    """The answer the sweep gives: the smallest w > 1 whose share of valid stories is below w = 1's by more
    than 3 standard errors of the difference, or "none". ``reports``: {w: ControlReport}."""
    base = reports[1.0]
    for w in sorted(k for k in reports if k > 1):
        r = reports[w]
        se = math.hypot(math.sqrt(base.valid * (1 - base.valid) / base.n), math.sqrt(r.valid * (1 - r.valid) / r.n))
        if base.valid - r.valid > 3 * se:
            return w
    return "none"


def check_cfg_break(guess, reports: dict) -> Verdict:
    """Exercise (predict): before the sweep runs, guess the smallest guidance scale w among those swept (above 1)
    at which validity falls clearly (3 standard errors) below the conditional model's (w = 1), or "none".
    ``reports``: the sweep's ControlReports, {w: report}."""
    if guess is None:
        return NOT_ATTEMPTED
    try:
        truth = reference_cfg_break(reports)
        numbers = ", ".join(f"w = {w:g}: {r.valid:.0%} valid" for w, r in sorted(reports.items()))
    except (KeyError, TypeError, AttributeError, ZeroDivisionError):
        return Verdict("incorrect", "pass the sweep's reports: {w: control_report(...)}, including w = 1")
    swept = sorted(w for w in reports if w > 1)
    if isinstance(guess, str):
        guess = guess.strip().lower()
        if guess != "none":
            return Verdict("incorrect", f"answer one of the swept scales {swept} or 'none'; got {guess!r}")
    elif isinstance(guess, (int, float)) and not isinstance(guess, bool) and float(guess) in swept:
        guess = float(guess)
    else:
        return Verdict("incorrect", f"answer one of the swept scales {swept} or 'none'; got {guess!r}")
    why = ("guidance multiplies by p(c | x)^(w - 1): the larger w, the more it rewards tokens that go with the "
           "museum whether or not they fit the rest of the story")
    if guess == truth:
        return Verdict("correct", f"{numbers}. {why}")
    if truth == "none":
        return Verdict("incorrect", f"{numbers}: no swept scale lowered validity by 3 standard errors")
    if guess == "none" or guess > truth:
        return Verdict("incorrect", f"{numbers}: validity breaks earlier, at w = {truth:g}. {why}")
    return Verdict("incorrect", f"{numbers}: at w = {guess:g} validity is still within noise of w = 1's; it breaks "
                                f"at w = {truth:g}")


# ---------------------------------------------------------------- 4. predict: editing in one step
FILL_CHOICES = ("edit", "object", "both", "neither")


def reference_one_step_fill(measured: dict) -> str:
    """Which fills lose validity when every masked slot is drawn in one step: those whose share of valid fills
    at num_steps = 1 is below the one-slot-per-step share by more than 3 standard errors of the difference.
    ``measured``: {"edit": (report at 1 step, report at one slot per step), "object": (...)} (StoryReports)."""
    drops = []
    for key in ("edit", "object"):
        one, many = measured[key]
        se = math.hypot(one.valid_stderr, many.valid_stderr)
        if many.valid - one.valid > 3 * se:
            drops.append(key)
    return {0: "neither", 2: "both"}.get(len(drops), drops[0] if drops else "neither")


def check_one_step_fill(guess, measured: dict) -> Verdict:
    """Exercise (predict): which of the two fills, the found -> lost edit (three slots masked) or the object
    (two slots masked), loses validity when ``num_steps=1`` draws all its slots at once: "edit", "object",
    "both" or "neither"? ``measured``: {"edit": (report_1_step, report_one_per_step), "object": (...)}."""
    if guess is None:
        return NOT_ATTEMPTED
    if not isinstance(guess, str) or guess.strip().lower() not in FILL_CHOICES:
        return Verdict("incorrect", f"answer one of {', '.join(map(repr, FILL_CHOICES))}; got {guess!r}")
    try:
        truth = reference_one_step_fill(measured)
        numbers = "; ".join(f"{k}: {measured[k][0].valid:.0%} valid in one step, {measured[k][1].valid:.0%} one "
                            "slot per step" for k in ("edit", "object"))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        return Verdict("incorrect", "pass the measurements: {'edit': (report_1, report_n), 'object': (...)}")
    why = ("the two mentions of the object depend on each other, and one step draws them independently; the "
           "edit's three slots depend only on the visible verb 'loses', so drawing them together is safe")
    if guess.strip().lower() == truth:
        return Verdict("correct", f"{numbers}. " + (why if truth == "object" else ""))
    return Verdict("incorrect", f"{numbers}: the answer is {truth!r}. " + (why if truth == "object" else ""))
