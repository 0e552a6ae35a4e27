"""Beyond masking (lesson 05): SEDD's score entropy on the absorbing graph and discrete flow matching on
the masking path, checked by brute force and with the exact denoiser of a tiny distribution."""

import itertools
import math

import pytest
import torch
from scipy import stats

from diffnlp.evaluation.oracle import TokenPosteriorDenoiser
from diffnlp.processes.flow_matching import MaskedFlowMatching
from diffnlp.processes.masked import MaskedDiffusion
from diffnlp.processes.sedd import ScoreEntropy
from diffnlp.sampling.kernels import ancestral_step

MASK, V = 3, 4                       # 3 tokens and [MASK] = 3


@pytest.fixture(scope="module")
def tiny():
    seqs = list(itertools.product(range(3), repeat=3))
    p = torch.rand(27, generator=torch.Generator().manual_seed(0), dtype=torch.float64) ** 2 + 0.02
    p = p / p.sum()
    return torch.tensor(seqs), p, TokenPosteriorDenoiser(seqs, p, vocab_size=V, mask_id=MASK)


def _counts(x: torch.Tensor) -> torch.Tensor:
    return torch.bincount(x[:, 0] * 9 + x[:, 1] * 3 + x[:, 2], minlength=27).double()


def test_score_entropy_matches_brute_force():
    """The closed form against the definition: the sum over every neighbour y of z_t (one position changed
    to any other token) of Q(z_t, y) [s_y - ratio log s_y + K(ratio)], ratio = p_t(y | x0) / p_t(z_t | x0)."""
    sedd = ScoreEntropy("cosine", mask_id=MASK)
    g = torch.Generator().manual_seed(1)
    for trial in range(5):
        t = torch.tensor([0.2 + 0.15 * trial], dtype=torch.float64)
        x0 = torch.randint(0, 3, (1, 3), generator=g)
        z = torch.where(torch.rand(1, 3, generator=g) < 0.6, torch.full_like(x0, MASK), x0)
        log_s = torch.randn(1, 3, V, generator=g, dtype=torch.float64)
        log_s[..., MASK] = -math.inf
        got = float(sedd.score_entropy(log_s, z, x0, t))
        a = float(sedd.masking.alpha(t))
        rate = float(sedd.sigma(t))

        def p_tok(tok, clean, a=a):                              # p_t(token | clean token)
            return a * (tok == clean) + (1 - a) * (tok == MASK)

        brute = 0.0
        for i in range(3):
            for v in range(V):
                if v == int(z[0, i]):
                    continue
                q = rate if (int(z[0, i]) == MASK and v != MASK) else 0.0    # forward rate y -> z_t
                if q == 0.0:
                    continue
                ratio = p_tok(v, int(x0[0, i])) / p_tok(int(z[0, i]), int(x0[0, i]))
                s = math.exp(float(log_s[0, i, v]))
                k = ratio * (math.log(ratio) - 1) if ratio > 0 else 0.0
                brute += q * (s - (ratio * math.log(s) if ratio > 0 else 0.0) + k)
        assert got == pytest.approx(brute, rel=1e-10, abs=1e-12)


def test_score_entropy_of_the_exact_scores_is_the_mdlm_integrand(tiny):
    """With s = r p(x0 | z_t), score entropy = w(t) sum_masked -log p(x0^i | z_t): MDLM's NELBO integrand,
    whose exact value is -log p(x) (tests/test_discrete.py)."""
    seqs, p, oracle = tiny
    sedd = ScoreEntropy("loglinear", mask_id=MASK)
    md = sedd.masking
    g = torch.Generator().manual_seed(2)
    x0 = seqs[torch.randint(0, 27, (64,), generator=g)]
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.98 + 0.01
    z = md.add_noise(x0, t, g)
    se = sedd.score_entropy(sedd.log_scores(oracle, z, t), z, x0, t)
    logp = oracle(z).gather(-1, x0[..., None])[..., 0]
    mdlm = md.weight(t) * torch.where(z == MASK, -logp, torch.zeros_like(logp)).sum(-1)
    assert torch.allclose(se, mdlm, atol=1e-9)
    # and the loss is smallest at the exact scores: a perturbed score costs more
    bad = sedd.log_scores(oracle, z, t) + 0.3 * torch.randn(64, 3, V, generator=g, dtype=torch.float64)
    assert sedd.score_entropy(bad, z, x0, t).mean() > se.mean()


