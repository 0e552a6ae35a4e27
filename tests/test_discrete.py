"""Masked diffusion against an exact denoiser on a tiny *correlated* distribution.

The distribution: length 3 over the tokens {0, 1, 2} (mask id 3), random probabilities for all 27
sequences. The oracle returns the true posterior of every masked token given the visible ones.
Each sampler's exact output distribution is computed here, independently of the package, by
enumerating its Markov chain over partially masked states; the package's own samples must then pass
a chi-square test against it.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.stats import chisquare

from diffnlp import MaskedDiffusion
from diffnlp.base import decision_steps
from diffnlp.evaluation.oracle import TokenPosteriorDenoiser
from diffnlp.models.transformer import Transformer
from diffnlp.schedules import mask_alpha, mask_loss_weight, masked_count_probabilities, token_loss_weights

V, L, MASK = 3, 3, 3
SEQS = list(itertools.product(range(V), repeat=L))


def _joint(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(len(SEQS), generator=g, dtype=torch.float64) ** 2 + 0.02
    return p / p.sum()


P = _joint()
ORACLE = TokenPosteriorDenoiser(SEQS, P, vocab_size=V + 1, mask_id=MASK)


def _cond(state: tuple) -> list[list[float]]:
    """p(x^i = v | visible tokens of state), by brute force over the 27 sequences."""
    w = [float(P[j]) if all(s is None or s == x for s, x in zip(state, seq)) else 0.0 for j, seq in enumerate(SEQS)]
    z = sum(w)
    return [[sum(wj for wj, seq in zip(w, SEQS) if seq[i] == v) / z for v in range(V)] for i in range(L)]


def _as_dist(states: dict) -> torch.Tensor:
    return torch.tensor([states.get(seq, 0.0) for seq in SEQS], dtype=torch.float64)


def _propagate(num_steps: int, moves) -> torch.Tensor:
    """Push probability through a sampler's chain: ``moves(state, cond)`` yields (next state, probability)."""
    states = {(None,) * L: 1.0}
    for k in range(num_steps):
        nxt: dict = {}
        for s, ps in states.items():
            for ns, q in moves(s, _cond(s), k):
                nxt[ns] = nxt.get(ns, 0.0) + ps * q
        states = nxt
    return _as_dist(states)


def _masked(s: tuple) -> list[int]:
    return [i for i in range(L) if s[i] is None]


def _chain_random_one_per_step() -> torch.Tensor:
    """Reveal one uniformly chosen masked position per step, its token from the true conditional."""
    def moves(s, c, k):
        m = _masked(s)
        for i in m:
            for v in range(V):
                yield s[:i] + (v,) + s[i + 1:], c[i][v] / len(m)
    return _propagate(L, moves)


def _chain_ancestral(K: int, eps: float = 1e-3) -> torch.Tensor:
    """MDLM ancestral sampling on the grid t_k = 1 - k/K: each masked position is revealed with
    probability r = (alpha(s) - alpha(t)) / (1 - alpha(t)), independently, each from its own conditional."""
    def moves(s, c, k):
        t, s_ = 1 - k / K, 1 - (k + 1) / K
        a_t = float(mask_alpha("loglinear", torch.tensor(t, dtype=torch.float64), eps))
        a_s = 1.0 if k == K - 1 else float(mask_alpha("loglinear", torch.tensor(s_, dtype=torch.float64), eps))
        r = (a_s - a_t) / (1 - a_t)
        m = _masked(s)
        for reveal in itertools.product((False, True), repeat=len(m)):
            pr = math.prod(r if b else 1 - r for b in reveal)
            chosen = [i for i, b in zip(m, reveal) if b]
            for vals in itertools.product(range(V), repeat=len(chosen)):
                ns = list(s)
                for i, v in zip(chosen, vals):
                    ns[i] = v
                yield tuple(ns), pr * math.prod(c[i][v] for i, v in zip(chosen, vals))
    return _propagate(K, moves)


