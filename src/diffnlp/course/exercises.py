"""Checkers for the notebooks' "Try it" exercises, and the reference solutions.

A checker takes the learner's answer and returns a ``Verdict`` whose status is "not attempted"
(the stub still raises NotImplementedError or returns None), "correct" or "incorrect"; it never
raises. The reference solutions live here so the tests can show every checker accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..processes.gaussian import GaussianDiffusion


@dataclass
class Verdict:
    """A checker's answer: ``status`` and a ``message`` that says what is right or what to fix."""

    status: str  # "not attempted", "correct" or "incorrect"
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __repr__(self) -> str:
        mark = {"correct": "✅", "incorrect": "❌", "not attempted": "⏳"}[self.status]
        return f"{mark} {self.status}: {self.message}"

    _repr_pretty_ = lambda self, p, cycle: p.text(repr(self))  # noqa: E731


NOT_ATTEMPTED = Verdict("not attempted", "replace `raise NotImplementedError` (or `None`) with your answer, "
                                         "then run the cell again")


def _call(fn, *args):
    """Run the learner's function; None means the stub was not filled in."""
    if fn is None:
        return None, None
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, None
    except Exception as exc:  # the learner's code failed: report it, never raise
        return None, Verdict("incorrect", f"your function raised {type(exc).__name__}: {exc}")


def _compare(got, want, what: str, atol: float = 1e-4) -> Verdict:
    if not isinstance(got, torch.Tensor):
        return Verdict("incorrect", f"{what} should be a torch.Tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        return Verdict("incorrect", f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    err = float((got.double() - want.double()).abs().max())
    if not err <= atol:                                   # NaN fails too
        if err != err:
            return Verdict("incorrect", f"{what} contains NaN")
        return Verdict("incorrect", f"{what} is off by up to {err:.3g} (tolerance {atol:g})")
    return Verdict("correct", f"{what} matches the package (max error {err:.1e})")


# ---------------------------------------------------------------- lesson 01
def reference_add_noise(x0: torch.Tensor, noise: torch.Tensor, abar_t: float) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
    return abar_t ** 0.5 * x0 + (1 - abar_t) ** 0.5 * noise


def check_add_noise(fn) -> Verdict:
    """Exercise: write x_t from x_0, eps and abar_t (a float)."""
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g)
    d = GaussianDiffusion()
    for t in (0, 250, 999):
        got, err = _call(fn, x0, noise, float(d.alphas_cumprod[t]))
        if err or got is None:
            return err or NOT_ATTEMPTED
        v = _compare(got, d.add_noise(x0, noise, t), f"x_t at t={t}")
        if not v.correct:
            return v
    return Verdict("correct", "x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps at t = 0, 250 and 999")


def reference_half_signal_t(diffusion: GaussianDiffusion) -> int:
    """The first t at which abar_t <= 0.5: half the signal's variance is gone."""
    return int((diffusion.alphas_cumprod <= 0.5).nonzero()[0])


def check_half_signal_t(t, schedule: str = "linear") -> Verdict:
    """Exercise: at which timestep does abar_t first drop to 0.5 or below?"""
    if t is None:
        return NOT_ATTEMPTED
    if isinstance(t, torch.Tensor):
        t = t.item()
    if not isinstance(t, int) or isinstance(t, bool):
        return Verdict("incorrect", f"give an int timestep, got {type(t).__name__} {t!r}")
    want = reference_half_signal_t(GaussianDiffusion(beta_schedule=schedule))
    if t == want:
        return Verdict("correct", f"abar_{t} is the first value <= 0.5 under the {schedule} schedule")
    hint = "later" if t < want else "earlier"
    return Verdict("incorrect", f"t={t} is not it: look {hint} (compare diffusion.alphas_cumprod with 0.5)")


# ---------------------------------------------------------------- lesson 02
def reference_posterior_mean(x_t: torch.Tensor, x0: torch.Tensor, abar_t: float, abar_prev: float) -> torch.Tensor:
    """mu = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t."""
    alpha_t = abar_t / abar_prev
    beta_t = 1 - alpha_t
    return abar_prev ** 0.5 * beta_t / (1 - abar_t) * x0 + alpha_t ** 0.5 * (1 - abar_prev) / (1 - abar_t) * x_t