@pytest.mark.parametrize("method,schedule,steps", [("tweedie", "loglinear", 64), ("euler", "cosine", 128)])
def test_sedd_sampler_with_exact_scores_reproduces_p(tiny, method, schedule, steps):
    seqs, p, oracle = tiny
    sedd = ScoreEntropy(schedule, mask_id=MASK)
    n = 20000
    *_, x = sedd.sample(oracle, n, 3, steps, method=method, generator=torch.Generator().manual_seed(3))
    assert (x != MASK).all()
    assert stats.chisquare(_counts(x).numpy(), (p * n).numpy()).pvalue > 1e-3


@pytest.mark.parametrize("scheduler,steps", [("linear", 64), ("cubic", 128)])
def test_flow_matching_euler_with_the_exact_denoiser_reproduces_p(tiny, scheduler, steps):
    seqs, p, oracle = tiny
    fm = MaskedFlowMatching(scheduler, mask_id=MASK)
    n = 20000
    *_, x = fm.sample(oracle, n, 3, steps, generator=torch.Generator().manual_seed(4))
    assert (x != MASK).all()
    assert stats.chisquare(_counts(x).numpy(), (p * n).numpy()).pvalue > 1e-3


def test_flow_matching_is_mdlm_read_backwards():
    """Linear kappa: the Euler jump probability h / (1 - t) is MDLM's ancestral reveal probability from
    time 1 - t to 1 - t - h (alpha_min = 0), and kappa'(t) / (1 - kappa(t)) is MDLM's weight w(1 - t)."""
    fm = MaskedFlowMatching("linear", mask_id=MASK)
    md = MaskedDiffusion("loglinear", mask_id=MASK, alpha_min=0.0)
    t = torch.linspace(0.0, 0.9, 10, dtype=torch.float64)
    h = 0.05
    assert torch.allclose(fm.kappa_rate(t) * h, md.reveal_probability(1 - t, 1 - t - h), atol=1e-12)
    assert torch.allclose(fm.kappa_rate(t), md.weight(1 - t), atol=1e-12)
    assert torch.allclose(fm.kappa(t), md.alpha(1 - t), atol=1e-12)


def test_flow_matching_loss_is_the_masked_cross_entropy(tiny):
    seqs, p, oracle = tiny
    fm = MaskedFlowMatching("linear", mask_id=MASK)
    x1 = seqs[:8]
    t = torch.full((8,), 0.3, dtype=torch.float64)
    loss = fm.loss(oracle, x1, generator=torch.Generator().manual_seed(5), t=t)
    x_t = fm.noisy(x1, t, torch.Generator().manual_seed(5))
    nll = -oracle(x_t).gather(-1, x1[..., None])[..., 0]
    assert torch.allclose(loss, torch.where(x_t == MASK, nll, torch.zeros_like(nll)).sum(-1))


def test_ancestral_step_keeps_clean_tokens():
    z = torch.tensor([[0, MASK, 2, MASK]])
    logp = torch.log(torch.full((1, 4, V), 1.0 / 3)).index_fill(-1, torch.tensor([MASK]), -math.inf)
    assert torch.equal(ancestral_step(z, logp, torch.zeros(1), MASK), z)
    out = ancestral_step(z, logp, torch.ones(1), MASK, torch.Generator().manual_seed(0))
    assert (out != MASK).all() and out[0, 0] == 0 and out[0, 2] == 2


def test_bad_inputs():
    with pytest.raises(ValueError, match="scheduler='quadratic'"):
        MaskedFlowMatching("quadratic")
    with pytest.raises(ValueError, match="method='heun'"):
        ScoreEntropy().sample(None, 2, 3, 4, method="heun")
    with pytest.raises(ValueError, match="num_steps=0"):
        MaskedFlowMatching().sample(None, 2, 3, 0)
    with pytest.raises(ValueError, match="\\[MASK\\] id"):
        ScoreEntropy(mask_id=1).loss(None, torch.tensor([[0, 1]]))