def _chain_confidence() -> torch.Tensor:
    """LLaDA low-confidence remasking, one token per step at temperature 1: draw a token for every
    masked position from its conditional, keep the one whose drawn token is most probable."""
    def moves(s, c, k):
        m = _masked(s)
        for vals in itertools.product(range(V), repeat=len(m)):
            q = math.prod(c[i][v] for i, v in zip(m, vals))
            if q == 0:
                continue
            best = max(range(len(m)), key=lambda j: (c[m[j]][vals[j]], -j))   # ties: leftmost
            yield s[:m[best]] + (vals[best],) + s[m[best] + 1:], q
    return _propagate(L, moves)


def _samples_dist(final: torch.Tensor) -> torch.Tensor:
    idx = (final[:, 0] * V * V + final[:, 1] * V + final[:, 2]).long()
    return torch.bincount(idx, minlength=len(SEQS)).double()


def _chi2_ok(counts: torch.Tensor, probs: torch.Tensor) -> float:
    keep = probs > 0
    assert counts[~keep].sum() == 0, "the sampler produced a sequence the chain says is impossible"
    return chisquare(counts[keep].numpy(), (probs[keep] * counts.sum()).numpy()).pvalue


def tv(p: torch.Tensor, q: torch.Tensor) -> float:
    return 0.5 * float((p - q).abs().sum())


def entropy(p: torch.Tensor) -> float:
    p = p[p > 0]
    return float(-(p * p.log()).sum())


# ------------------------------------------------------------------ the oracle itself
def test_oracle_posterior_matches_brute_force():
    z = torch.tensor([[MASK, 1, MASK], [0, MASK, MASK], [MASK, MASK, MASK]])
    post = ORACLE.posterior(z)
    for b, state in enumerate([(None, 1, None), (0, None, None), (None, None, None)]):
        want = torch.tensor(_cond(state), dtype=torch.float64)
        assert torch.allclose(post[b, :, :V], want, atol=1e-12)


# ------------------------------------------------------------------ the NELBO
def test_exact_nelbo_equals_minus_log_p_with_exact_denoiser():
    md = MaskedDiffusion("loglinear", mask_id=MASK, alpha_min=0.0)
    x = torch.tensor(SEQS)
    got = md.exact_nelbo(ORACLE, x)
    assert torch.allclose(got, -P.log(), atol=1e-9, rtol=0)


def test_exact_nelbo_is_an_upper_bound_for_a_wrong_denoiser():
    wrong = TokenPosteriorDenoiser(SEQS, _joint(seed=7), vocab_size=V + 1, mask_id=MASK)
    md = MaskedDiffusion("loglinear", mask_id=MASK, alpha_min=0.0)
    nelbo = md.exact_nelbo(wrong, torch.tensor(SEQS))
    # E_p[NELBO] >= H(p), with equality only for the exact denoiser
    assert float((P * nelbo).sum()) > entropy(P) + 1e-3


@pytest.mark.parametrize("wrong", [False, True])
def test_monte_carlo_nelbo_agrees_with_exact_within_its_standard_error(wrong):
    model = TokenPosteriorDenoiser(SEQS, _joint(seed=7), V + 1, MASK) if wrong else ORACLE
    md = MaskedDiffusion("loglinear", mask_id=MASK, alpha_min=0.0)
    x = torch.tensor(SEQS)
    exact = md.exact_nelbo(model, x)
    est = md.nelbo(model, x, n_samples=60, generator=torch.Generator().manual_seed(0))
    z = (est.mean - exact) / est.stderr.clamp_min(1e-12)
    assert (z.abs() < 3).all(), z
    assert (z.abs() < 1).float().mean() >= 0.6          # about 68 % within one standard error (or more)