def check_posterior_mean(fn) -> Verdict:
    """Exercise: the mean of q(x_{t-1} | x_t, x_0) from x_t, x_0, abar_t and abar_{t-1}."""
    g = torch.Generator().manual_seed(2)
    x_t, x0 = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g)
    d = GaussianDiffusion()
    for t in (10, 100, 900):
        got, err = _call(fn, x_t, x0, float(d.alphas_cumprod[t]), float(d.alphas_cumprod[t - 1]))
        if err or got is None:
            return err or NOT_ATTEMPTED
        v = _compare(got, d.posterior(x_t, x0, t)[0], f"posterior mean at t={t}")
        if not v.correct:
            return v
    return Verdict("correct", "your posterior mean matches GaussianDiffusion.posterior at t = 10, 100, 900")


def reference_eps_from_v(x_t: torch.Tensor, v: torch.Tensor, abar_t: float) -> torch.Tensor:
    """eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v."""
    return (1 - abar_t) ** 0.5 * x_t + abar_t ** 0.5 * v


def check_eps_from_v(fn) -> Verdict:
    """Exercise: recover eps from x_t and a v-prediction."""
    g = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g)
    d = GaussianDiffusion()
    for t in (10, 500, 990):
        x_t = d.add_noise(x0, eps, t)
        v = d.velocity(x0, eps, t)
        got, err = _call(fn, x_t, v, float(d.alphas_cumprod[t]))
        if err or got is None:
            return err or NOT_ATTEMPTED
        verdict = _compare(got, eps, f"eps at t={t}")
        if not verdict.correct:
            return verdict
    return Verdict("correct", "eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v recovered the noise exactly")


# ---------------------------------------------------------------- lesson 04
def reference_reveal_probability(alpha_t: float, alpha_s: float) -> float:
    """A token still masked at time t is revealed by time s < t with probability (alpha_s - alpha_t) / (1 - alpha_t)."""
    return (alpha_s - alpha_t) / (1 - alpha_t)


def check_reveal_probability(fn) -> Verdict:
    """Exercise: the probability that a masked token is unmasked in one ancestral step from t to s,
    given alpha_t = alpha(t) and alpha_s = alpha(s)."""
    from ..processes.masked import MaskedDiffusion

    md = MaskedDiffusion("cosine", mask_id=1)
    for t, s in ((1.0, 0.75), (0.5, 0.25), (0.1, 0.0), (0.9, 0.89)):
        a_t, a_s = (float(md.alpha(torch.tensor(v, dtype=torch.float64))) for v in (t, s))
        got, err = _call(fn, a_t, a_s)
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
    from ..processes.masked import MaskedDiffusion

    md = MaskedDiffusion("loglinear", mask_id=1, alpha_min=0.0)
    for L in (1, 3, 8):
        got, err = _call(fn, L)
        if err or got is None:
            return err or NOT_ATTEMPTED
        if not isinstance(got, torch.Tensor):
            got = torch.as_tensor(got, dtype=torch.float64)
        v = _compare(got.double(), md.mask_weights(L), f"c_k for L={L}", atol=1e-9)
        if not v.correct:
            return v
    return Verdict("correct", "c_k = (k-1)! (L-k)! / L!: the C(L,k) masks of size k, k terms each, weigh 1 in all")


# ---------------------------------------------------------------- lesson 03
def _word_vector_case(seed: int):
    """Word vectors with very different lengths (where the dot product and the distance disagree)."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.3, 3.0, 12, dtype=torch.float64)[:, None]
    emb = torch.randn(12, 4, generator=g, dtype=torch.float64) * scale
    x = torch.randn(5, 7, 4, generator=g, dtype=torch.float64) * 1.5
    ids = torch.randint(0, 12, (5, 7), generator=g)
    return emb, x, ids


def _word_vector_model(emb: torch.Tensor):
    """A stand-in model whose only part is the word vectors, for the package's rounding functions."""
    return type("WordVectors", (), {"embedding": torch.nn.Embedding.from_pretrained(emb)})()


