"""Block diffusion (BD3-LM style): the block-causal Transformer and its KV cache, exactness with exact
conditionals on a tiny distribution, and variable-length generation."""

import itertools

import pytest
import torch
from scipy import stats

from diffnlp.evaluation.oracle import TokenPosteriorDenoiser
from diffnlp.models.transformer import KVCache, Transformer
from diffnlp.processes.block import BlockDiffusion

MASK = 3


def _model(block_length=4, max_len=12):
    torch.manual_seed(0)
    return Transformer(vocab_size=10, max_len=max_len, d_model=32, n_layers=2, n_heads=4,
                       block_length=block_length).eval()


def test_block_causal_attention_ignores_later_blocks():
    m = _model()
    x = torch.randint(0, 10, (3, 12), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[:, 8:] = torch.randint(0, 10, (3, 4), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = m(x), m(y)
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)                # blocks 0 and 1 never see block 2
    assert not torch.allclose(a[:, 8:], b[:, 8:], atol=1e-3)
    x2 = x.clone()
    x2[:, 5] = (x2[:, 5] + 1) % 10                                       # a change inside block 1 ...
    with torch.no_grad():
        c = m(x2)
    assert not torch.allclose(a[:, 4], c[:, 4], atol=1e-4)               # ... is seen by all of block 1


def test_kv_cache_across_blocks_equals_recomputation():
    m = _model()
    bd = BlockDiffusion(block_length=4, mask_id=MASK)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 10, (5, 12), generator=g)
    x[x == MASK] = 0
    kv = KVCache()
    t = torch.ones(5)
    with torch.no_grad():
        m(x[:, :4], t, cache=kv)                                          # block 0 in the cache
    block = x[:, 8:].clone()
    block[:, [0, 2]] = MASK                                               # a partly masked block 2
    # block 1 (finished) is stored by block 2's first step, in the same call (BD3-LM's folded commit)
    first = bd.block_logits(m, x[:, :8], block, t, cache=kv, pending=x[:, 4:8])
    assert kv.length == 8 and kv.layers[0][0].shape[2] == 8             # block 1 stored, the noisy block not
    later = bd.block_logits(m, x[:, :8], block, t, cache=kv)             # a later step: the cache alone
    assert kv.length == 8 and kv.layers[0][0].shape[2] == 8
    full = bd.block_logits(m, x[:, :8], block, t, cache=None)
    finite = torch.isfinite(full)
    for cached in (first, later):
        assert torch.equal(finite, torch.isfinite(cached))
        assert torch.allclose(cached[finite], full[finite], atol=1e-5)


def test_k_steps_a_block_cost_k_calls():
    """With the commit folded into the next block's first step, K steps a block cost K network calls (and
    the stories equal those of recomputation without a cache)."""
    from diffnlp.evaluation.frontier import CallCounter

    m = CallCounter(_model())
    bd = BlockDiffusion(block_length=4, mask_id=MASK)
    traj = bd.sample(m, 3, 12, 2, kv_cache=True, generator=torch.Generator().manual_seed(2))
    cached = traj.run()
    assert traj.network_calls == m.calls == 3 * 2
    again = bd.sample(m, 3, 12, 2, kv_cache=False, generator=torch.Generator().manual_seed(2)).run()
    assert torch.equal(cached, again)


def _tiny_block_oracle():
    """The exact conditionals p(x^i | visible tokens) of a random distribution over 3^4 sequences, presented
    as a block-causal model with blocks of 2 (future blocks are masked, so it never sees them)."""
    seqs = list(itertools.product(range(3), repeat=4))
    p = torch.rand(81, generator=torch.Generator().manual_seed(4), dtype=torch.float64) ** 2 + 0.01
    p = p / p.sum()
    oracle = TokenPosteriorDenoiser(seqs, p, vocab_size=4, mask_id=MASK)
    oracle.config = type("Config", (), {"block_length": 2, "max_len": 4, "time_conditioning": False})()
    return seqs, p, oracle


