"""diffnlp.processes.d3pm against independent derivations: transition matrices vs explicit products and closed
forms, the posterior vs Bayes' rule by brute force, the reverse chain with an exact oracle (propagated
exactly and sampled), the loss and the NELBO (exact for the oracle: -log p(x0)), and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from diffnlp.processes.d3pm import D3PM, KINDS, categorical_kl, transition_matrices

K, T = 5, 6
P_TOKENS = np.array([0.5, 0.3, 0.2])  # the tiny data distribution of the oracle tests


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def explicit_Q(kind: str, K: int, T: int, t: int, mask_id: int | None = None) -> np.ndarray:
    """Q_t written out from the definitions, independently of the module."""
    if kind == "absorbing":
        m = K - 1 if mask_id is None else mask_id
        beta = 1 / (T - t + 1)
        Q = (1 - beta) * np.eye(K)
        Q[:, m] += beta
        return Q
    f = [math.cos((s / T + 0.008) / 1.008 * math.pi / 2) for s in (t - 1, t)]
    beta = 1 - f[1] / f[0]
    return (1 - beta) * np.eye(K) + beta / K * np.ones((K, K))


def explicit_Q_bar(kind: str, K: int, T: int, t: int, mask_id: int | None = None) -> np.ndarray:
    M = np.eye(K)
    for s in range(1, t + 1):
        M = M @ explicit_Q(kind, K, T, s, mask_id)
    return M


def data_probs(kind: str) -> np.ndarray:
    """p over K states: three tokens (+ a mask that the data never contain, for "absorbing")."""
    return np.append(P_TOKENS, 0.0) if kind == "absorbing" else P_TOKENS.copy()


def bayes_oracle(d: D3PM, p: np.ndarray):
    """The exact x0-predictor of a per-position data distribution p: logits = log p(x0 | x_t),
    p(x0 | x_t) ∝ q(x_t | x0) p(x0) with q(x_t | x0) from the explicit matrix products."""
    Q_bars = torch.tensor(np.stack([explicit_Q_bar(d.kind, d.vocab_size, d.num_timesteps, t, d.mask_id)
                                    for t in range(d.num_timesteps + 1)]))
    prior = torch.tensor(p)

    def model(x_t, t_float):
        t = (t_float.double() * d.num_timesteps).round().long()
        lik = Q_bars[t].transpose(1, 2)[torch.arange(x_t.shape[0])[:, None], x_t]  # q(x_t | x0), (B, L, K)
        joint = lik * prior
        norm = joint.sum(-1, keepdim=True)
        post = torch.where(norm > 0, joint / norm.clamp_min(1e-300), 1.0 / d.vocab_size)  # unreachable x_t: any
        return post.log()

    return model


def knowing_oracle(x0: torch.Tensor, K: int):
    """A model that knows the clean sequence: logits are log one-hot(x0)."""
    def model(x_t, t_float):
        return torch.where(nn.functional.one_hot(x0, K).bool(), 0.0, float("-inf")).double()
    return model


class TinyDenoiser(nn.Module):
    """A small trainable model (embedding + time + linear) for loss shape/gradient checks."""

    def __init__(self, K: int, width: int = 16):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(K, width)
        self.time = nn.Linear(1, width)
        self.out = nn.Linear(width, K)

    def forward(self, x_t, t):
        h = self.emb(x_t) + self.time(t[:, None])[:, None, :]
        return self.out(torch.tanh(h))


# ------------------------------------------------------------------------------------------ transitions
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T_", [1, 6, 50])
def test_rows_sum_to_one_and_entries_are_probabilities(kind, T_):
    d = D3PM(K, T_, kind=kind)
    for t in range(1, T_ + 1):
        Q = d.Q(t)
        assert Q.dtype == torch.float64 and Q.shape == (K, K)
        assert bool((Q >= 0).all())
        torch.testing.assert_close(Q.sum(1), torch.ones(K, dtype=torch.float64), rtol=0, atol=1e-12)
    for t in range(0, T_ + 1):
        Qb = d.Q_bar(t)
        assert bool((Qb >= 0).all())
        torch.testing.assert_close(Qb.sum(1), torch.ones(K, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind,mask_id", [("absorbing", None), ("absorbing", 1), ("uniform", None)])
def test_Q_and_Q_bar_match_the_definitions_and_the_explicit_product(kind, mask_id):
    d = D3PM(K, T, kind=kind, mask_id=mask_id)
    np.testing.assert_array_equal(d.Q_bar(0).numpy(), np.eye(K))
    for t in range(1, T + 1):
        np.testing.assert_allclose(d.Q(t).numpy(), explicit_Q(kind, K, T, t, mask_id), rtol=0, atol=1e-14)
        np.testing.assert_allclose(d.Q_bar(t).numpy(), explicit_Q_bar(kind, K, T, t, mask_id), rtol=0, atol=1e-14)
    # closed forms: absorbing abar_t = (T - t) / T; uniform abar_t = f(t) / f(0)
    for t in range(T + 1):
        if kind == "absorbing":
            abar = (T - t) / T
            B = np.zeros((K, K))
            B[:, d.mask_id] = 1
        else:
            f = lambda s: math.cos((s / T + 0.008) / 1.008 * math.pi / 2)  # noqa: E731
            abar = f(t) / f(0)
            B = np.ones((K, K)) / K
        assert d.alphas_cumprod[t].item() == pytest.approx(abar, abs=1e-14)
        np.testing.assert_allclose(d.Q_bar(t).numpy(), abar * np.eye(K) + (1 - abar) * B, rtol=0, atol=1e-14)


def test_absorbing_Q_bar_T_sends_everything_to_the_mask():
    for m in (K - 1, 0, 2):
        Qb = D3PM(K, T, kind="absorbing", mask_id=m).Q_bar(T)
        expected = torch.zeros(K, K, dtype=torch.float64)
        expected[:, m] = 1
        torch.testing.assert_close(Qb, expected, rtol=0, atol=1e-15)


def test_uniform_Q_bar_T_is_uniform():
    for T_ in (1, 6, 100):
        Qb = D3PM(K, T_, kind="uniform").Q_bar(T_)
        torch.testing.assert_close(Qb, torch.full((K, K), 1 / K, dtype=torch.float64), rtol=0, atol=1e-12)
        # and not before the end: the schedule really spreads over the T steps
        if T_ > 1:
            assert D3PM(K, T_, kind="uniform").Q_bar(T_ - 1)[0, 0] > 1 / K + 1e-3


def test_transition_matrices_is_the_stack_of_Q_bar():
    for kind in KINDS:
        stack = transition_matrices(kind, K, T)
        d = D3PM(K, T, kind=kind)
        assert stack.shape == (T + 1, K, K) and stack.dtype == torch.float64
        for t in range(T + 1):
            torch.testing.assert_close(stack[t], d.Q_bar(t), rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_q_xt_given_x0_is_row_x0_of_Q_bar_and_add_noise_samples_it(kind):
    d = D3PM(K, T, kind=kind)
    x0 = torch.arange(K)
    for t in range(T + 1):
        torch.testing.assert_close(d.q_xt_given_x0(x0, t), d.Q_bar(t), rtol=0, atol=0)
    # per-row t
    t = torch.tensor([0, 1, 3, 5, 6])
    probs = d.q_xt_given_x0(torch.tensor([[0, 1], [1, 2], [2, 3], [3, 0], [0, 0]]), t)
    assert probs.shape == (5, 2, K)
    torch.testing.assert_close(probs[2, 1], d.Q_bar(3)[3], rtol=0, atol=0)
    # empirical frequencies of add_noise
    n, t = 20_000, 3
    x = d.add_noise(torch.zeros(n, 1, dtype=torch.long), t, generator=gen(0))
    assert x.dtype == torch.long and x.shape == (n, 1)
    expected = d.Q_bar(t)[0].numpy()
    counts = np.bincount(x.flatten().numpy(), minlength=K)
    assert counts[expected == 0].sum() == 0
    keep = expected > 0
    assert stats.chisquare(counts[keep], expected[keep] * n).pvalue > 1e-3


# ------------------------------------------------------------------------------------------ posterior
@pytest.mark.parametrize("kind,mask_id", [("absorbing", None), ("absorbing", 0), ("uniform", None)])
def test_posterior_is_bayes_rule_by_brute_force(kind, mask_id):
    d = D3PM(K, T, kind=kind, mask_id=mask_id)
    x0 = torch.arange(K).repeat_interleave(K)   # every pair (x0, x_t)
    x_t = torch.arange(K).repeat(K)
    checked = 0
    for t in range(1, T + 1):
        post = d.posterior(x_t, x0, t).numpy()
        Q_t, Qb_prev, Qb_t = (explicit_Q(kind, K, T, t, mask_id), explicit_Q_bar(kind, K, T, t - 1, mask_id),
                              explicit_Q_bar(kind, K, T, t, mask_id))
        for row, (a, b) in enumerate(zip(x0.tolist(), x_t.tolist())):
            q_xt_x0 = Qb_t[a, b]
            if q_xt_x0 == 0:   # the pair cannot occur: defined as all zeros
                np.testing.assert_array_equal(post[row], np.zeros(K))
                continue
            # q(x_{t-1} = j | x_t, x0) = q(x_t | x_{t-1} = j) q(x_{t-1} = j | x0) / q(x_t | x0)
            brute = np.array([Q_t[j, b] * Qb_prev[a, j] / q_xt_x0 for j in range(K)])
            np.testing.assert_allclose(post[row], brute, rtol=0, atol=1e-12)
            if t == 1:
                np.testing.assert_allclose(post[row], np.eye(K)[a], rtol=0, atol=1e-15)
            checked += 1
    assert checked >= T * K  # absorbing has K + (K - 1) possible pairs per t, uniform K^2
    # per-row t gives the same rows as one t at a time
    t_rows = torch.arange(1, T + 1).repeat(5)[: K * K]
    per_row = d.posterior(x_t, x0, t_rows)
    for t in range(1, T + 1):
        sel = t_rows == t
        torch.testing.assert_close(per_row[sel], d.posterior(x_t[sel], x0[sel], t), rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_reverse_probs_is_the_mixture_of_posteriors(kind):
    d = D3PM(K, T, kind=kind)
    x_t = torch.arange(K)
    w = torch.softmax(torch.randn(K, K, generator=gen(1), dtype=torch.float64), -1)  # p~(x0 | x_t) per row
    for t in range(1, T + 1):
        got = d.reverse_probs(x_t, w, t)
        # the same through posterior() given probabilities
        torch.testing.assert_close(d.posterior(x_t, w, t), got, rtol=0, atol=0)
        Qb_t = explicit_Q_bar(kind, K, T, t)
        for b in range(K):
            possible = [a for a in range(K) if Qb_t[a, b] > 0]
            if not possible:       # x_t = b cannot occur at step t: all zeros
                np.testing.assert_array_equal(got[b].numpy(), np.zeros(K))
                continue
            z = sum(w[b, a].item() for a in possible)
            brute = sum(w[b, a].item() / z * d.posterior(torch.tensor([b]), torch.tensor([a]), t)[0].numpy()
                        for a in possible)
            np.testing.assert_allclose(got[b].numpy(), brute, rtol=0, atol=1e-12)
            assert got[b].sum().item() == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------------------------------ oracle chain
@pytest.mark.parametrize("kind", KINDS)
def test_reverse_chain_with_the_oracle_reproduces_the_data_exactly(kind):
    Kp = 4 if kind == "absorbing" else 3
    d = D3PM(Kp, T, kind=kind)
    p = data_probs(kind)
    oracle = bayes_oracle(d, p)
    states = torch.arange(Kp)[:, None]                # every x_t, as a batch of 1-token sequences
    pi = d.prior().numpy()                             # the distribution of x_T
    np.testing.assert_allclose(pi, p @ explicit_Q_bar(kind, Kp, T, T), rtol=0, atol=1e-12)
    for t in range(T, 0, -1):
        t_batch = torch.full((Kp,), t)
        x0_probs = oracle(states, t_batch.float() / T).softmax(-1)
        P = d.reverse_probs(states, x0_probs, t_batch)[:, 0, :].numpy()  # P[k, j] = p(x_{t-1} = j | x_t = k)
        P = np.where(pi[:, None] > 0, P, 0.0)          # unreachable x_t carry no mass
        pi = pi @ P
        # the marginal of x_{t-1} is the forward marginal p Qbar_{t-1} at every step
        np.testing.assert_allclose(pi, p @ explicit_Q_bar(kind, Kp, T, t - 1), rtol=0, atol=1e-9)
    np.testing.assert_allclose(pi, p, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_sampler_with_the_oracle_draws_the_data_distribution(kind):
    Kp = 4 if kind == "absorbing" else 3
    d = D3PM(Kp, T, kind=kind)
    p = data_probs(kind)
    n = 20_000
    traj = list(d.sample(bayes_oracle(d, p), n, 1, generator=gen(0)))
    assert len(traj) == T + 1
    assert all(x.shape == (n, 1) and x.dtype == torch.long for x in traj)
    if kind == "absorbing":
        assert bool((traj[0] == d.mask_id).all())
    counts = np.bincount(traj[-1].flatten().numpy(), minlength=Kp)
    assert counts[p == 0].sum() == 0                   # no mask left in x_0
    assert stats.chisquare(counts[p > 0], p[p > 0] * n).pvalue > 1e-3
    # and every intermediate x_t has the forward marginal p Qbar_t
    t = T // 2
    counts_t = np.bincount(traj[T - t].flatten().numpy(), minlength=Kp)
    expected = p @ explicit_Q_bar(kind, Kp, T, t)
    assert counts_t[expected == 0].sum() == 0
    assert stats.chisquare(counts_t[expected > 0], expected[expected > 0] * n).pvalue > 1e-3


def test_sampling_is_deterministic_given_the_seed_and_checks_its_arguments_at_the_call():
    d = D3PM(K, T, kind="uniform")
    model = TinyDenoiser(K)
    a = list(d.sample(model, 4, 7, generator=gen(3)))
    b = list(d.sample(model, 4, 7, generator=gen(3)))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert bool((a[0] >= 0).all() and (a[0] < K).all())
    with pytest.raises(ValueError, match="num_samples=0"):
        d.sample(model, 0, 7)
    with pytest.raises(ValueError, match="length=0"):
        d.sample(model, 4, 0)


# ------------------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("kind", KINDS)
def test_loss_is_finite_non_negative_per_sequence_and_differentiable(kind):
    d = D3PM(K, T, kind=kind, hybrid_lambda=0.01)
    model = TinyDenoiser(K)
    x0 = torch.randint(0, K - 1, (8, 6), generator=gen(0))
    loss = d.loss(model, x0, generator=gen(1))
    assert loss.shape == (8,) and bool(torch.isfinite(loss).all()) and bool((loss >= 0).all())
    loss.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # the hybrid: vb + lambda * ce with the same draws
    terms = d.loss_terms(model, x0, generator=gen(1))
    torch.testing.assert_close(loss, terms["vb"] + 0.01 * terms["ce"])
    assert bool((terms["vb"] >= 0).all()) and bool((terms["ce"] > 0).all())
    assert terms["t"].min() >= 1 and terms["t"].max() <= T


@pytest.mark.parametrize("kind", KINDS)
def test_vb_at_t_1_is_minus_log_p_theta_of_x0(kind):
    d = D3PM(K, T, kind=kind)
    model = TinyDenoiser(K)
    x0 = torch.randint(0, K - 1, (6, 5), generator=gen(0))
    terms = d.loss_terms(model, x0, t=1, generator=gen(2))
    with torch.no_grad():
        log_p = d.x0_log_probs(model(terms["x_t"], torch.full((6,), 1 / T)))
    ce_i = -log_p.gather(-1, x0[..., None])[..., 0].double()
    if kind == "uniform":   # every x0 can produce x_1: p_theta(x0 | x_1) = p~(x0 | x_1)
        expected = ce_i.sum(-1)
    else:                   # an unmasked x_1 is x0 for sure (0 nats); a masked one costs -log p~(x0 | x_1)
        expected = torch.where(terms["x_t"] == d.mask_id, ce_i, 0.0).sum(-1)
    torch.testing.assert_close(terms["vb"].double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_vb_term_is_zero_for_a_model_that_knows_x0_at_every_t(kind):
    d = D3PM(K, T, kind=kind)
    x0 = torch.randint(0, K - 1, (16, 4), generator=gen(0))
    model = knowing_oracle(x0, K)
    for t in range(1, T + 1):
        terms = d.loss_terms(model, x0, t=t, generator=gen(t))
        assert terms["vb"].dtype == torch.float64
        torch.testing.assert_close(terms["vb"], torch.zeros(16, dtype=torch.float64), rtol=0, atol=1e-12)
        torch.testing.assert_close(terms["ce"], torch.zeros(16, dtype=torch.float64), rtol=0, atol=1e-12)
    # a model that is wrong about one position pays for it
    wrong = knowing_oracle((x0 + 1) % (K - 1), K)
    assert bool((d.loss_terms(wrong, x0, t=1, generator=gen(0))["ce"] == float("inf")).all())


@pytest.mark.parametrize("kind", KINDS)
def test_exact_nelbo_of_the_oracle_is_minus_log_p(kind):
    """With the true reverse steps and an exact prior the model's joint is q's, so the NELBO of
    every x0 is exactly -log p(x0) (summed over independent positions)."""
    Kp = 4 if kind == "absorbing" else 3
    d = D3PM(Kp, T, kind=kind)
    p = data_probs(kind)
    x0 = torch.tensor([[0, 1, 2], [2, 2, 1], [0, 0, 0]])
    got = d.nelbo_exact(bayes_oracle(d, p), x0)
    expected = -np.log(p[x0.numpy()]).sum(-1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-9)
    assert d.prior_kl(x0).abs().max() < 1e-12   # the prior is exact
    # the NELBO is -log p(x0) in total, not term by term: the first reverse step alone costs nats
    assert bool((d.loss_terms(bayes_oracle(d, p), x0, t=T, generator=gen(0))["vb"] > 1e-3).all())


@pytest.mark.parametrize("kind", KINDS)
def test_monte_carlo_nelbo_is_unbiased_for_the_exact_one(kind):
    d = D3PM(K, T, kind=kind)
    W = torch.randn(K, K, generator=gen(5), dtype=torch.float64)

    def per_position(x_t, t_float):   # depends on x_t^i and t only
        return W[x_t] * (1 + t_float.double()[:, None, None])

    x0 = torch.tensor([[0, 1, 3]])
    exact = d.nelbo_exact(per_position, x0).item()
    draws = d.nelbo(per_position, x0.repeat(4000, 1), generator=gen(6)).mean.numpy()
    assert np.isfinite(draws).all() and exact > 0
    stderr = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - exact) < 5 * stderr
    # a better model has a lower NELBO: the oracle of a point mass at x0 has NELBO 0
    assert d.nelbo_exact(knowing_oracle(x0, K), x0).item() == pytest.approx(0.0, abs=1e-12)


def test_categorical_kl():
    q = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    p = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
    assert categorical_kl(q, p).item() == pytest.approx(math.log(2), abs=1e-15)
    assert categorical_kl(q, q).item() == 0.0


# ------------------------------------------------------------------------------------------ plotting
def test_plot_transition_matrices():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffnlp.course.plotting import plot_transition_matrices

    d = D3PM(K, T, kind="absorbing")
    fig = plot_transition_matrices(d)
    axes = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in axes] == [f"$\\bar{{Q}}_t$, t = {t}" for t in (1, T // 2, T)]
    assert all(a.get_xlabel() == "to token $x_t$" and a.get_ylabel() == "from token $x_0$" for a in axes)
    assert len(fig.axes) == 4   # three panels and the colour bar
    np.testing.assert_array_equal(axes[-1].images[0].get_array(), d.Q_bar(T).numpy())
    plt.close(fig)
    fig, ax = plt.subplots()
    assert plot_transition_matrices(d, steps=[0], ax=ax) is fig
    plt.close(fig)
    with pytest.raises(ValueError, match="steps=7 is out of range"):
        plot_transition_matrices(d, steps=[1, 7])


# ------------------------------------------------------------------------------------------ bad inputs
def _d(kind="absorbing"):
    return D3PM(K, T, kind=kind)


ids = torch.tensor([[0, 1, 2]])
BAD = [
    (lambda: D3PM(1), ValueError, r"vocab_size=1 is out of range"),
    (lambda: D3PM(5.0), TypeError, r"vocab_size must be an int"),
    (lambda: D3PM(K, num_timesteps=0), ValueError, r"num_timesteps=0 is out of range"),
    (lambda: D3PM(K, kind="gaussian"), ValueError, r"kind='gaussian' is not supported"),
    (lambda: D3PM(K, mask_id=K), ValueError, r"mask_id=5 is out of range"),
    (lambda: D3PM(K, mask_id=-1), ValueError, r"mask_id=-1 is out of range"),
    (lambda: D3PM(K, kind="uniform", mask_id=0), ValueError, r"mask_id=0 is only used by kind='absorbing'"),
    (lambda: D3PM(K, hybrid_lambda=-0.1), ValueError, r"hybrid_lambda=-0.1 is out of range"),
    (lambda: _d().Q(0), ValueError, r"t=0 is out of range; allowed: 1 <= t <= 6"),
    (lambda: _d().Q_bar(T + 1), ValueError, r"t=7 is out of range"),
    (lambda: _d().posterior(ids, ids, 0), ValueError, r"t=0 is out of range"),
    (lambda: _d().posterior(ids, ids, T + 1), ValueError, r"t=7 is out of range"),
    (lambda: _d().posterior(ids, ids, torch.tensor([0])), ValueError, r"t must lie in \[1, 6\]"),
    (lambda: _d().posterior(ids, ids, torch.tensor([1, 2])), ValueError, r"t must be an int or have shape \(1,\)"),
    (lambda: _d().posterior(ids, ids, 1.5), TypeError, r"t must be an int or an integer tensor"),
    (lambda: _d().posterior(ids, ids, torch.tensor([1.0])), TypeError, r"t must be an int or an integer tensor"),
    (lambda: _d().posterior(ids.float(), ids, 1), TypeError, r"x_t must be an integer tensor"),
    (lambda: _d().posterior(ids, ids[:, :2], 1), ValueError, r"x0 must be ids shaped like x_t"),
    (lambda: _d().posterior(ids, torch.ones(1, 3, 4), 1), ValueError, r"x0 must have shape \(1, 3, 5\)"),
    (lambda: _d().q_xt_given_x0(torch.tensor([[0, 5]]), 1), ValueError, r"x0 holds token ids in \[0, 5\]"),
    (lambda: _d().q_xt_given_x0(torch.tensor([[-1, 2]]), 1), ValueError, r"x0 holds token ids in \[-1, 2\]"),
    (lambda: _d().q_xt_given_x0(ids.float(), 1), TypeError, r"x0 must be an integer tensor"),
    (lambda: _d().q_xt_given_x0(ids.bool(), 1), TypeError, r"x0 must be an integer tensor of token ids"),
    (lambda: _d().q_xt_given_x0([0, 1], 1), TypeError, r"x0 must be a torch.Tensor"),
    (lambda: _d().q_xt_given_x0(ids, -1), ValueError, r"t=-1 is out of range; allowed: 0 <= t <= 6"),
    (lambda: _d().add_noise(ids, T + 1), ValueError, r"t=7 is out of range"),
    (lambda: _d().reverse_probs(ids, torch.ones(1, 3, 5, dtype=torch.long), 1), TypeError,
     r"x0_probs must be a floating-point tensor"),
    (lambda: _d().reverse_probs(ids, torch.ones(1, 3, 4), 1), ValueError, r"x0_probs must have shape \(1, 3, 5\)"),
    (lambda: _d().step(torch.zeros(1, 3, 4), ids, 1), ValueError, r"x0_logits must have shape \(1, 3, 5\)"),
    (lambda: _d().step(torch.zeros(1, 3, 5, dtype=torch.long), ids, 1), TypeError,
     r"x0_logits must be a floating-point tensor"),
    (lambda: _d().step(torch.zeros(1, 3, 5), ids, 0), ValueError, r"t=0 is out of range"),
    (lambda: _d().loss(TinyDenoiser(K), torch.tensor([0, 1])), ValueError, r"x0 must be a \(batch, length\)"),
    (lambda: _d().loss(TinyDenoiser(K), torch.tensor([[0, 4]])), ValueError, r"x0 contains the mask id 4"),
    (lambda: _d().loss(lambda x, t: torch.zeros(1, 3, 4), ids), ValueError, r"model output must have shape"),
    (lambda: _d().loss_terms(TinyDenoiser(K), ids, t=T + 1), ValueError, r"t=7 is out of range"),
    (lambda: _d().nelbo_exact(TinyDenoiser(K), ids.float()), TypeError, r"x0 must be an integer tensor"),
    (lambda: transition_matrices("gaussian", K, T), ValueError, r"kind='gaussian' is not supported"),
]


@pytest.mark.parametrize("call,error,match", BAD, ids=[m for _, _, m in BAD])
def test_bad_inputs_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
