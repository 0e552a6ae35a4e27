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
        m(x[:, :4], t, cache=kv)                                          # commit block 0, then block 1
        m(x[:, 4:8], t, cache=kv)
    block = x[:, 8:].clone()
    block[:, [0, 2]] = MASK                                               # a partly masked block 2
    cached = bd.block_logits(m, x[:, :8], block, t, cache=kv)
    full = bd.block_logits(m, x[:, :8], block, t, cache=None)
    assert kv.length == 8 and kv.layers[0][0].shape[2] == 8             # the noisy block was not stored
    finite = torch.isfinite(full)
    assert torch.equal(finite, torch.isfinite(cached))
    assert torch.allclose(cached[finite], full[finite], atol=1e-5)


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
