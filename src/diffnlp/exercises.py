"""Checkers for the notebooks' "Try it" exercises, and the reference solutions.

A checker takes the learner's answer and returns a ``Verdict`` whose status is "not attempted"
(the stub still raises NotImplementedError or returns None), "correct" or "incorrect"; it never
raises. The reference solutions live here so the tests can show every checker accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .gaussian import GaussianDiffusion


@dataclass
class Verdict:
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
    if err > atol:
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
    from .discrete import MaskedDiffusion

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
    """Exercise: the weight c_k of one mask of size k in the exact NELBO (eps = 0), for k = 1..L."""
    from .discrete import MaskedDiffusion

    md = MaskedDiffusion("loglinear", mask_id=1, eps=0.0)
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