def test_block_sampling_with_exact_conditionals_reproduces_p():
    """One token per step, blocks of 2 over length 4, with the exact conditionals p(x^i | visible tokens):
    the samples follow p (chi-square)."""
    seqs, p, oracle = _tiny_block_oracle()
    bd = BlockDiffusion(block_length=2, mask_id=MASK)
    n = 30000
    *_, x = bd.sample(oracle, n, 4, 2, kv_cache=False, strategy="random", generator=torch.Generator().manual_seed(5))
    idx = ((x * torch.tensor([27, 9, 3, 1])).sum(1))
    counts = torch.bincount(idx, minlength=81).double()
    assert stats.chisquare(counts.numpy(), (p * n).numpy()).pvalue > 1e-3


class _EndsAtOnce(torch.nn.Module):
    """A block-causal 'model' that always predicts the end token 0."""

    config = type("Config", (), {"block_length": 4, "max_len": 12, "time_conditioning": False})()

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t=None, cache=None):
        out = torch.full((*x.shape, 10), -10.0)
        out[..., 0] = 10.0
        return out


def test_variable_length_generation_stops_at_the_end():
    bd = BlockDiffusion(block_length=4, mask_id=MASK)
    states = list(bd.sample(_EndsAtOnce(), 3, 12, 4, kv_cache=False, end_id=0,
                            generator=torch.Generator().manual_seed(0)))
    assert len(states) == 1 + 4 + 1                  # the start, 4 steps of block 0, then the end is filled in
    assert (states[-1] == 0).all()
    full = list(bd.sample(_EndsAtOnce(), 3, 12, 4, kv_cache=False, generator=torch.Generator().manual_seed(0)))
    assert len(full) == 1 + 3 * 4                    # without end_id every block is generated


def test_block_loss_trains_and_checks_its_inputs():
    m = _model()
    bd = BlockDiffusion(block_length=4, mask_id=MASK)
    x = torch.randint(4, 10, (6, 12), generator=torch.Generator().manual_seed(6))
    loss = bd.loss(m.train(), x, generator=torch.Generator().manual_seed(7))
    assert loss.shape == (6,) and torch.isfinite(loss).all()
    loss.mean().backward()
    assert m.embed.weight.grad is not None
    with pytest.raises(ValueError, match="block_length=8"):
        BlockDiffusion(block_length=8, mask_id=MASK).loss(m, x)
    with pytest.raises(ValueError, match="most block_length=4, got 5"):
        bd.sample(m, 2, 12, 5, strategy="random")
    with pytest.raises(ValueError, match="exclude each other"):
        Transformer(vocab_size=10, max_len=8, causal=True, block_length=4)


def test_nelbo_of_exact_conditionals_is_minus_log_p():
    """With the exact conditionals, every block's NELBO is -log p(x_b | x_<b) (MDLM is exact for exact
    denoisers), so the sum over blocks is -log p(x): the Monte-Carlo estimate agrees within its error."""
    seqs, p, oracle = _tiny_block_oracle()
    bd = BlockDiffusion(block_length=2, mask_id=MASK)
    x = torch.tensor(seqs[:10])
    est = bd.nelbo(oracle, x, n_samples=400, generator=torch.Generator().manual_seed(8))
    err = (est.mean + p[:10].log()).abs()
    assert (err < 4 * est.stderr + 1e-9).all(), (err, est.stderr)


@pytest.mark.slow
def test_shipped_block_diffusion_headline_metrics():
    """stories-bd3 (recipe stories-bd3): its NELBO near the entropy and >= 90 % valid stories with 8 steps
    per block, recomputed from the file; the cached sampler gives the same stories as recomputation."""
    from diffnlp.evaluation.metrics import story_report
    from diffnlp.training.pretrained import load_pretrained
    from diffnlp.training.recipes import story_data

    model, process, tok, _ = load_pretrained("stories-bd3")
    grammar, _, test = story_data(split="test")
    est = process.nelbo(model, test[:300], n_samples=8, generator=torch.Generator().manual_seed(0))
    assert float(est.mean.mean()) - grammar.entropy() < 0.3
    runs = [list(process.sample(model, 300, 32, 8, kv_cache=c, end_id=tok.pad_id,
                                generator=torch.Generator().manual_seed(1)))[-1] for c in (True, False)]
    assert float((runs[0] == runs[1]).all(1).float().mean()) > 0.98
    rep = story_report(grammar, runs[0], tok)
    assert rep.valid >= 0.9 and rep.distinct > 0.95