def reference_nearest_word(x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """Rounding: argmin_v ||x - EMB(v)|| for every vector of x (..., d); emb is (V, d)."""
    return ((x[..., None, :] - emb) ** 2).sum(-1).argmin(-1)


def check_nearest_word(fn) -> Verdict:
    """Exercise: nearest-neighbour rounding of vectors x (..., d) to the rows of emb (V, d), as token ids."""
    from ..processes.embedding import round_to_words

    for seed in (0, 1, 2):
        emb, x, _ = _word_vector_case(seed)
        got, err = _call(fn, x, emb)
        if err or got is None:
            return err or NOT_ATTEMPTED
        model = _word_vector_model(emb)
        want = round_to_words(model, x)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return Verdict("incorrect", f"return token ids of shape {tuple(want.shape)} "
                                        f"(got {type(got).__name__} {tuple(getattr(got, 'shape', ()))})")
        wrong = int((got.long() != want).sum())
        if wrong:
            dot = (x @ emb.T).argmax(-1)
            hint = (" (hint: the largest dot product x.e favours long vectors; the nearest word minimises "
                    "the distance ||x - e||)") if torch.equal(got.long(), dot) else ""
            return Verdict("incorrect", f"{wrong} of {want.numel()} vectors rounded to the wrong word{hint}")
    return Verdict("correct", "argmin ||x - e_v||: the readout's argmax, and the rounding Diffusion-LM ends with")


def reference_rounding_nll(x: torch.Tensor, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """-log p(w | x) with p(v | x) = softmax_v(-||x - EMB(v)||^2), per position: (..., d), (V, d), (...) -> (...)."""
    logits = -((x[..., None, :] - emb) ** 2).sum(-1)
    return -torch.log_softmax(logits, -1).gather(-1, ids[..., None])[..., 0]


def check_rounding_nll(fn) -> Verdict:
    """Exercise: the rounding term -log p(w | x_0) of the Diffusion-LM loss, per position, with the tied
    readout logit_v(x) = -||x - EMB(v)||^2."""
    from ..processes.embedding import rounding_nll

    for seed in (0, 1):
        emb, x, ids = _word_vector_case(seed)
        got, err = _call(fn, x, emb, ids)
        if err or got is None:
            return err or NOT_ATTEMPTED
        model = _word_vector_model(emb)
        want = rounding_nll(model, x, ids)
        v = _compare(got, want, "-log p(w | x)", atol=1e-6)
        if not v.correct:
            dot = -torch.log_softmax(x @ emb.T, -1).gather(-1, ids[..., None])[..., 0]
            if isinstance(got, torch.Tensor) and got.shape == dot.shape and \
                    torch.allclose(got.double(), dot, atol=1e-6):
                return Verdict("incorrect", "that is the softmax of the dot products x.e; this readout uses "
                                            "-||x - e||^2 (so its argmax is the nearest word)")
            return v
    return Verdict("correct", "-log softmax(-||x - e_v||^2)[w]: small when x_0 sits close to its own word vector "
                              "and far from the others")


# ---------------------------------------------------------------- lesson 05
def reference_guided_log_probs(cond: torch.Tensor, uncond: torch.Tensor, w: float) -> torch.Tensor:
    """log p_w = log_softmax((1 - w) log p(x | z) + w log p(x | z, c)) (``guidance.ClassifierFreeGuidance``)."""
    from ..sampling.guidance import ClassifierFreeGuidance

    return ClassifierFreeGuidance(lambda z, t: cond, lambda z, t: uncond, w)(None)


def check_guided_log_probs(fn) -> Verdict:
    """Exercise: classifier-free guidance of one token's log-probabilities (..., V) at scale w."""
    g = torch.Generator().manual_seed(5)
    cond = torch.log_softmax(torch.randn(4, 6, generator=g, dtype=torch.float64) * 2, -1)
    uncond = torch.log_softmax(torch.randn(4, 6, generator=g, dtype=torch.float64) * 2, -1)
    for w in (0.0, 1.0, 0.5, 2.5):
        got, err = _call(fn, cond, uncond, w)
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
        v = _compare(got, want, f"the guided log-probabilities at w={w}", atol=1e-6)
        if not v.correct:
            return v
    return Verdict("correct", "w = 0 is unconditional, w = 1 conditional, and w = 2.5 sharpens toward the condition")


def reference_remask_reveal_probability(alpha_t: float, alpha_s: float, sigma: float) -> float:
    """ReMDM: a masked token is revealed with probability (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t)."""
    return (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t)


def check_remask_reveal_probability(fn) -> Verdict:
    """Exercise: with remasking probability sigma, the reveal probability that keeps q(z_s | x)."""
    from ..processes.masked import MaskedDiffusion

    md = MaskedDiffusion("loglinear")
    for t, s, eta in ((0.9, 0.7, 0.05), (0.5, 0.4, 0.1), (0.2, 0.1, 0.02), (0.6, 0.3, 0.0)):
        sigma, want = md.remask_probabilities(torch.tensor([t], dtype=torch.float64),
                                              torch.tensor([s], dtype=torch.float64), eta)
        a_t, a_s = float(md.alpha(torch.tensor(t))), float(md.alpha(torch.tensor(s)))
        got, err = _call(fn, a_t, a_s, float(sigma))
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
