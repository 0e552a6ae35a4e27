"""Lesson 03's exercises: each checker with its reference solution."""

from __future__ import annotations

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, compare, run_learner


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
    from ...processes.embedding import round_to_words

    for seed in (0, 1, 2):
        emb, x, _ = _word_vector_case(seed)
        got, err = run_learner(fn, x, emb)
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


def reference_rounding_grad(x: torch.Tensor, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """d/dx [-log p(w | x)] with p(v | x) = softmax_v(-||x - EMB(v)||^2): 2 (sum_v p(v | x) EMB(v) - EMB(w)).
    Shapes: x (..., d), emb (V, d), ids (...) -> (..., d)."""
    p = torch.softmax(-((x[..., None, :] - emb) ** 2).sum(-1), -1)      # p(v | x), (..., V)
    return 2 * (p @ emb - emb[ids])


def check_rounding_grad(fn) -> Verdict:
    """Exercise (derive): the gradient in x of the rounding term -log p(w | x), per position, for the tied
    readout logit_v(x) = -||x - EMB(v)||^2. Checked against autograd through the package's ``rounding_nll``."""
    from ...processes.embedding import rounding_grad

    for seed in (0, 1):
        emb, x, ids = _word_vector_case(seed)
        got, err = run_learner(fn, x, emb, ids)
        if err or got is None:
            return err or NOT_ATTEMPTED
        want = rounding_grad(_word_vector_model(emb), x, ids)
        v = compare(got, want, "the gradient", atol=1e-6)
        if v.correct:
            continue
        if isinstance(got, torch.Tensor) and got.shape == want.shape:
            got = got.double()
            e_w = emb[ids]
            if torch.allclose(got, 2 * (x - e_w), atol=1e-6):
                return Verdict("incorrect", "2 (x - EMB(w)) is the gradient of ||x - EMB(w)||^2 alone: you dropped "
                                            "the log-sum-exp normaliser, whose gradient brings in every word v "
                                            "weighted by p(v | x)")
            if torch.allclose(got, -want, atol=1e-6):
                return Verdict("incorrect", "the sign is flipped: that is the gradient of log p(w | x); the "
                                            "loss is -log p(w | x)")
            if torch.allclose(got, want / 2, atol=1e-6):
                return Verdict("incorrect", "off by a factor 2: d/dx ||x - e||^2 = 2 (x - e)")
        return v
    return Verdict("correct", "2 (E_p[EMB(v)] - EMB(w)): zero only when the readout is sure of w. Minimising "
                              "the term pulls x_0 toward its own word and away from the words it could be "
                              "confused with, which is how the rounding term keeps the word vectors apart")


def reference_rounding_guess(model=None, process=None, ids=None, t: int = 200) -> float:
    """The share of the free-slot words that rounding x_t / sqrt(abar_t) alone still recovers at timestep
    ``t`` (the shipped model's word vectors, the first 500 test stories): ``rounding_accuracy``, measured."""
    if model is None:
        from ...training.pretrained import load_pretrained

        model, process, _, _ = load_pretrained("stories-diffusion-lm")
    if ids is None:
        from ...training.recipes import story_data

        ids = story_data(split="test")[2][:500]
    return float(process.rounding_accuracy(model, ids, [t], positions="free")["noisy"][0])


def check_rounding_guess(guess, model=None, process=None, ids=None, t: int = 200, tolerance: float = 0.1) -> Verdict:
    """Exercise (predict): at t = 200 (abar_t = 0.557 with the sqrt schedule), what share of the free-slot
    words does rounding the noisy vectors alone still recover? Measured live; within ``tolerance`` is right."""
    if guess is None:
        return NOT_ATTEMPTED
    if isinstance(guess, torch.Tensor):
        guess = guess.item()
    if isinstance(guess, bool) or not isinstance(guess, (int, float)):
        return Verdict("incorrect", f"give a share between 0 and 1, got {type(guess).__name__} {guess!r}")
    if 1 < guess <= 100:
        return Verdict("incorrect", f"give a share between 0 and 1, not a percentage (for {guess} %: {guess / 100})")
    if not 0 <= guess <= 1:
        return Verdict("incorrect", f"a share lies between 0 and 1, got {guess}")
    if model is None:
        from ...training.pretrained import load_pretrained

        model, process, _, _ = load_pretrained("stories-diffusion-lm")
    measured = reference_rounding_guess(model, process, ids, t)
    abar = float(process.gaussian.alphas_cumprod[t])
    std = ((1 - abar) / abar) ** 0.5
    off = guess - measured
    if abs(off) <= tolerance:
        return Verdict("correct", f"measured {measured:.3f}; you were off by {off:+.3f}. The noise left in "
                                  f"x_t / sqrt(abar_t) has std sqrt((1 - abar_t) / abar_t) = {std:.2f} per "
                                  "dimension, comparable to half the distance between neighbouring word vectors")
    why = (f"too optimistic: a std of {std:.2f} per dimension, over all the dimensions, often lands nearer to a "
           "neighbour" if off > 0 else "too pessimistic: the word vectors sit several units apart, more "
           "than the noise moves a vector along the line to its neighbour")
    return Verdict("incorrect", f"measured {measured:.3f}; you were off by {off:+.3f} ({why})")