# ------------------------------------------------------------------ self-correction (ReMDM)
def test_remasking_is_exact_for_independent_positions(tiny):
    """ReMDM's kernel keeps the forward marginals q(z_s | x). It is exact when the tokens a step draws are
    independent given z_t, as they are for a product distribution: then the samples follow p at any eta,
    and decided tokens really are sent back to [MASK] on the way."""
    seqs, _, _ = tiny
    g = torch.Generator().manual_seed(8)
    marginals = [torch.rand(3, generator=g, dtype=torch.float64) + 0.1 for _ in range(3)]
    marginals = [m / m.sum() for m in marginals]
    prod = torch.tensor([float(marginals[0][a] * marginals[1][b] * marginals[2][c]) for a, b, c in seqs.tolist()],
                        dtype=torch.float64)
    oracle = TokenPosteriorDenoiser(seqs, prod / prod.sum(), vocab_size=V, mask_id=MASK)
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    n = 20000
    traj = list(md.sample(oracle, n, 3, 16, remask=0.3, generator=torch.Generator().manual_seed(6)))
    x = traj[-1]
    assert (x != MASK).all()
    assert stats.chisquare(_counts(x).numpy(), (prod * n).numpy()).pvalue > 1e-3
    remasked = sum(int(((a != MASK) & (b == MASK)).sum()) for a, b in zip(traj, traj[1:]))
    assert remasked > 5000


def test_remasking_is_slightly_biased_for_correlated_positions(tiny):
    """With correlated positions, tokens revealed in the same step are drawn from per-position posteriors
    and can disagree; remasking keeps re-revealing tokens, so such steps keep occurring however many
    steps there are. Measured: TV to p about 0.02 (plain ancestral: 0.01, the sampling noise), small but
    detectable at n = 20,000."""
    seqs, p, oracle = tiny
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    n = 20000
    *_, x = md.sample(oracle, n, 3, 128, remask=0.3, generator=torch.Generator().manual_seed(9))
    counts = _counts(x)
    assert 0.5 * float((counts / n - p).abs().sum()) < 0.05
    assert stats.chisquare(counts.numpy(), (p * n).numpy()).pvalue < 1e-3


def test_remasking_never_touches_fixed_tokens(tiny):
    seqs, p, oracle = tiny
    md = MaskedDiffusion("loglinear", mask_id=MASK)
    fixed = torch.tensor([2, MASK, MASK])
    for z in md.sample(oracle, 500, 3, 32, remask=0.5, fixed=fixed, generator=torch.Generator().manual_seed(7)):
        assert (z[:, 0] == 2).all()
    with pytest.raises(ValueError, match="remask=0.1 applies to strategy='ancestral'"):
        md.sample(oracle, 2, 3, 4, strategy="confidence", remask=0.1)
    with pytest.raises(ValueError, match="remask=1.5 is out of range"):
        md.sample(oracle, 2, 3, 4, remask=1.5)


def test_sedd_nelbo_of_the_exact_scores_is_the_mdlm_nelbo(tiny):
    """With exact scores the score-entropy integrand is MDLM's, so the stratified bound estimates the
    same number as MDLM's exact NELBO (= -log p for the exact denoiser), within 4 standard errors."""
    seqs, p, oracle = tiny
    sedd = ScoreEntropy("loglinear", mask_id=MASK, alpha_min=0.0)
    x0 = seqs[[0, 13, 26]]
    est = sedd.nelbo(oracle, x0, n_samples=4000, generator=torch.Generator().manual_seed(3))
    exact = -torch.log(p[[0, 13, 26]])
    assert torch.all((est.mean - exact).abs() < 4 * est.stderr + 1e-6), (est.mean, exact, est.stderr)
    assert torch.all(est.stderr < 0.2)