@pytest.mark.parametrize("schedule,alpha_min", [("loglinear", 0.0), ("loglinear", 1e-3), ("cosine", 1e-3)])
def test_the_training_loss_averages_to_the_exact_nelbo(schedule, alpha_min):
    # loss() draws t and weighs by w(t) = -alpha'/(1 - alpha): its mean is the NELBO of the same schedule and alpha_min
    md = MaskedDiffusion(schedule, mask_id=MASK, alpha_min=alpha_min)
    x = torch.tensor(SEQS[:4]).repeat(4000, 1)           # interleaved, so each sequence's t spread over (0, 1]
    draws = md.loss(ORACLE, x, generator=torch.Generator().manual_seed(1)).reshape(4000, 4).T
    exact = md.exact_nelbo(ORACLE, torch.tensor(SEQS[:4]))
    se = draws.std(1) / 4000 ** 0.5
    assert ((draws.mean(1) - exact).abs() < 4 * se).all(), (draws.mean(1), exact, se)


def test_nelbo_does_not_depend_on_the_schedule_when_eps_is_zero():
    x = torch.tensor(SEQS[:5])
    a = MaskedDiffusion("loglinear", mask_id=MASK, alpha_min=0.0).exact_nelbo(ORACLE, x)
    b = MaskedDiffusion("cosine", mask_id=MASK, alpha_min=0.0).exact_nelbo(ORACLE, x)
    assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("schedule", ["loglinear", "cosine"])
def test_loss_weight_matches_finite_differences(schedule):
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    d_alpha = (mask_alpha(schedule, t + h) - mask_alpha(schedule, t - h)) / (2 * h)
    want = -d_alpha / (1 - mask_alpha(schedule, t))
    assert torch.allclose(mask_loss_weight(schedule, t), want, rtol=1e-6)


def test_loglinear_weight_is_one_over_t():
    t = torch.linspace(0.01, 1, 50, dtype=torch.float64)
    assert torch.allclose(MaskedDiffusion("loglinear", 3, alpha_min=1e-3).weight(t), 1 / t, rtol=1e-12)


def test_add_noise_masks_at_rate_one_minus_alpha():
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    x = torch.zeros(4000, 32, dtype=torch.long)
    t = torch.full((4000,), 0.3)
    frac = (md.add_noise(x, t, generator=torch.Generator().manual_seed(0)) == MASK).double().mean().item()
    assert abs(frac - 0.3 * (1 - 1e-3)) < 0.005


def test_subs_parameterisation():
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    model = Transformer(vocab_size=V + 1, max_len=L)
    z = torch.tensor([[0, MASK, 2]])
    logp = md.log_probs(model, z, torch.ones(1))
    assert torch.isinf(logp[0, 1, MASK])                        # never predicts [MASK]
    assert torch.allclose(logp[0, 1].exp().sum(), torch.tensor(1.0))
    assert logp[0, 0, 0] == 0 and torch.isinf(logp[0, 0, 1:]).all()   # carry-over of a clean token


def test_stratified_times_cover_the_unit_interval():
    t = MaskedDiffusion().sample_t(8, generator=torch.Generator().manual_seed(0))
    assert ((t > 0) & (t <= 1)).all()
    assert sorted((t * 8).ceil().long().tolist()) == list(range(1, 9))   # one t in each eighth


# ------------------------------------------------------------------ the samplers
N = 20000


def test_random_order_one_token_per_step_is_exact():
    chain = _chain_random_one_per_step()
    assert torch.allclose(chain, P, atol=1e-9, rtol=0)
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    final = md.sample(ORACLE, N, L, L, strategy="random", generator=torch.Generator().manual_seed(1)).run()
    assert _chi2_ok(_samples_dist(final), chain) > 1e-3


