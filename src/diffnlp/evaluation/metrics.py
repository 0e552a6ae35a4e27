"""How good are the samples? Measures that need no trained judge, and one that does.

- ``sliced_wasserstein``: project both point sets onto random directions; in 1-D the
  Wasserstein-2 distance between equal-size samples is the RMS gap of the sorted values:

      SWD(X, Y) = sqrt( mean_theta mean_i (sort(X theta)_i - sort(Y theta)_i)^2 )

  Two finite samples of the *same* distribution are not at distance 0, so every SWD is read
  against its floor SWD(data, fresh data) at the same n.
- ``DigitsJudge``: a fixed logistic regression trained on the real training digits. Generated
  digits are scored by its mean confidence (max class probability), relative to its confidence
  on held-out real digits, and by each class's share of the samples.
- Text, against the story grammar (an exact oracle): ``likelihood_report`` puts a model's NLL or
  NELBO per story next to the entropy (the excess, NELBO - H, bounds KL(data || model) from above);
  ``story_report`` measures samples: the share that are valid stories (with the reasons for the
  rest), the mean oracle NLL -log p(story) of the valid ones, and the share of distinct stories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_int, check_tensor
from ..data.attributes import attribute_values, decode_stories, story_attributes


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, num_projections: int = 512, seed: int = 0) -> float:
    """Sliced Wasserstein-2 distance between two equal-size point sets (n, d)."""
    check_tensor("x", x, floating=True)
    check_tensor("y", y, floating=True)
    if x.ndim != 2 or y.ndim != 2 or x.shape != y.shape:
        raise ValueError("x and y must both have shape (n, d) and the same n; "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")
    num_projections = check_int("num_projections", num_projections, low=1)
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], num_projections, generator=g, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)  # unit directions
    px = torch.sort(x.detach().cpu().double() @ theta, dim=0).values
    py = torch.sort(y.detach().cpu().double() @ theta, dim=0).values
    return float(((px - py) ** 2).mean().sqrt())


def swd_mean(x: torch.Tensor, y: torch.Tensor, num_projections: int = 512, seeds=(0, 1, 2, 3, 4)) -> float:
    """The mean SWD over several projection seeds (the course's reported figure: 5 seeds)."""
    return float(np.mean([sliced_wasserstein(x, y, num_projections, seed=s) for s in seeds]))


@dataclass
class JudgeReport:
    """How digits look to the judge: its confidence on them, relative to real digits, and the class shares."""

    confidence: float          # mean max-probability on the generated digits
    real_confidence: float     # the same on held-out real digits
    relative_confidence: float  # confidence / real_confidence
    class_shares: list[float]  # share of samples assigned to each class 0..9

    @property
    def min_share(self) -> float:
        return min(self.class_shares)

    def __str__(self) -> str:
        shares = " ".join(f"{i}:{s:.0%}" for i, s in enumerate(self.class_shares))
        return (f"judge confidence {self.confidence:.3f} vs {self.real_confidence:.3f} on real digits "
                f"({self.relative_confidence:.1%}); class shares {shares}")


class DigitsJudge:
    """A logistic regression on the real training digits, fixed by its seed and split."""

    def __init__(self, seed: int = 0):
        from sklearn.linear_model import LogisticRegression

        from ..data.digits import load_digits, to_pixels

        x, y = load_digits("train", seed=seed)
        xt, yt = load_digits("test", seed=seed)
        self.classifier = LogisticRegression(max_iter=5000, C=1.0)
        self.classifier.fit(to_pixels(x) / 16.0, y.numpy())
        self.test_accuracy = float(self.classifier.score(to_pixels(xt) / 16.0, yt.numpy()))
        self.real_confidence = self.confidence(xt)

    def probabilities(self, images: torch.Tensor) -> np.ndarray:
        """Class probabilities (n, 10) for images in [-1, 1] shaped (n, 1, 8, 8) or (n, 64)."""
        from ..data.digits import to_pixels

        check_tensor("images", images, floating=True, ndim_min=1)
        if images.shape[0] == 0 or images[0].numel() != 64:
            raise ValueError(f"images must be a non-empty batch of 8x8 digits, got shape {tuple(images.shape)}")
        return self.classifier.predict_proba(to_pixels(images) / 16.0)

    def confidence(self, images: torch.Tensor) -> float:
        """The judge's mean max-probability on ``images``."""
        return float(self.probabilities(images).max(axis=1).mean())

    def judge(self, images: torch.Tensor) -> JudgeReport:
        """A ``JudgeReport`` of ``images`` against the real digits' confidence."""
        p = self.probabilities(images)
        conf = float(p.max(axis=1).mean())
        shares = np.bincount(p.argmax(axis=1), minlength=10) / len(p)
        return JudgeReport(conf, self.real_confidence, conf / self.real_confidence, shares.tolist())


@dataclass
class LikelihoodReport:
    """A model's NLL (or NELBO) per story beside the true entropy H of the stories."""

    name: str
    nats: float          # mean NLL or NELBO per story
    entropy: float       # H, the floor no model can beat in expectation
    length: int = 32     # tokens per sequence, for the per-token figure

    @property
    def excess(self) -> float:
        """nats - H >= KL(data || model): how much the model still misses, in nats per story."""
        return self.nats - self.entropy

    @property
    def ratio(self) -> float:
        """nats / H: 1 for a perfect model."""
        return self.nats / self.entropy

    def as_dict(self) -> dict:
        return {"name": self.name, "nats_per_story": self.nats, "nats_per_token": self.nats / self.length,
                "entropy": self.entropy, "excess": self.excess, "ratio": self.ratio}

    def __str__(self) -> str:
        return (f"{self.name}: {self.nats:.2f} nats/story (H = {self.entropy:.2f}), excess {self.excess:+.2f}, "
                f"ratio {self.ratio:.3f}")


def likelihood_report(name: str, nats_per_story, entropy: float, length: int = 32) -> LikelihoodReport:
    """``nats_per_story``: a float or a tensor of per-story values (their mean is used)."""
    nats = float(torch.as_tensor(nats_per_story, dtype=torch.float64).mean())
    return LikelihoodReport(name, nats, float(entropy), length)


@dataclass
class StoryReport:
    """What a batch of generated stories looks like to the grammar."""

    n: int
    valid: float                 # share of samples that the grammar can produce
    reasons: dict                # why the others were rejected: reason -> count, most common first
    oracle_nll: float            # mean -log p(story) of the valid samples (nan if none)
    distinct: float              # share of distinct samples
    examples: list

    @property
    def valid_stderr(self) -> float:
        """The binomial standard error of ``valid``: sqrt(v (1 - v) / n)."""
        return (self.valid * (1 - self.valid) / self.n) ** 0.5

    def as_dict(self) -> dict:
        return {"n": self.n, "valid": self.valid, "oracle_nll": self.oracle_nll, "distinct": self.distinct,
                "reasons": self.reasons}

    def __str__(self) -> str:
        top = "; ".join(f"{c} x {r}" for r, c in list(self.reasons.items())[:3])
        return (f"{self.valid:.1%} valid of {self.n}, oracle NLL of the valid {self.oracle_nll:.2f} nats, "
                f"{self.distinct:.1%} distinct" + (f" | rejected: {top}" if top else ""))


def story_report(grammar, samples, tokenizer=None, examples: int = 3) -> StoryReport:
    """Validity, reasons, oracle NLL and diversity of ``samples``: strings, or ids (N, L) with ``tokenizer``."""
    from collections import Counter

    if isinstance(samples, torch.Tensor):
        if tokenizer is None:
            raise ValueError("samples are token ids: pass the tokenizer that made them")
        samples = decode_stories(tokenizer, samples)
    if not isinstance(samples, (list, tuple)) or not samples:
        raise ValueError("samples must be a non-empty list of stories or an (N, L) tensor of ids")
    from ..data.stories import InvalidStory

    reasons: Counter = Counter()
    nll, bad = [], []
    for s in samples:                                  # one parse per sample: validity, reason and log p
        try:
            nll.append(-grammar.parse(s).log_prob)
        except InvalidStory as exc:
            reasons[str(exc)] += 1
            bad.append(s)
    n = len(samples)
    bad = bad[:examples]
    return StoryReport(n=n, valid=len(nll) / n, reasons=dict(reasons.most_common()),
                       oracle_nll=float(np.mean(nll)) if nll else float("nan"),
                       distinct=len(set(samples)) / n, examples=bad)


@dataclass
class ControlReport:
    """How well samples obey a wanted attribute value, judged by the grammar's parse."""

    attribute: str
    target: str
    n: int
    valid: float         # share of all samples that are valid stories
    success: float       # share of *all* samples that are valid and have the target value
    stderr: float        # the binomial standard error of ``success``

    @property
    def rate_among_valid(self) -> float:
        return self.success / self.valid if self.valid else float("nan")

    def as_dict(self) -> dict:
        return {"attribute": self.attribute, "target": self.target, "n": self.n, "valid": self.valid,
                "success": self.success, "stderr": self.stderr}

    def __str__(self) -> str:
        return (f"{self.attribute} = {self.target!r}: success {self.success:.1%} ± {self.stderr:.1%} of {self.n} "
                f"(valid {self.valid:.1%}; {self.rate_among_valid:.1%} of the valid ones)")


def control_report(grammar, samples, attribute: str, target: str, tokenizer=None) -> ControlReport:
    """Control success: the share of *all* ``samples`` (strings, or ids with ``tokenizer``) that are valid
    stories with ``attribute`` equal to ``target``."""
    values = attribute_values(grammar, attribute)
    if target not in values:
        raise ValueError(f"target={target!r} is not a value of {attribute!r}; allowed: {', '.join(values)}")
    if isinstance(samples, torch.Tensor):
        if tokenizer is None:
            raise ValueError("samples are token ids: pass the tokenizer that made them")
        samples = decode_stories(tokenizer, samples)
    found = story_attributes(grammar, samples, attribute)
    n = len(found)
    if n == 0:
        raise ValueError("samples is empty")
    success = sum(v == target for v in found) / n
    return ControlReport(attribute, target, n, sum(v is not None for v in found) / n, success,
                         (success * (1 - success) / n) ** 0.5)


def non_decreasing_within_ci(values, stderrs, z: float = 1.96) -> bool:
    """Whether a sequence of independent estimates is non-decreasing up to noise: every next value is at
    least the previous one minus z times the standard error of their difference (95 % for z = 1.96)."""
    if len(values) != len(stderrs):
        raise ValueError(f"values ({len(values)}) and stderrs ({len(stderrs)}) must have the same length")
    return all(b >= a - z * (sa ** 2 + sb ** 2) ** 0.5
               for a, b, sa, sb in zip(values, values[1:], stderrs, stderrs[1:]))


def empirical_distribution(ids: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """The share of each sequence among ``num_tokens ** L`` possible ones, for ids (N, L): sequence
    (a_1, ..., a_L) is entry a_1 V^(L-1) + ... + a_L (float64, sums to 1)."""
    check_tensor("ids", ids, floating=False)
    L = ids.shape[1]
    index = (ids.long() * num_tokens ** torch.arange(L - 1, -1, -1)).sum(1)
    return torch.bincount(index, minlength=num_tokens ** L).double() / len(ids)


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """TV(p, q) = 1/2 sum |p - q| between two distributions over the same outcomes."""
    return 0.5 * float((torch.as_tensor(p, dtype=torch.float64) - torch.as_tensor(q, dtype=torch.float64)).abs().sum())


def entropy(q: torch.Tensor) -> float:
    """H(q) = -sum q log q in nats (0 log 0 = 0)."""
    q = torch.as_tensor(q, dtype=torch.float64)
    q = q[q > 0]
    return float(-(q * q.log()).sum())


def oracle_nlls(grammar, samples, tokenizer=None) -> torch.Tensor:
    """-log p(story) of each *valid* sample (strings, or ids (N, L) with ``tokenizer``), float64: the values
    whose mean is ``StoryReport.oracle_nll``; their std / sqrt(n) is its standard error."""
    from ..data.stories import InvalidStory

    if isinstance(samples, torch.Tensor):
        if tokenizer is None:
            raise ValueError("samples are token ids: pass the tokenizer that made them")
        samples = decode_stories(tokenizer, samples)
    out = []
    for s in samples:
        try:
            out.append(-grammar.parse(s).log_prob)
        except InvalidStory:
            pass
    return torch.tensor(out, dtype=torch.float64)


def expected_nll_given(grammar, choice: str, value: str) -> float:
    """The mean oracle NLL of the stories whose ``choice`` ("adjective", "object" or "place", each drawn
    independently of the rest) is ``value``, under the grammar itself:

        E[-log p(story) | value] = H - H(choice) - log pi(value),

    H the stories' entropy and pi the choice's probabilities. A sampler steered to ``value`` that keeps
    the data's spread over everything else averages this; a lower mean means it also favours likely stories."""
    lists = {"adjective": "adjectives", "object": "objects", "place": "places"}
    if choice not in lists:
        raise ValueError(f"choice={choice!r}; allowed: {', '.join(lists)} (the choices drawn independently)")
    options = getattr(grammar.config, lists[choice])
    if value not in options:
        raise ValueError(f"value={value!r} is not a {choice}; allowed: {', '.join(options)}")
    pi = torch.tensor(grammar.config.weights[choice], dtype=torch.float64)
    return float(grammar.entropy() - entropy(pi) - pi[options.index(value)].log())


# Where the samplers of lesson 04 fail: which long-range choice a rejection is about, and whether the
# tokens that carry that choice were decided in one step (and so drawn independently of each other).
COUPLED_POSITIONS = {"gender": (0, 9, 17, 24), "tense and plot": (1, 10, 18, 25), "object": (4, 13)}


def rejection_group(reason: str) -> str | None:
    """The long-range choice a grammar rejection (``grammar.is_valid(story, explain=True)[1]``) is about:
    "gender" (a pronoun against the name), "tense and plot" (a verb's tense, a verb or the ending's feeling
    against the plot), "object" (the object referred to later), or None (a local error: a malformed
    sentence, a word out of place)."""
    if "object is the" in reason:
        return "object"
    if "tense" in reason or "plot" in reason or "cannot be" in reason:
        return "tense and plot"
    if "begins with" in reason or "ending is about" in reason:
        return "gender"
    return None


def coupled_positions(group: str, length: int) -> tuple[int, ...]:
    """The positions of a story of ``length`` words (28, or 29 with "very") that carry one long-range choice
    (``COUPLED_POSITIONS``; every slot of the grammar has a fixed length). "tense and plot" adds the ending's
    feeling, the word before the final ".", which must follow the plot."""
    check_int("length", length, low=26)
    base = COUPLED_POSITIONS[group]
    return base + (length - 2,) if group == "tense and plot" else base


@dataclass
class CoupledDecision:
    """One sample judged by ``coupled_decisions``: why it was rejected (None if valid), which long-range
    choice that is about, and which of that choice's positions were decided in a step they shared with
    another of them (empty: none were)."""

    story: str
    reason: str | None
    group: str | None
    same_step: tuple[int, ...]


def coupled_decisions(grammar, tokenizer, ids: torch.Tensor, when: torch.Tensor) -> list[CoupledDecision]:
    """For each sample (``ids`` (N, L)) and the step at which each of its positions was decided (``when``
    (N, L), from ``diffnlp.base.decision_steps``): its rejection, the long-range choice the rejection is
    about (``rejection_group``), and the positions of that choice decided in a shared step."""
    check_tensor("ids", ids, floating=False)
    if when.shape != ids.shape:
        raise ValueError(f"when must have the shape of ids {tuple(ids.shape)}, got {tuple(when.shape)}")
    out = []
    for story, steps in zip(decode_stories(tokenizer, ids), when.tolist()):
        ok, reason = grammar.is_valid(story, explain=True)
        group = None if ok else rejection_group(reason)
        same: tuple[int, ...] = ()
        n_words = len(story.split())
        if group is not None and n_words >= 26:
            pos = [p for p in coupled_positions(group, n_words) if p < len(steps)]
            at = [steps[p] for p in pos]
            same = tuple(p for p, s in zip(pos, at) if at.count(s) > 1)
        out.append(CoupledDecision(story, None if ok else reason, group, same))
    return out


def same_step_share(decisions: list[CoupledDecision]) -> tuple[int, int]:
    """(m, n): of the n samples rejected for a long-range choice, the m in which two or more tokens of that
    choice were decided in the same step."""
    coupled = [d for d in decisions if d.group is not None]
    return sum(bool(d.same_step) for d in coupled), len(coupled)


def mean_stderr(values) -> tuple[float, float]:
    """(mean, standard error of the mean) of a sample: std / sqrt(n), with the n - 1 std (0 for one value)."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if not v.numel():
        raise ValueError("values is empty")
    return float(v.mean()), float(v.std() / v.numel() ** 0.5) if v.numel() > 1 else 0.0


def token_revisions(states) -> torch.Tensor:
    """Revisions per sequence (B,) in a sampler's trajectory x_T, ..., x_0 (each (B, L)). A step *sets* a position
    when it gives it a new value; each later change is a revision: sum_i max(0, changes_i - 1). Leaving [MASK] is
    the first setting, so MDLM, which never touches a revealed token, has 0; so has a D3PM-uniform position whose
    random starting token survives to the end."""
    x = torch.stack([torch.as_tensor(s) for s in states]).cpu()             # (K + 1, B, L)
    if x.ndim != 3 or x.shape[0] < 2:
        raise ValueError(f"states must be at least two (B, L) tensors, got stacked shape {tuple(x.shape)}")
    return ((x[1:] != x[:-1]).sum(0) - 1).clamp_min(0).sum(-1)               # changes_i - 1, summed over i

