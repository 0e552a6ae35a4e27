"""Step distillation (SDTT): the target of one student step against the teacher's two-step transition,
enumerated exactly with an exact teacher on a tiny correlated distribution."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from diffnlp.evaluation.oracle import TokenPosteriorDenoiser, sampler_distribution
from diffnlp.processes.masked import MaskedDiffusion
from diffnlp.training.distillation import (
    distillation_loss,
    one_step_gap,
    predict,
    step_probabilities,
    two_step_target,
    two_step_target_given,
)

MASK, V = 3, 4
SEQS = list(itertools.product(range(3), repeat=3))


def _setup(seed=0):
    p = torch.rand(27, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) ** 2 + 0.02
    p = p / p.sum()
    return p, TokenPosteriorDenoiser(SEQS, p, vocab_size=V, mask_id=MASK), MaskedDiffusion("loglinear", mask_id=MASK)


def _mid_states(z_t, p1, r1):
    """Every z_m of the teacher's first step from z_t with its probability (enumeration)."""
    masked = [i for i in range(3) if z_t[i] == MASK]
    for reveal in itertools.product((False, True), repeat=len(masked)):
        chosen = [i for i, b in zip(masked, reveal) if b]
        pr = math.prod(r1 if b else 1 - r1 for b in reveal)
        for vals in itertools.product(range(3), repeat=len(chosen)):
            z = list(z_t)
            for i, v in zip(chosen, vals):
                z[i] = v
            yield z, pr * math.prod(float(p1[i, v]) for i, v in zip(chosen, vals))


@pytest.mark.parametrize("z_t,t,s", [((MASK, MASK, MASK), 1.0, 0.5), ((MASK, 1, MASK), 0.75, 0.25),
                                     ((MASK, MASK, MASK), 0.5, 0.0)])
def test_target_expectation_is_the_teachers_two_step_transition(z_t, t, s):
    """E over the teacher's first step of the target = P(z_s^i = v) / r for every masked i, the teacher's two
    steps enumerated state by state (r: the chance that i is revealed by s)."""
    p, oracle, md = _setup()
    tt, ss = torch.tensor([t], dtype=torch.float64), torch.tensor([s], dtype=torch.float64)
    r1, r2, r = (float(x) for x in step_probabilities(md, tt, ss))
    zt = torch.tensor([z_t])
    p1 = predict(oracle, md, zt)[0].exp()
    expected_target = torch.zeros(3, V, dtype=torch.float64)
    marginal = torch.zeros(3, V, dtype=torch.float64)           # P(z_s^i = v), the two steps enumerated
    for z_m, pm in _mid_states(z_t, p1, r1):
        zm = torch.tensor([z_m])
        p2 = predict(oracle, md, zm)[0].exp()
        target = two_step_target_given(p1[None], p2[None], zm == MASK, torch.full((1, 3), r1, dtype=torch.float64),
                                       torch.full((1, 3), r2, dtype=torch.float64))[0]
        expected_target += pm * target
        for i in range(3):
            if z_t[i] != MASK:
                continue
            if z_m[i] != MASK:
                marginal[i, z_m[i]] += pm
            else:
                marginal[i] += pm * r2 * p2[i]
    for i in range(3):
        if z_t[i] == MASK:
            assert abs(float(marginal[i].sum()) - r) < 1e-12             # revealed by s with probability r
            assert torch.allclose(expected_target[i], marginal[i] / r, atol=1e-12)


def test_sampled_targets_average_to_the_exact_one():
    """``two_step_target`` (one draw of the teacher's first step each) averaged over 40,000 draws."""
    p, oracle, md = _setup(1)
    B = 40000
    z_t = torch.full((B, 3), MASK)
    t, s = torch.full((B, 3), 1.0, dtype=torch.float64), torch.full((B, 3), 0.5, dtype=torch.float64)
    mc = two_step_target(oracle, md, z_t, t, s, generator=torch.Generator().manual_seed(2)).mean(0)
    r1, r2, _ = (float(x) for x in step_probabilities(md, t[:1, 0], s[:1, 0]))
    p1 = predict(oracle, md, z_t[:1])[0].exp()
    exact = torch.zeros(3, V, dtype=torch.float64)
    for z_m, pm in _mid_states((MASK,) * 3, p1, r1):
        zm = torch.tensor([z_m])
        p2 = predict(oracle, md, zm)[0].exp()
        exact += pm * two_step_target_given(p1[None], p2[None], zm == MASK, torch.full((1, 3), r1),
                                            torch.full((1, 3), r2))[0].double()
    assert (mc.double() - exact).abs().max() < 0.01


def test_the_exact_teacher_is_its_own_fixed_point_only_without_coupling():
    """With an exact teacher, K = 1 student step from all-[MASK] can match the teacher's two steps position by
    position but not jointly: the gap is the TV to the product of marginals, > 0 for a correlated p and 0 for
    a product."""
    p, oracle, md = _setup()
    two = sampler_distribution(oracle, md, "ancestral", 2)
    assert one_step_gap(two, torch.tensor(SEQS)) > 0.05
    marg = [torch.zeros(3, dtype=torch.float64) for _ in range(3)]
    for q, sq in zip(p, SEQS):
        for i, v in enumerate(sq):
            marg[i][v] += q
    prod = torch.tensor([float(marg[0][a] * marg[1][b] * marg[2][c]) for a, b, c in SEQS], dtype=torch.float64)
    assert one_step_gap(prod, torch.tensor(SEQS)) < 1e-12


def test_distillation_loss_trains_a_student():
    from diffnlp.models.transformer import Transformer
    from diffnlp.processes.block import BlockDiffusion

    torch.manual_seed(0)
    teacher = Transformer(vocab_size=10, max_len=8, d_model=32, n_layers=1, n_heads=2, block_length=4).eval()
    student = Transformer(vocab_size=10, max_len=8, d_model=32, n_layers=1, n_heads=2, block_length=4)
    x0 = torch.randint(4, 10, (5, 8), generator=torch.Generator().manual_seed(1))
    bd = BlockDiffusion(4, mask_id=MASK)
    loss = distillation_loss(student, teacher, bd, x0, 2, torch.Generator().manual_seed(3))
    assert loss.shape == (5,) and torch.isfinite(loss).all() and (loss > 0).all()
    loss.mean().backward()
    assert student.embed.weight.grad is not None and teacher.embed.weight.grad is None