def test_k_step_ancestral_matches_its_chain_and_converges_as_k_grows():
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    tvs = {}
    for K in (1, 2, 3, 6, 12, 48):
        chain = _chain_ancestral(K)
        assert abs(float(chain.sum()) - 1) < 1e-12
        tvs[K] = tv(chain, P)
    ks = sorted(tvs)
    assert all(tvs[a] > tvs[b] for a, b in zip(ks, ks[1:])), tvs       # shrinks as K grows
    assert tvs[1] > 0.05 and tvs[48] < 0.02
    for K in (2, 6):
        final = md.sample(ORACLE, N, L, K, strategy="ancestral", generator=torch.Generator().manual_seed(K)).run()
        assert _chi2_ok(_samples_dist(final), _chain_ancestral(K)) > 1e-3


def test_one_step_ancestral_is_the_product_of_marginals():
    # K = 1 reveals everything at once, independently: the error of parallel decoding at its worst
    marg = torch.tensor(_cond((None,) * L), dtype=torch.float64)
    product = torch.tensor([math.prod(float(marg[i, v]) for i, v in enumerate(s)) for s in SEQS], dtype=torch.float64)
    assert torch.allclose(_chain_ancestral(1), product, atol=1e-12)


def test_confidence_remasking_is_biased_toward_likely_tokens():
    chain = _chain_confidence()
    assert abs(float(chain.sum()) - 1) < 1e-12
    assert tv(chain, P) > 0.02                                # not the data distribution
    assert entropy(chain) < entropy(P)                        # it favours high-probability tokens
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    final = md.sample(ORACLE, N, L, L, strategy="confidence", generator=torch.Generator().manual_seed(3)).run()
    assert _chi2_ok(_samples_dist(final), chain) > 1e-3


def test_infilling_the_middle_samples_the_true_conditional():
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    fixed = torch.tensor([2, MASK, 0])
    final = md.sample(ORACLE, 6000, L, L, strategy="random", fixed=fixed,
                      generator=torch.Generator().manual_seed(4)).run()
    assert (final[:, 0] == 2).all() and (final[:, 2] == 0).all()
    want = torch.tensor(_cond((2, None, 0))[1], dtype=torch.float64)
    want = want / want.sum()
    counts = torch.bincount(final[:, 1], minlength=V).double()
    assert chisquare(counts.numpy(), (want * 6000).numpy()).pvalue > 1e-3


def test_blocks_decide_left_to_right():
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    model = Transformer(vocab_size=10, max_len=8)
    traj = list(md.sample(model, 4, 8, 8, strategy="confidence", block_length=4,
                          generator=torch.Generator().manual_seed(0)))
    steps = decision_steps(traj, mask_id=MASK)
    assert (steps[:, :4].max(1).values < steps[:, 4:].min(1).values).all()
    assert (traj[-1] != MASK).all()


@pytest.mark.parametrize("strategy", ["ancestral", "confidence", "random"])
def test_every_strategy_ends_fully_unmasked_and_is_seeded(strategy):
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    a = md.sample(ORACLE, 16, L, 2, strategy=strategy, generator=torch.Generator().manual_seed(5)).run()
    b = md.sample(ORACLE, 16, L, 2, strategy=strategy, generator=torch.Generator().manual_seed(5)).run()
    assert (a != MASK).all() and torch.equal(a, b)


@pytest.mark.parametrize("strategy", ["confidence", "random"])
def test_reveal_counts_per_step_with_blocks_and_fixed_positions(strategy):
    md = MaskedDiffusion("loglinear", mask_id=1)
    model = Transformer(vocab_size=10, max_len=8)
    fixed = torch.tensor([1, 5, 1, 1, 1, 1, 1, 7])          # positions 1 and 7 given
    traj = list(md.sample(model, 2, 8, 6, strategy=strategy, block_length=4, fixed=fixed,
                          generator=torch.Generator().manual_seed(0)))
    counts = [int(((b != 1) & (a == 1)).sum(1)[0]) for a, b in zip(traj, traj[1:])]
    # block 1 has 3 free positions over 3 steps, block 2 has 3 over 3: one per step
    assert counts == [1, 1, 1, 1, 1, 1]
    assert (traj[-1][:, 1] == 5).all() and (traj[-1][:, 7] == 7).all()
    traj = list(md.sample(model, 1, 8, 3, strategy=strategy, generator=torch.Generator().manual_seed(0)))
    assert [int(((b != 1) & (a == 1)).sum()) for a, b in zip(traj, traj[1:])] == [3, 3, 2]


