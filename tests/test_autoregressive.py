"""The AR baseline and the shared Transformer."""

from __future__ import annotations

import math

import pytest
import torch

from diffnlp import Autoregressive
from diffnlp.models import build_model, model_config
from diffnlp.models.transformer import KVCache, Transformer
from diffnlp.processes.autoregressive import BigramLM


def _causal(**kw):
    torch.manual_seed(0)
    return Transformer(vocab_size=11, max_len=16, causal=True, **kw).eval()


def test_cached_and_uncached_logits_agree():
    model = _causal()
    x = torch.randint(0, 11, (3, 16))
    full = model(x)
    cache = KVCache()
    parts = [model(x[:, :4], cache=cache)] + [model(x[:, i:i + 1], cache=cache) for i in range(4, 16)]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)
    cache = KVCache()                                            # chunks after a past: the masked branch
    parts = [model(x[:, a:b], cache=cache) for a, b in ((0, 4), (4, 9), (9, 16))]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


def test_cached_and_uncached_sampling_give_the_same_tokens():
    model, ar = _causal(), Autoregressive(start_id=1)
    a = ar.sample(model, 4, 16, generator=torch.Generator().manual_seed(0), kv_cache=True)
    b = ar.sample(model, 4, 16, generator=torch.Generator().manual_seed(0), kv_cache=False)
    a, b = list(a), list(b)
    assert len(a) == 17 and all(s.shape == (4, 16) for s in a)         # the all-unknown start, then one per token
    assert (a[0] == 1).all() and (a[5][:, 5:] == 1).all()
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_sampling_counts_one_network_call_per_token():
    model, ar = _causal(), Autoregressive(start_id=1)
    traj = ar.sample(model, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    traj.run()
    assert traj.network_calls == 16
    with pytest.raises(ValueError, match="num_steps=8"):
        ar.sample(model, 2, 16, 8)


def test_causal_model_does_not_look_ahead():
    model = _causal()
    x = torch.randint(0, 11, (2, 10))
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % 11
    assert torch.allclose(model(x)[:, :6], model(y)[:, :6], atol=1e-6)
    assert not torch.allclose(model(x)[:, 6:], model(y)[:, 6:], atol=1e-6)


def test_nll_is_the_exact_chain_rule():
    model, ar = _causal(), Autoregressive(start_id=1)
    x = torch.randint(0, 11, (2, 5))
    with torch.no_grad():
        want = torch.zeros(2)
        for i in range(5):
            prefix = torch.cat([torch.ones(2, 1, dtype=torch.long), x[:, :i]], 1)
            logp = torch.log_softmax(model(prefix)[:, -1], -1)
            want -= logp[torch.arange(2), x[:, i]]
        assert torch.allclose(ar.nll(model, x), want, atol=1e-5)


def test_sampling_follows_the_model_probabilities():
    # a one-token "language": the empirical frequencies of the first token match softmax(logits)
    model, ar = _causal(), Autoregressive(start_id=1)
    with torch.no_grad():
        p = torch.softmax(model(torch.ones(1, 1, dtype=torch.long))[0, -1], -1)
    first = list(ar.sample(model, 20000, 1, generator=torch.Generator().manual_seed(1)))[-1][:, 0]
    freq = torch.bincount(first, minlength=11).double() / 20000
    assert (freq - p.double()).abs().max() < 0.015


def test_bigram_nll_by_hand():
    ids = torch.tensor([[2, 3, 2], [2, 2, 3]])
    lm = BigramLM(4, start_id=1, k=0.0).fit(ids)
    # p(2 | start) = 1, p(3 | 2) = 2/3, p(2 | 3) = 1, p(2 | 2) = 1/3
    assert math.isclose(lm.nll(ids)[0].item(), -math.log(2 / 3), rel_tol=1e-9)
    assert math.isclose(lm.nll(ids)[1].item(), -math.log(1 / 3) - math.log(2 / 3), rel_tol=1e-9)


def test_transformer_modes():
    vec = Transformer(vocab_size=0, input_dim=8, output_dim=8, max_len=12)
    assert vec(torch.randn(2, 12, 8)).shape == (2, 12, 8)
    timed = Transformer(vocab_size=7, max_len=5, time_conditioning=True)
    x = torch.randint(0, 7, (2, 5))
    assert not torch.allclose(timed(x, torch.tensor([0.1, 0.1])), timed(x, torch.tensor([0.9, 0.9])))
    rebuilt = build_model(model_config(timed))
    assert rebuilt.config == timed.config


@pytest.mark.parametrize("call,match", [
    (lambda: Transformer(vocab_size=7, max_len=4)(torch.randint(0, 7, (1, 5))), "longer than the model"),
    (lambda: Transformer(vocab_size=7, max_len=4)(torch.randn(1, 4)), "token ids"),
    (lambda: Transformer(vocab_size=7, time_conditioning=True)(torch.zeros(1, 3, dtype=torch.long)), "pass t"),
    (lambda: Transformer(vocab_size=7, d_model=30, n_heads=4), "divisible"),
    (lambda: Transformer(vocab_size=0), "input_dim"),
    (lambda: Autoregressive().nll(Transformer(vocab_size=7), torch.zeros(1, 3, dtype=torch.long)), "causal"),
    (lambda: Autoregressive().sample(_causal(), 2, 17), "max_len"),
    (lambda: Autoregressive().nll(_causal(), torch.zeros(3)), "integer"),
])
def test_bad_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
