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


def reference_rounding_nll(x: torch.Tensor, emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """-log p(w | x) with p(v | x) = softmax_v(-||x - EMB(v)||^2), per position: (..., d), (V, d), (...) -> (...)."""
    logits = -((x[..., None, :] - emb) ** 2).sum(-1)
    return -torch.log_softmax(logits, -1).gather(-1, ids[..., None])[..., 0]


def check_rounding_nll(fn) -> Verdict:
    """Exercise: the rounding term -log p(w | x_0) of the Diffusion-LM loss, per position, with the tied
    readout logit_v(x) = -||x - EMB(v)||^2."""
    from ...processes.embedding import rounding_nll

    for seed in (0, 1):
        emb, x, ids = _word_vector_case(seed)
        got, err = run_learner(fn, x, emb, ids)
        if err or got is None:
            return err or NOT_ATTEMPTED
        model = _word_vector_model(emb)
        want = rounding_nll(model, x, ids)
        v = compare(got, want, "-log p(w | x)", atol=1e-6)
        if not v.correct:
            dot = -torch.log_softmax(x @ emb.T, -1).gather(-1, ids[..., None])[..., 0]
            if isinstance(got, torch.Tensor) and got.shape == dot.shape and \
                    torch.allclose(got.double(), dot, atol=1e-6):
                return Verdict("incorrect", "that is the softmax of the dot products x.e; this readout uses "
                                            "-||x - e||^2 (so its argmax is the nearest word)")
            return v
    return Verdict("correct", "-log softmax(-||x - e_v||^2)[w]: small when x_0 sits close to its own word vector "
                              "and far from the others")
