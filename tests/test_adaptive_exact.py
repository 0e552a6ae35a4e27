"""Adaptive parallel decoding (Fast-dLLM's confidence threshold, the EB-sampler's entropy budget) against
exact denoisers: exact for independent positions (chi-square, and the propagated chain equals p), its bias on
a correlated distribution computed exactly by enumerating its chain, and the chain against the sampler."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats

from diffnlp.evaluation.oracle import TokenPosteriorDenoiser, sampler_distribution
from diffnlp.processes.block import BlockDiffusion
from diffnlp.processes.masked import MaskedDiffusion
from diffnlp.sampling.kernels import adaptive_counts, token_entropy

MASK, V = 3, 4
SEQS = list(itertools.product(range(3), repeat=3))
RULES = [("threshold", 0.5), ("threshold", 0.2), ("entropy", 0.8), ("entropy", 2.0)]


def _oracle(p, seqs=SEQS):
    return TokenPosteriorDenoiser(seqs, p, vocab_size=V, mask_id=MASK)


def _product(seed=8, length=3):
    g = torch.Generator().manual_seed(seed)
    m = [torch.rand(3, generator=g, dtype=torch.float64) ** 2 + 0.05 for _ in range(length)]
    seqs = list(itertools.product(range(3), repeat=length))
    p = torch.tensor([float(torch.prod(torch.stack([m[i][v] for i, v in enumerate(s)]))) for s in seqs],
                     dtype=torch.float64)
    return seqs, p / p.sum()


def _correlated():
    p = torch.rand(27, generator=torch.Generator().manual_seed(0), dtype=torch.float64) ** 2 + 0.02
    return p / p.sum()


def _index(x, length=3):
    return (x * (3 ** torch.arange(length - 1, -1, -1))).sum(1)


def tv(a, b):
    return 0.5 * float((a - b).abs().sum())


def test_the_rules_choose_from_the_distributions():
    """threshold: every masked position with top probability >= tau (at least one); entropy: the longest
    lowest-entropy prefix within the budget (at least one); and the step cap's minimum."""
    probs = torch.tensor([[[0.95, 0.05, 0.0], [0.6, 0.4, 0.0], [0.34, 0.33, 0.33], [0.99, 0.01, 0.0]]])
    lp = probs.log()
    masked = torch.tensor([[True, True, True, False]])
    _, n = adaptive_counts(lp, masked, "threshold", 0.9)
    assert n.tolist() == [1]                                     # 0.95 only (position 3 is not masked)
    _, n = adaptive_counts(lp, masked, "threshold", 0.99)
    assert n.tolist() == [1]                                     # none passes: the most confident one anyway
    h = token_entropy(lp)[0]
    assert h[0] == pytest.approx(-(0.95 * torch.log(torch.tensor(0.95)) + 0.05 * torch.log(torch.tensor(0.05))))
    _, n = adaptive_counts(lp, masked, "entropy", float(h[0] + h[1]) + 1e-6)
    assert n.tolist() == [2]
    _, n = adaptive_counts(lp, masked, "entropy", 0.0, at_least=torch.tensor([3]))
    assert n.tolist() == [3]
    with pytest.raises(ValueError, match="rule='top'"):
        adaptive_counts(lp, masked, "top", 0.5)


@pytest.mark.parametrize("rule,value", RULES)
def test_adaptive_is_exact_for_independent_positions(rule, value):
    """A product distribution: the propagated chain is p to rounding, and 30,000 samples of
    ``MaskedDiffusion.sample(strategy=rule)`` pass a chi-square test against p."""
    seqs, p = _product()
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    assert torch.allclose(sampler_distribution(_oracle(p, seqs), md, rule, 3, value=value), p, atol=1e-12)
    n = 30000
    kw = {"threshold": value} if rule == "threshold" else {"entropy_budget": value}
    traj = md.sample(_oracle(p, seqs), n, 3, 3, strategy=rule, generator=torch.Generator().manual_seed(1), **kw)
    x = traj.run()
    counts = torch.bincount(_index(x), minlength=27).double()
    assert stats.chisquare(counts.numpy(), (p * n).numpy()).pvalue > 1e-3
    assert traj.calls_per_sample.shape == (n,) and 1 <= traj.calls_per_sample.float().mean() <= 3


@pytest.mark.parametrize("rule,value", RULES[:1] + RULES[2:3])
def test_adaptive_inside_blocks_is_exact_for_independent_positions(rule, value):
    """Block diffusion (blocks of 2 over length 4) with adaptive steps inside each block, on a product
    distribution: chi-square against p."""
    seqs, p = _product(seed=3, length=4)
    oracle = _oracle(p, seqs)
    oracle.config = type("Config", (), {"block_length": 2, "max_len": 4, "time_conditioning": False})()
    n = 30000
    kw = {"threshold": value} if rule == "threshold" else {"entropy_budget": value}
    traj = BlockDiffusion(block_length=2, mask_id=MASK).sample(oracle, n, 4, 2, kv_cache=False, strategy=rule,
                                                               generator=torch.Generator().manual_seed(2), **kw)
    x = traj.run()
    counts = torch.bincount(_index(x, 4), minlength=81).double()
    assert stats.chisquare(counts.numpy(), (p * n).numpy()).pvalue > 1e-3
    assert 2 <= traj.calls_per_sample.float().mean() <= 4