def test_cached_sampler_is_bitwise_equal_and_saves_calls():
    torch.manual_seed(0)
    model = Transformer(vocab_size=12, max_len=8).eval()
    md = MaskedDiffusion("loglinear", mask_id=1)
    for batch in (1, 2, 4):
        plain = md.sample(model, batch, 8, 32, generator=torch.Generator().manual_seed(batch))
        cached = md.sample(model, batch, 8, 32, generator=torch.Generator().manual_seed(batch), reuse_unchanged=True)
        for a, b in zip(plain, cached, strict=True):
            assert torch.equal(a, b)
        assert cached.network_calls + cached.calls_saved == plain.network_calls == 32
        assert cached.calls_saved > 0


def test_temperature_zero_is_greedy():
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    a = md.sample(ORACLE, 3, L, L, strategy="confidence", temperature=0.0,
                  generator=torch.Generator().manual_seed(0)).run()
    assert (a == a[0]).all()                                  # deterministic given the oracle


@pytest.mark.parametrize("strategy,K", [("random", 3), ("confidence", 3), ("ancestral", 1), ("ancestral", 4)])
def test_package_chain_enumeration_matches_the_independent_one(strategy, K):
    from diffnlp.evaluation.oracle import sampler_distribution

    md = MaskedDiffusion("loglinear", mask_id=MASK)
    want = {"random": _chain_random_one_per_step, "confidence": _chain_confidence}.get(strategy)
    want = want() if want else _chain_ancestral(K)
    assert torch.allclose(sampler_distribution(ORACLE, md, strategy, K), want, atol=1e-12)


def test_exact_nelbo_builds_no_graph():
    model = Transformer(vocab_size=5, max_len=3, d_model=16, n_layers=1, n_heads=2)
    out = MaskedDiffusion("loglinear", mask_id=4).exact_nelbo(model, torch.tensor([[0, 1, 2]]))
    assert not out.requires_grad


# ---------------------------------------------------------------- the per-token training weight (lesson 04)
@pytest.mark.parametrize("length", [1, 3, 8, 32])
def test_masked_count_is_uniform_under_the_loglinear_schedule(length):
    # P(k) = C(L, k) int_0^1 t^k (1 - t)^(L-k) dt = 1 / (L + 1), checked by quadrature; with alpha_min > 0 it
    # still sums to 1 and matches a quadrature of the same integral over t
    uniform = torch.full((length + 1,), 1 / (length + 1), dtype=torch.float64)
    assert torch.allclose(masked_count_probabilities("loglinear", length, 0.0), uniform, atol=1e-14)
    md = MaskedDiffusion("loglinear", mask_id=MASK, alpha_min=1e-3)
    P = masked_count_probabilities("loglinear", length, 1e-3)
    t = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000               # midpoint rule on (0, 1)
    u = 1 - md.alpha(t)
    quad = torch.stack([math.comb(length, k) * (u ** k * (1 - u) ** (length - k)).mean() for k in range(length + 1)])
    assert torch.allclose(P, quad, atol=1e-8) and abs(float(P.sum()) - 1) < 1e-12
    with pytest.raises(ValueError, match="loglinear"):
        masked_count_probabilities("cosine", length)


