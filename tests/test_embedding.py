"""Diffusion-LM (diffnlp.embedding): the loss terms by hand, rounding and clamping, and the samplers
driven by the exact x_0-predictor of a tiny distribution over word sequences."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from diffnlp.evaluation import lm_eval
from diffnlp.evaluation.oracle import EmbeddingPosteriorDenoiser, PositionClassifier
from diffnlp.models.embedding import EmbeddingDenoiser
from diffnlp.processes.embedding import EmbeddingDiffusion, clamp_to_words, round_to_words, rounding_logits
from diffnlp.sampling.guidance import ClassifierGuidance

V, L, D = 3, 2, 2
MASK = 1  # the process's mask id; word 1 is never in the tiny support's fixed positions


def _tiny(T: int = 200):
    """3 words on a circle of radius 1.5 (2-D vectors), sequences of length 2, a correlated p(w)."""
    angles = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    emb = 1.5 * torch.stack([angles.cos(), angles.sin()], 1)
    seqs = torch.tensor([[a, b] for a in range(V) for b in range(V)])
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(V * V) * 0.8)
    p = torch.tensor(p / p.sum())
    process = EmbeddingDiffusion(T)
    oracle = EmbeddingPosteriorDenoiser(process.gaussian, emb, seqs, p, sigma_0=process.sigma_0)
    return process, oracle, seqs, p


def _histogram(ids: torch.Tensor) -> torch.Tensor:
    """Counts over the V^L sequences (index a * V + b)."""
    idx = ids[:, 0] * V + ids[:, 1]
    return torch.bincount(idx, minlength=V * V).double()


def _tv(counts: torch.Tensor, p: torch.Tensor) -> float:
    return 0.5 * float((counts / counts.sum() - p).abs().sum())


def _entropy(q: torch.Tensor) -> float:
    q = q[q > 0]
    return float(-(q * q.log()).sum())


# ------------------------------------------------------------------ loss terms by hand
def test_loss_terms_match_a_hand_computation():
    torch.manual_seed(0)
    model = EmbeddingDenoiser(vocab_size=5, max_len=3, embed_dim=2, num_train_timesteps=50, d_model=16,
                              n_layers=1, n_heads=2)
    process = EmbeddingDiffusion(50)
    ids = torch.tensor([[0, 4, 2], [3, 3, 1]])
    t = torch.tensor([7, 31])
    terms = process.loss_terms(model, ids, torch.Generator().manual_seed(5), timesteps=t)
    # the same draws, in the same order: eps_0, then the noise (t is given)
    g = torch.Generator().manual_seed(5)
    eps0 = torch.randn((2, 3, 2), generator=g).double()
    noise = torch.randn((2, 3, 2), generator=g).double()
    E = model.embedding.weight.detach().double()
    abar = torch.cumprod(1 - process.gaussian.betas.double(), 0)
    s0 = math.sqrt(1 - abar[0])
    for b in range(2):
        e = E[ids[b]]
        x0 = e + s0 * eps0[b]
        xt = abar[t[b]].sqrt() * x0 + (1 - abar[t[b]]).sqrt() * noise[b]
        f = model(xt[None].float(), t[b:b + 1]).detach().double()[0]
        mse = float(((f - x0) ** 2).sum() / 6)
        prior = float((abar[-1] * e ** 2).sum() / 6)
        ce = 0.0
        for i in range(3):
            d2 = torch.tensor([float(((x0[i] - E[v]) ** 2).sum()) for v in range(5)])
            ce += float(d2[ids[b, i]] + torch.logsumexp(-d2, 0)) / 3
        assert terms.mse[b].item() == pytest.approx(mse, rel=1e-4)
        assert terms.prior[b].item() == pytest.approx(prior, rel=1e-4)
        assert terms.rounding[b].item() == pytest.approx(ce, rel=1e-4, abs=1e-6)
    assert torch.allclose(terms.total, terms.mse + terms.prior + terms.rounding)


def test_loss_trains_the_word_vectors_and_the_denoiser():
    model = EmbeddingDenoiser(vocab_size=5, max_len=3, embed_dim=2, num_train_timesteps=50, d_model=16,
                              n_layers=1, n_heads=2)
    process = EmbeddingDiffusion(50)
    process.loss(model, torch.tensor([[0, 4, 2]])).sum().backward()
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.transformer.parameters() if p.requires_grad)


# ------------------------------------------------------------------ rounding and clamping
def test_rounding_is_the_nearest_word_vector():
    torch.manual_seed(1)
    model = EmbeddingDenoiser(vocab_size=40, max_len=4, embed_dim=6, d_model=16, n_layers=1, n_heads=2)
    x = torch.randn(8, 4, 6) * 2
    E = model.embedding.weight.detach()
    brute = torch.tensor([[min(range(40), key=lambda v: float(((x[b, i] - E[v]) ** 2).sum()))
                           for i in range(4)] for b in range(8)])
    assert torch.equal(round_to_words(model, x), brute)
    # the tied readout is -||x - e||^2, and a word vector rounds to itself
    d2 = ((x[..., None, :] - E) ** 2).sum(-1)
    assert torch.allclose(rounding_logits(model, x), -d2, atol=1e-4)
    assert torch.equal(round_to_words(model, E.detach()), torch.arange(40))


def test_clamping_returns_exact_word_vectors():
    torch.manual_seed(2)
    model = EmbeddingDenoiser(vocab_size=30, max_len=4, embed_dim=5, d_model=16, n_layers=1, n_heads=2)
    x = torch.randn(16, 4, 5)
    c = clamp_to_words(model, x)
    E = model.embedding.weight.detach()
    hits = (c.detach()[..., None, :] == E).all(-1)                  # (16, 4, V): exactly one row of EMB
    assert torch.equal(hits.sum(-1), torch.ones(16, 4, dtype=torch.long))
    assert torch.equal(hits.float().argmax(-1), round_to_words(model, x))


def test_clamped_sampling_ends_on_word_vectors():
    process, oracle, _, _ = _tiny(50)
    *_, x = process.sample(oracle, 64, L, num_steps=10, clamp=True,
                           generator=torch.Generator().manual_seed(0))
    E = oracle.embedding.weight
    assert ((x[..., None, :] - E).abs().amax(-1) < 1e-6).any(-1).all()


# ------------------------------------------------------------------ the exact denoiser
def test_exact_denoiser_is_the_posterior_weighted_mean():
    process, oracle, seqs, p = _tiny(50)
    x = torch.randn(4, L, D)
    t = torch.tensor([0, 10, 30, 49])
    E = oracle.embedding.weight.double()
    abar = process.gaussian.alphas_cumprod.double()[t]
    s2 = process.sigma_0 ** 2
    for b in range(4):
        var = abar[b] * s2 + 1 - abar[b]
        logw = torch.tensor([math.log(p[k]) - float(((x[b].double() - abar[b].sqrt() * E[seqs[k]]) ** 2).sum())
                             / (2 * var) for k in range(len(seqs))])
        w = torch.softmax(logw, 0)
        gain = abar[b].sqrt() * s2 / var
        expect = sum(w[k] * (E[seqs[k]] + gain * (x[b].double() - abar[b].sqrt() * E[seqs[k]]))
                     for k in range(len(seqs)))
        assert torch.allclose(oracle(x[b:b + 1], t[b:b + 1])[0].double(), expect, atol=1e-5)


def test_ddpm_with_the_exact_denoiser_reproduces_the_distribution():
    process, oracle, _, p = _tiny(200)
    n = 6000
    ids = lm_eval.generate(oracle, process, n, L, num_steps=200, batch_size=n, seed=0)
    counts = _histogram(ids)
    chi2 = stats.chisquare(counts.numpy(), (p * n).numpy())
    assert chi2.pvalue > 1e-3, (counts / n, p)
    assert _tv(counts, p) < 0.03


def test_clamping_is_not_an_exact_sampler():
    """With the exact denoiser, clamping moves the output distribution away from p: it snaps the x_0
    estimate to one word while the posterior is still spread over several, so early, noisy guesses get
    locked in. The unclamped sampler at the same steps stays within sampling noise."""
    process, oracle, _, p = _tiny(200)
    n = 6000
    free = _histogram(lm_eval.generate(oracle, process, n, L, num_steps=200, batch_size=n, seed=1))
    clamped = _histogram(lm_eval.generate(oracle, process, n, L, num_steps=200, clamp=True, batch_size=n, seed=1))
    tv_free, tv_clamped = _tv(free, p), _tv(clamped, p)
    assert stats.chisquare(clamped.numpy(), (p * n).numpy()).pvalue < 1e-6
    assert tv_clamped > 3 * tv_free and tv_clamped > 0.05
    assert _entropy(clamped / n) < _entropy(p) - 0.05          # it sharpens: likely words are locked in early


def test_infilling_keeps_the_known_words_and_is_exact_for_independent_positions():
    """Replacement infilling (the known positions are put back at their noised word vectors after every
    step) is exact when the positions are independent: the free word then follows its own marginal."""
    process, oracle, seqs, _ = _tiny(200)
    p1 = torch.tensor([0.6, 0.1, 0.3], dtype=torch.float64)
    p2 = torch.tensor([0.2, 0.1, 0.7], dtype=torch.float64)
    prod = (p1[:, None] * p2[None]).reshape(-1)
    indep = EmbeddingPosteriorDenoiser(process.gaussian, oracle.embedding.weight, seqs, prod, process.sigma_0)
    n = 4000
    ids = lm_eval.generate(indep, process, n, L, num_steps=200, fixed=torch.tensor([2, MASK]), batch_size=n, seed=2)
    assert (ids[:, 0] == 2).all()
    counts = torch.bincount(ids[:, 1], minlength=V).double()
    assert stats.chisquare(counts.numpy(), (p2 * n).numpy()).pvalue > 1e-3


def test_infilling_is_approximate_for_correlated_positions():
    """With correlated positions replacement is only approximate: the free word's distribution misses
    the true conditional p(w_2 | w_1 = a) by far more than sampling noise (lesson 03 shows the numbers)."""
    process, oracle, _, p = _tiny(200)
    a, n = 0, 4000
    ids = lm_eval.generate(oracle, process, n, L, num_steps=200, fixed=torch.tensor([a, MASK]), batch_size=n, seed=2)
    assert (ids[:, 0] == a).all()
    cond = p.view(V, V)[a] / p.view(V, V)[a].sum()
    counts = torch.bincount(ids[:, 1], minlength=V).double()
    assert stats.chisquare(counts.numpy(), (cond * n).numpy()).pvalue < 1e-6
    marginal = p.view(V, V).sum(0)
    assert _tv(counts, cond) < _tv(counts, marginal)        # it still leans toward the conditional


def test_guidance_raises_the_target_rate():
    """The exact noisy classifier of the first word: guiding toward its rarest value raises its rate."""
    process, oracle, _, p = _tiny(100)
    first = p.view(V, V).sum(1)
    target = int(first.argmin())
    clf = PositionClassifier(oracle, 0)
    n = 2000
    base = lm_eval.generate(oracle, process, n, L, num_steps=100, batch_size=n, seed=3)
    guided = lm_eval.generate(oracle, process, n, L, num_steps=100, batch_size=n, seed=3,
                              guidance=ClassifierGuidance(clf, target, scale=3.0))
    r0, r1 = float((base[:, 0] == target).float().mean()), float((guided[:, 0] == target).float().mean())
    assert abs(r0 - float(first[target])) < 0.04
    assert r1 > r0 + 0.2


def test_nelbo_bounds_the_entropy_and_prefers_the_exact_denoiser():
    """E_p[NELBO] >= E_p[-log p_model] >= H(p); the exact denoiser's bound is lower than a wrong one's."""
    process, oracle, seqs, p = _tiny(100)
    g = torch.Generator().manual_seed(0)
    est = process.nelbo(oracle, seqs.repeat(40, 1), n_samples=50, generator=g)
    per_seq = est.mean.view(40, V * V).mean(0)
    H = _entropy(p)
    exact = float((p * per_seq).sum())
    assert exact >= H - 0.1

    class Zero(torch.nn.Module):
        embedding = oracle.embedding

        def forward(self, x, t):
            return torch.zeros_like(x)

    wrong = float((p * process.nelbo(Zero(), seqs.repeat(40, 1), n_samples=50, generator=g).mean
                   .view(40, V * V).mean(0)).sum())
    assert wrong > exact + 1.0


def _log_normal(x, mean, var):
    """log N(x; mean, var I), summed over all but the batch dimension."""
    return (-0.5 * ((x - mean) ** 2 / var + torch.log(2 * math.pi * var))).flatten(1).sum(1)


def test_nelbo_matches_the_simulated_chain():
    """nelbo's closed-form KL terms against an independent estimate of the same bound: simulate the
    forward chain one step at a time and average log q(x, z_0..z_{T-1} | w) - log p_theta(w, x, z_0..z_{T-1})."""
    T = 6
    process, oracle, seqs, _ = _tiny(T)
    g = process.gaussian
    n = 20000
    ids = torch.tensor([[0, 2]]).repeat(n, 1)
    e = oracle.embedding.weight[ids].double()
    s0 = process.sigma_0
    gen = torch.Generator().manual_seed(0)
    x = e + s0 * torch.randn(e.shape, generator=gen, dtype=torch.float64)        # x ~ q(x | w)
    log_q = _log_normal(x, e, torch.tensor(s0 ** 2, dtype=torch.float64))
    z, prev = [], x
    for t in range(T):                                                            # z_t ~ q(z_t | z_{t-1})
        beta = g.betas[t].double()
        cur = (1 - beta).sqrt() * prev + beta.sqrt() * torch.randn(e.shape, generator=gen, dtype=torch.float64)
        log_q += _log_normal(cur, (1 - beta).sqrt() * prev, beta)
        z.append(cur)
        prev = cur
    log_p = _log_normal(z[-1], torch.zeros_like(z[-1]), torch.tensor(1.0, dtype=torch.float64))
    for t in range(T - 1, 0, -1):                                                 # p_theta(z_{t-1} | z_t)
        tt = torch.full((n,), t)
        mean, var = g.posterior(z[t], oracle(z[t].float(), tt).double(), tt)
        log_p += _log_normal(z[t - 1], mean, var)
    f0 = oracle(z[0].float(), torch.zeros(n, dtype=torch.long)).double()
    log_p += _log_normal(x, f0, torch.tensor(s0 ** 2, dtype=torch.float64))      # the decoder N(x; f, s0^2)
    log_p += -torch.nn.functional.cross_entropy(rounding_logits(oracle, x.float()).transpose(1, 2), ids,
                                                reduction="none").sum(1).double()    # log p(w | x)
    simulated = log_q - log_p
    est = process.nelbo(oracle, ids, n_samples=2, exact_steps=T - 1, generator=torch.Generator().manual_seed(1)).mean
    se = (simulated.var() / n + est.var() / n).sqrt()
    assert abs(float(simulated.mean() - est.mean())) < 4 * float(se), (float(simulated.mean()), float(est.mean()))
    assert float(se) < 0.5


# ------------------------------------------------------------------ bad inputs
def test_bad_inputs_raise_clear_errors():
    process, oracle, _, _ = _tiny(50)
    model = EmbeddingDenoiser(vocab_size=5, max_len=3, embed_dim=2, num_train_timesteps=50, d_model=16,
                              n_layers=1, n_heads=2)
    with pytest.raises(ValueError, match="embedding dimension 2"):
        round_to_words(model, torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="0 <= id < 5"):
        process.embed(model, torch.tensor([[0, 7, 1]]))
    with pytest.raises(ValueError, match="target=5 is out of range"):
        ClassifierGuidance(PositionClassifier(oracle, 0), 5)
    with pytest.raises(ValueError, match="fixed must have shape"):
        next(process.sample(model, 2, 3, 10, fixed=torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="num_steps=0"):
        process.sample(model, 2, 3, 0)
    with pytest.raises(TypeError, match="clamp must be a bool"):
        process.sample(model, 2, 3, 10, clamp="yes")
    with pytest.raises(TypeError, match="'embedding'"):
        round_to_words(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="beta_schedule"):
        EmbeddingDiffusion(50, "sqrtt")


# ------------------------------------------------------------------ lesson 03's measures
def test_rounding_grad_is_the_autograd_gradient_of_the_rounding_term():
    from diffnlp.processes.embedding import rounding_grad, rounding_nll

    model = type("M", (), {"embedding": torch.nn.Embedding.from_pretrained(torch.randn(7, 3, dtype=torch.float64))})()
    x = torch.randn(4, 5, 3, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 7, (4, 5))
    rounding_nll(model, x, ids).sum().backward()
    assert torch.allclose(rounding_grad(model, x.detach(), ids), x.grad, atol=1e-10)
    on_word = model.embedding.weight[ids]
    p = torch.softmax(rounding_logits(model, on_word), -1)
    assert torch.allclose(rounding_grad(model, on_word, ids), 2 * (p @ model.embedding.weight - on_word))


def test_rounding_accuracy_counts_the_free_slots_and_the_positional_prior():
    torch.manual_seed(0)
    model = EmbeddingDenoiser(vocab_size=12, max_len=4, embed_dim=4, num_train_timesteps=50, d_model=16,
                              n_layers=1, n_heads=2).eval()
    process = EmbeddingDiffusion(50)
    ids = torch.randint(2, 12, (40, 4))
    ids[:, 1] = 3                                            # a template word: never counted as free
    ids[:30, 2] = 7                                          # a free slot whose most common word is 7 (30 of 40)
    acc = process.rounding_accuracy(model, ids, [0, 49], positions="free")
    every = process.rounding_accuracy(model, ids, [0, 49])
    guess = ids.mode(0).values
    free = torch.tensor([True, False, True, True])
    want_prior = float((ids == guess)[:, free].float().mean())
    assert acc["prior"] == pytest.approx(want_prior) and every["prior"] > acc["prior"]
    x_t = process.noisy_word_vectors(model, ids, torch.zeros(40, dtype=torch.long), torch.Generator().manual_seed(0))
    hit = round_to_words(model, x_t / process.gaussian.alphas_cumprod[0] ** 0.5) == ids      # the same draws by hand
    assert acc["noisy"][0] == pytest.approx(float(hit[:, free].float().mean()))
    assert every["noisy"][0] == pytest.approx(float(hit.float().mean()))
    with pytest.raises(ValueError, match="positions"):
        process.rounding_accuracy(model, ids, [0], positions="some")
    # the same noise at every t: the value at t does not depend on the other timesteps asked for
    assert process.rounding_accuracy(model, ids, [49], positions="free")["noisy"][0] == acc["noisy"][1]


def test_tiny_embedding_problem_and_the_story_measures():
    from diffnlp.data.stories import StoryGrammar
    from diffnlp.evaluation.metrics import entropy, expected_nll_given, oracle_nlls, story_report
    from diffnlp.evaluation.oracle import tiny_embedding_problem

    emb, seqs, p = tiny_embedding_problem(seed=1)
    assert emb.shape == (3, 2) and seqs.shape == (9, 2) and p.sum().item() == pytest.approx(1.0)
    assert torch.allclose(emb.norm(dim=1), torch.full((3,), 1.5)) and (p > 0).all()
    assert torch.equal(tiny_embedding_problem(seed=1)[2], p) and not torch.equal(tiny_embedding_problem(2)[2], p)
    g = StoryGrammar()
    stories = g.sample(50, seed=0) + ["mia found a dragon"]
    nll = oracle_nlls(g, stories)
    assert len(nll) == 50 and float(nll.mean()) == pytest.approx(story_report(g, stories).oracle_nll)
    assert torch.allclose(nll, torch.tensor([-g.log_prob(s) for s in stories[:50]], dtype=torch.float64))
    tok = g.tokenizer()
    assert torch.equal(oracle_nlls(g, tok.encode_batch(stories[:50], 32), tok), nll)
    # E[-log p | place = v] = H - H(place) - log pi(v), checked by averaging over the places
    pi = torch.tensor(g.config.weights["place"], dtype=torch.float64)
    means = torch.tensor([expected_nll_given(g, "place", v) for v in g.config.places], dtype=torch.float64)
    assert float((pi * means).sum()) == pytest.approx(g.entropy(), abs=1e-9)
    museum = g.config.places.index("museum")
    assert means[museum] == pytest.approx(g.entropy() - entropy(pi) - math.log(pi[museum]))
    with pytest.raises(ValueError, match="choice='tense'"):
        expected_nll_given(g, "tense", "past")
    with pytest.raises(ValueError, match="value='moon'"):
        expected_nll_given(g, "place", "moon")
    with pytest.raises(ValueError, match="tokenizer"):
        oracle_nlls(g, tok.encode_batch(stories[:2], 32))
