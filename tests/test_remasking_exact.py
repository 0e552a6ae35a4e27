"""ReMDM's remasking sampler, propagated exactly through its Markov chain (``sampler_distribution`` with
``remask``), against the sampler itself and against what the kernel promises (lesson 05, section 4)."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats

from diffnlp.evaluation.oracle import TokenPosteriorDenoiser, sampler_distribution
from diffnlp.processes.masked import MaskedDiffusion

MASK, V = 3, 4
SEQS = list(itertools.product(range(3), repeat=3))


def _oracle(p):
    return TokenPosteriorDenoiser(SEQS, p, vocab_size=V, mask_id=MASK)


def _correlated():
    p = torch.rand(27, generator=torch.Generator().manual_seed(0), dtype=torch.float64) ** 2 + 0.02
    return p / p.sum()


def _counts(x):
    return torch.bincount(x[:, 0] * 9 + x[:, 1] * 3 + x[:, 2], minlength=27).double()


def test_the_exact_chain_matches_the_sampler():
    """Chi-square of 40,000 samples of ``MaskedDiffusion.sample(remask=0.2)`` against the propagated chain."""
    p = _correlated()
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    want = sampler_distribution(_oracle(p), md, "ancestral", 8, remask=0.2)
    assert abs(float(want.sum()) - 1) < 1e-12
    n = 40000
    *_, x = md.sample(_oracle(p), n, 3, 8, remask=0.2, generator=torch.Generator().manual_seed(3))
    assert stats.chisquare(_counts(x).numpy(), (want * n).numpy()).pvalue > 1e-3


def test_remasking_is_exact_for_independent_positions_and_biased_for_correlated_ones():
    """A product distribution is sampled exactly at any eta; a correlated one is not, and its bias does not
    vanish with more steps (remasking keeps re-revealing tokens together), while plain ancestral sampling's
    does."""
    g = torch.Generator().manual_seed(8)
    m = [torch.rand(3, generator=g, dtype=torch.float64) + 0.1 for _ in range(3)]
    prod = torch.tensor([float(m[0][a] * m[1][b] * m[2][c]) for a, b, c in SEQS], dtype=torch.float64)
    prod = prod / prod.sum()
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    assert torch.allclose(sampler_distribution(_oracle(prod), md, "ancestral", 8, remask=0.3), prod, atol=1e-12)
    p = _correlated()

    def tv(K, eta):
        return 0.5 * float((sampler_distribution(_oracle(p), md, "ancestral", K, remask=eta) - p).abs().sum())

    assert tv(8, 0.0) == pytest.approx(0.5 * float((sampler_distribution(_oracle(p), md, "ancestral", 8) - p)
                                                   .abs().sum()), abs=1e-12)
    assert tv(64, 0.0) < tv(8, 0.0) / 4                 # ancestral: the bias shrinks as the steps grow
    assert tv(64, 0.3) > 3 * tv(64, 0.0)                # remasking at eta = 0.3 keeps a bias (exact: 0.017, 0.004)


def test_remask_needs_the_ancestral_strategy():
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    with pytest.raises(ValueError, match="remask=0.1 applies to strategy='ancestral'"):
        sampler_distribution(_oracle(_correlated()), md, "random", 3, remask=0.1)
    with pytest.raises(ValueError, match="remask"):
        sampler_distribution(_oracle(_correlated()), md, "ancestral", 3, remask=1.5)