def test_token_loss_is_L_over_L_plus_1_of_the_nelbo_by_enumeration():
    # E_t E_z[(L/k) sum_masked CE] = L/(L+1) NELBO exactly when alpha_min = 0, for any denoiser: checked mask by
    # mask against an independent enumeration with the Beta integral, and against exact_nelbo
    md = MaskedDiffusion("loglinear", mask_id=MASK, alpha_min=0.0)
    d, c = token_loss_weights("loglinear", L, 0.0), md.mask_weights(L)
    assert torch.allclose(d, L / (L + 1) * c, atol=1e-15)
    for model in (ORACLE, _untrained_model()):
        x = torch.tensor(SEQS)
        token = md.exact_loss(model, x, weighting="token")
        assert torch.allclose(token, L / (L + 1) * md.exact_nelbo(model, x), atol=1e-10)
        assert torch.equal(md.exact_loss(model, x, weighting="nelbo"), md.exact_nelbo(model, x))
        # by hand: a mask of k positions has probability int t^k (1-t)^(L-k) dt = k!(L-k)!/(L+1)! and weight L/k
        want = torch.zeros(len(SEQS), dtype=torch.float64)
        for m in range(1, 2 ** L):
            mask = torch.tensor([(m >> i) & 1 for i in range(L)], dtype=torch.bool)
            k = int(mask.sum())
            prob = math.factorial(k) * math.factorial(L - k) / math.factorial(L + 1)
            z = torch.where(mask, MASK, x)
            nll = -md.log_probs(model, z, torch.ones(len(x))).double().gather(-1, x[..., None])[..., 0]
            want += prob * (L / k) * torch.where(mask, nll, 0.0).sum(-1)
        assert torch.allclose(token, want, atol=1e-5)             # float32 network, other batches: low bits


@pytest.mark.parametrize("alpha_min", [0.0, 1e-3])
def test_the_token_loss_averages_to_its_exact_expectation(alpha_min):
    md = MaskedDiffusion("loglinear", mask_id=MASK, alpha_min=alpha_min)
    x = torch.tensor(SEQS[:4]).repeat(4000, 1)
    draws = md.loss(ORACLE, x, generator=torch.Generator().manual_seed(2), weighting="token").reshape(4000, 4).T
    exact = md.exact_loss(ORACLE, torch.tensor(SEQS[:4]), weighting="token")
    se = draws.std(1) / 4000 ** 0.5
    assert ((draws.mean(1) - exact).abs() < 4 * se).all(), (draws.mean(1), exact, se)
    ratio = exact / md.exact_nelbo(ORACLE, torch.tensor(SEQS[:4]))
    assert (ratio >= L / (L + 1) - 1e-12).all() and (ratio <= L / (L + 1) / (1 - alpha_min) + 1e-12).all()


def _untrained_model():
    torch.manual_seed(0)
    return Transformer(vocab_size=V + 1, max_len=L, d_model=16, n_layers=1, n_heads=2).eval()


@pytest.mark.parametrize("schedule,K", [("loglinear", 8), ("loglinear", 3), ("cosine", 8)])
def test_same_step_probability_against_the_sampler(schedule, K):
    # each position's reveal step is independent with P(step k) = q_k; the package's sampler agrees
    md = MaskedDiffusion(schedule, mask_id=MASK)
    q = md.reveal_step_probabilities(K)
    assert abs(float(q.sum()) - 1) < 1e-12
    if schedule == "loglinear":
        assert torch.allclose(q, torch.full((K,), 1 / K, dtype=torch.float64), atol=1e-12)
        assert abs(md.same_step_probability(K) - 1 / K) < 1e-12
        assert abs(md.same_step_probability(K, 3) - (1 - math.perm(K, 3) / K ** 3)) < 1e-12
    n = 20_000
    when = decision_steps(list(md.sample(ORACLE, n, L, K, generator=torch.Generator().manual_seed(0))), MASK)
    freq = torch.stack([(when[:, 0] == k + 1).double().mean() for k in range(K)])
    assert ((freq - q).abs() < 4 * (q * (1 - q) / n).sqrt() + 1e-9).all(), (freq, q)
    for m in (2, 3):
        p = md.same_step_probability(K, m)
        hit = torch.tensor([len(set(r)) < m for r in when[:, :m].tolist()]).double().mean()
        assert abs(float(hit) - p) < 4 * (p * (1 - p) / n) ** 0.5, (m, float(hit), p)