def test_euler_and_tweedie_coincide_on_the_loglinear_schedule_only():
    """The Euler step (t - s) sigma(t) and the Tweedie step alpha_s / alpha_t - 1: equal when alpha is linear."""
    t = torch.linspace(0.05, 1.0, 40, dtype=torch.float64)
    s = t - 0.04
    for schedule, same in (("loglinear", True), ("cosine", False)):
        sedd = ScoreEntropy(schedule, mask_id=MASK)
        euler = (t - s) * sedd.sigma(t)
        tweedie = sedd.masking.alpha(s) / sedd.masking.alpha(t) - 1
        assert torch.allclose(euler, tweedie, rtol=1e-9) == same


def test_true_scores_are_the_ratio_of_marginals(tiny):
    """s_{i,y} = p_t(z with z^i = y) / p_t(z) by brute force over the 27 sequences equals r(t) p(x_0^i = y | z_t),
    and with these scores the score entropy is MDLM's integrand."""
    seqs, p, oracle = tiny
    sedd = ScoreEntropy("loglinear", mask_id=MASK)
    t = torch.tensor([0.37], dtype=torch.float64)
    a = float(sedd.masking.alpha(t))

    def marginal(z):                                          # p_t(z) = sum_x p(x) prod_j q(z_j | x_j)
        q = torch.ones(27, dtype=torch.float64)
        for j, zj in enumerate(z):
            q = q * (seqs[:, j] == zj).double() * a if zj != MASK else q * (1 - a)
        return float((p * q).sum())

    for z in ((MASK, 0, 2), (1, MASK, MASK), (MASK, MASK, MASK)):
        zt = torch.tensor([z])
        got = sedd.true_log_scores(torch.log_softmax(oracle(zt), -1), t).exp()[0]
        for i in range(3):
            if z[i] != MASK:
                continue
            for y in range(3):
                brute = marginal(z[:i] + (y,) + z[i + 1:]) / marginal(z)
                assert float(got[i, y]) == pytest.approx(brute, rel=1e-9)
            assert float(got[i, MASK]) == 0.0
    x0 = seqs[[5]]
    z = torch.tensor([[MASK, int(x0[0, 1]), MASK]])
    se = sedd.score_entropy(sedd.true_log_scores(torch.log_softmax(oracle(z), -1), t), z, x0, t)
    logp = torch.log_softmax(oracle(z), -1).gather(-1, x0[..., None])[..., 0]
    mdlm = sedd.masking.weight(t) * torch.where(z == MASK, -logp, torch.zeros_like(logp)).sum(-1)
    assert torch.allclose(se, mdlm, atol=1e-10)


def test_token_revisions_count_changes_after_the_first():
    from diffnlp.evaluation.metrics import token_revisions

    M_ = 9
    states = [torch.tensor([[M_, M_, 4]]), torch.tensor([[2, M_, 4]]), torch.tensor([[3, 5, 4]]),
              torch.tensor([[2, 5, 4]])]
    # position 0: set to 2, changed to 3, back to 2 (2 revisions); position 1: set once; position 2: never changed
    assert token_revisions(states).tolist() == [2]
    assert token_revisions(states[:2]).tolist() == [0]
    uniform = TokenPosteriorDenoiser(list(itertools.product(range(3), repeat=3)),
                                     torch.full((27,), 1 / 27, dtype=torch.float64), vocab_size=V, mask_id=MASK)
    oracle_traj = list(MaskedDiffusion("loglinear", mask_id=MASK).sample(uniform, 16, 3, 4,
                                                                         generator=torch.Generator().manual_seed(0)))
    assert token_revisions(oracle_traj).eq(0).all()          # MDLM never changes a revealed token
    with pytest.raises(ValueError, match="at least two"):
        token_revisions(states[:1])


def test_field_map_places_every_method():
    import matplotlib

    matplotlib.use("Agg")
    from diffnlp.course.plotting import FIELD_MAP, plot_field_map

    ax = plot_field_map()
    texts = " ".join(t.get_text() for t in ax.texts)
    for _, methods in FIELD_MAP.values():
        for name, lesson in methods:
            assert name in texts and (not lesson or f"(L{lesson})" in texts)
    for name in ("Diffusion-LM", "SSD-LM", "MDLM", "LLaDA (8B)", "SEDD-uniform", "BD3-LM", "Gemini Diffusion*"):
        assert name in texts
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