@pytest.mark.parametrize("rule,value,K", [(r, v, 3) for r, v in RULES] + [("entropy", 0.3, 2), ("threshold", 0.9, 2)])
def test_the_exact_chain_matches_the_sampler_on_correlated_data(rule, value, K):
    """Chain against sampler, also with a binding step cap (K = 2 steps for 3 positions: the first step must
    decide at least two, whatever the rule says)."""
    p = _correlated()
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    want = sampler_distribution(_oracle(p), md, rule, K, value=value)
    assert abs(float(want.sum()) - 1) < 1e-12
    n = 40000
    kw = {"threshold": value} if rule == "threshold" else {"entropy_budget": value}
    traj = md.sample(_oracle(p), n, 3, K, strategy=rule, generator=torch.Generator().manual_seed(4), **kw)
    x = traj.run()
    assert traj.calls_per_sample.max() <= K
    keep = want > 0
    counts = torch.bincount(_index(x), minlength=27).double()
    assert counts[~keep].sum() == 0
    assert stats.chisquare(counts[keep].numpy(), (want[keep] * n).numpy()).pvalue > 1e-3


def test_bias_on_correlated_data_grows_with_the_budget_and_vanishes_one_token_at_a_time():
    """One token per step (entropy budget 0, threshold above every confidence) is exact whatever order the rule
    picks: with exact conditionals any state-dependent order is exact. Deciding several coupled tokens together
    is not: the bias grows with the budget and shrinks with the threshold."""
    p = _correlated()
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    assert tv(sampler_distribution(_oracle(p), md, "entropy", 3, value=0.0), p) < 1e-12
    assert tv(sampler_distribution(_oracle(p), md, "threshold", 3, value=1.0), p) < 1e-12
    ent = [tv(sampler_distribution(_oracle(p), md, "entropy", 3, value=g), p) for g in (0.5, 1.5, 4.0)]
    thr = [tv(sampler_distribution(_oracle(p), md, "threshold", 3, value=t), p) for t in (0.6, 0.3, 0.0)]
    assert ent[0] <= ent[1] <= ent[2] and ent[2] > 0.05, ent
    assert thr[0] <= thr[1] <= thr[2] and thr[2] > 0.05, thr
    # tau = 0 decides everything in one step: the product of the marginals
    marg = [torch.zeros(3, dtype=torch.float64) for _ in range(3)]
    for s, q in zip(SEQS, p):
        for i, v in enumerate(s):
            marg[i][v] += q
    prod = torch.tensor([float(marg[0][a] * marg[1][b] * marg[2][c]) for a, b, c in SEQS], dtype=torch.float64)
    assert torch.allclose(sampler_distribution(_oracle(p), md, "threshold", 3, value=0.0), prod, atol=1e-12)


def test_adaptive_options_are_checked():
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    o = _oracle(_correlated())
    with pytest.raises(ValueError, match="threshold"):
        md.sample(o, 2, 3, 3, strategy="threshold", threshold=1.5)
    with pytest.raises(ValueError, match="entropy_budget"):
        md.sample(o, 2, 3, 3, strategy="entropy", entropy_budget=-1.0)
    with pytest.raises(ValueError, match="needs value"):
        sampler_distribution(o, md, "entropy", 3)


def test_top_p_filter_keeps_the_nucleus_and_its_ratios():
    """Nucleus filtering keeps the most probable tokens until their mass reaches top_p, renormalised, with
    their ratios unchanged; a block sampler with top_p on an exact product distribution draws from it."""
    from diffnlp.sampling.kernels import top_p_filter

    lp = torch.tensor([[0.05, 0.5, 0.15, 0.3]]).log()
    assert torch.allclose(top_p_filter(lp, 0.79).exp(), torch.tensor([[0.0, 0.625, 0.0, 0.375]]))
    assert torch.allclose(top_p_filter(lp, 0.81).exp(), torch.tensor([[0.0, 0.5, 0.15, 0.3]]) / 0.95)
    assert torch.equal(top_p_filter(lp, 1.0), lp)
    seqs, p = _product(seed=3, length=4)
    oracle = _oracle(p, seqs)
    oracle.config = type("Config", (), {"block_length": 2, "max_len": 4, "time_conditioning": False})()
    n = 30000
    x = BlockDiffusion(block_length=2, mask_id=MASK).sample(oracle, n, 4, 2, kv_cache=False, top_p=0.7,
                                                            generator=torch.Generator().manual_seed(9)).run()
    # the nucleus of each position's marginal, as a product (positions are independent)
    marg = [torch.zeros(3, dtype=torch.float64) for _ in range(4)]
    for s, q in zip(seqs, p):
        for i, v in enumerate(s):
            marg[i][v] += q
    nuc = [top_p_filter(m.log()[None], 0.7)[0].exp() for m in marg]
    want = torch.tensor([float(torch.prod(torch.stack([nuc[i][v] for i, v in enumerate(s)]))) for s in seqs],
                        dtype=torch.float64)
    counts = torch.bincount(_index(x, 4), minlength=81).double()
    keep = want > 0
    assert counts[~keep].sum() == 0 and (~keep).any()
    assert stats.chisquare(counts[keep].numpy(), (want[keep] / want[keep].sum() * n).numpy()).pvalue > 1e-3
    with pytest.raises(ValueError, match="top_p"):
        BlockDiffusion(block_length=2, mask_id=MASK).sample(oracle, 2, 4, 2, kv_cache=False, top_p=0.0)
