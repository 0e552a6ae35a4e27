"""Classifier-free guidance with exact conditional and unconditional denoisers on a tiny distribution."""

import itertools

import pytest
import torch
from scipy import stats

from diffnlp.evaluation.oracle import TokenPosteriorDenoiser
from diffnlp.processes.masked import MaskedDiffusion
from diffnlp.sampling.guidance import ClassifierFreeGuidance

MASK = 3


@pytest.fixture(scope="module")
def tiny():
    """p(x) over 3 tokens x 3 positions; the condition c is the first token."""
    seqs = torch.tensor(list(itertools.product(range(3), repeat=3)))
    p = torch.rand(27, generator=torch.Generator().manual_seed(0), dtype=torch.float64) ** 2 + 0.02
    return seqs, p / p.sum()


def _oracles(seqs, p, c):
    cond = p * (seqs[:, 0] == c)
    return (TokenPosteriorDenoiser(seqs, cond / cond.sum(), vocab_size=4, mask_id=MASK),
            TokenPosteriorDenoiser(seqs, p, vocab_size=4, mask_id=MASK))


def _sample(model, n, seed):
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    x = md.sample(model, n, 3, 3, strategy="random", generator=torch.Generator().manual_seed(seed)).run()
    return torch.bincount(x[:, 0] * 9 + x[:, 1] * 3 + x[:, 2], minlength=27).double()


def test_scale_one_reproduces_the_conditional_and_zero_the_unconditional(tiny):
    seqs, p = tiny
    c = 2
    cond_oracle, uncond_oracle = _oracles(seqs, p, c)
    n = 20000
    cond_p = p * (seqs[:, 0] == c)
    cond_p = cond_p / cond_p.sum()
    at_one = _sample(ClassifierFreeGuidance(cond_oracle, uncond_oracle, scale=1.0), n, 1)
    keep = cond_p > 0
    assert at_one[~keep].sum() == 0
    assert stats.chisquare(at_one[keep].numpy(), (cond_p[keep] * n).numpy()).pvalue > 1e-3
    at_zero = _sample(ClassifierFreeGuidance(cond_oracle, uncond_oracle, scale=0.0), n, 2)
    assert stats.chisquare(at_zero.numpy(), (p * n).numpy()).pvalue > 1e-3


def test_guidance_mixes_log_probabilities(tiny):
    seqs, p = tiny
    cond_oracle, uncond_oracle = _oracles(seqs, p, 1)
    z = torch.tensor([[MASK, MASK, 0], [1, MASK, MASK]])
    for w in (0.0, 0.5, 2.0, 4.0):
        got = ClassifierFreeGuidance(cond_oracle, uncond_oracle, scale=w)(z)
        lc = torch.log_softmax(cond_oracle(z), -1).clamp_min(-1e9)
        lu = torch.log_softmax(uncond_oracle(z), -1).clamp_min(-1e9)
        want = torch.log_softmax((1 - w) * lu + w * lc, -1)
        assert torch.allclose(got.exp(), want.exp(), atol=1e-12)
        assert torch.isfinite(torch.logsumexp(got, -1)).all()          # no nan from -inf * (1 - w)


def test_bad_inputs(tiny):
    seqs, p = tiny
    a, b = _oracles(seqs, p, 0)
    with pytest.raises(ValueError, match="scale=-1.0 is out of range"):
        ClassifierFreeGuidance(a, b, scale=-1.0)
    with pytest.raises(TypeError, match="callables"):
        ClassifierFreeGuidance(a, "unconditional")