def test_confidence_inside_one_block_is_llada_confidence():
    """With one block covering the sequence and one token per step, block diffusion's "confidence" strategy
    is LLaDA's confidence sampler: its samples follow that sampler's exact output distribution (computed by
    enumerating its Markov chain), which is not p."""
    from diffnlp.evaluation.oracle import sampler_distribution
    from diffnlp.processes.masked import MaskedDiffusion

    seqs, p, oracle = _tiny_block_oracle()
    oracle.config = type("Config", (), {"block_length": 4, "max_len": 4, "time_conditioning": False})()
    want = sampler_distribution(oracle, MaskedDiffusion("loglinear", mask_id=MASK), "confidence", 4)
    n = 30000
    *_, x = BlockDiffusion(block_length=4, mask_id=MASK).sample(
        oracle, n, 4, 4, kv_cache=False, strategy="confidence", generator=torch.Generator().manual_seed(6))
    counts = torch.bincount((x * torch.tensor([27, 9, 3, 1])).sum(1), minlength=81).double()
    keep = want > 0
    assert counts[~keep].sum() == 0
    assert stats.chisquare(counts[keep].numpy(), (want[keep] / want[keep].sum() * n).numpy()).pvalue > 1e-3
    assert (want - p).abs().sum() > 0.05                 # and it is biased: not the data distribution
    with pytest.raises(ValueError, match="at most block_length=4"):
        BlockDiffusion(block_length=4, mask_id=MASK).sample(oracle, 2, 4, 5, kv_cache=False, strategy="confidence")


@pytest.mark.parametrize("weighting", ["nelbo", "token"])
def test_all_blocks_loss_equals_mean_of_one_block_losses(weighting):
    """BD3-LM's x_t ⊕ x_0 pass (every block in one forward, ``two_stream_mask``) gives the same loss as
    denoising one block at a time with the block-causal model (clean blocks before it, [MASK] after it):
    the mean over b of (number of blocks) x the term of block b."""
    m = _model()
    bd = BlockDiffusion(block_length=4, mask_id=MASK)
    g = torch.Generator().manual_seed(11)
    x = torch.randint(4, 10, (6, 12), generator=g)
    t = torch.rand(6, 3, generator=g) * 0.98 + 0.01
    z = bd.noisy(x, t, g)
    with torch.no_grad():
        together = bd.loss(m, x, t=t, z_t=z, weighting=weighting)
        per_block = []
        for b in range(3):
            inp = torch.where(torch.arange(12) // 4 < b, x, torch.where(torch.arange(12) // 4 == b, z, MASK))
            logits = bd.masking.never_mask(m(inp)[:, 4 * b:4 * b + 4])
            nll = -torch.log_softmax(logits, -1).gather(-1, x[:, 4 * b:4 * b + 4, None])[..., 0]
            hidden = z[:, 4 * b:4 * b + 4] == MASK
            term = torch.where(hidden, nll, torch.zeros_like(nll)).sum(-1)
            scale = 4 / hidden.sum(-1).clamp_min(1) if weighting == "token" else bd.masking.weight(t[:, b])
            per_block.append(3 * torch.where(hidden.any(-1), scale * term, torch.zeros_like(term)))
    assert (z == MASK).any() and (z != MASK).any()
    assert torch.allclose(together, torch.stack(per_block).mean(0), atol=1e-5, rtol=1e-5)


def test_two_stream_mask_is_bd3s_three_masks():
    from diffnlp.models.transformer import two_stream_mask

    m = two_stream_mask(4, 2)
    want = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0],
                         [0, 0, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0],
                         [0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 0, 0],
                         [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(m, want)
    with pytest.raises(ValueError, match="block-causal"):
        Transformer(vocab_size=10, max_len=8)(torch.zeros(1, 8, dtype=torch.long), clean=torch.zeros(1, 8,
                                                                                                  dtype=torch.long))
