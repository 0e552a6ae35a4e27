"""Lesson 07's model pieces: rotary positions (relative, exact under the KV cache and the two-stream pass),
infilling problems, token labels, the real-text recipes, and the shipped checkpoints' headline metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from diffnlp.data.corpus import corpus_tokenizer, encode_works, load_works, masked_line, token_bytes, windows
from diffnlp.evaluation.real_text import bits_per_byte, repeated_ngrams, unigram_bits_per_byte
from diffnlp.models.transformer import KVCache, Transformer, rotary
from diffnlp.training.pretrained import load_pretrained
from diffnlp.training.recipes import TEXT_RECIPES, train_text_recipe

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "real_text.json"


@pytest.fixture(scope="module")
def tok():
    return corpus_tokenizer()


def test_rotary_scores_depend_only_on_the_relative_position():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 2, 6, 8, generator=g), torch.randn(1, 2, 6, 8, generator=g)
    pos = torch.arange(6)
    scores = rotary(q, pos) @ rotary(k, pos).transpose(-1, -2)
    shifted = rotary(q, pos + 17) @ rotary(k, pos + 17).transpose(-1, -2)
    torch.testing.assert_close(scores, shifted, atol=1e-4, rtol=1e-5)
    assert torch.equal(rotary(q, torch.zeros(6, dtype=torch.long)), q)        # position 0: no rotation
    torch.testing.assert_close(rotary(q, pos).norm(dim=-1), q.norm(dim=-1))  # a rotation keeps lengths


def test_rope_transformer_has_no_learned_positions_and_its_cache_is_exact():
    torch.manual_seed(0)
    model = Transformer(vocab_size=11, max_len=16, causal=True, rope=True).eval()
    assert model.pos is None and "pos" not in model.state_dict()
    x = torch.randint(0, 11, (3, 16))
    full = model(x)
    cache = KVCache()
    parts = [model(x[:, a:b], cache=cache) for a, b in ((0, 4), (4, 5), (5, 11), (11, 16))]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)


def test_rope_two_stream_pass_equals_the_block_causal_model():
    """Block b's logits in the x_t ⊕ x_0 pass are the block-causal model's on (x_0 blocks < b, x_t block b)."""
    torch.manual_seed(1)
    m = Transformer(vocab_size=10, max_len=12, d_model=32, n_layers=2, n_heads=4, block_length=4, rope=True).eval()
    g = torch.Generator().manual_seed(2)
    x0, z = torch.randint(2, 10, (3, 12), generator=g), torch.randint(1, 10, (3, 12), generator=g)
    both = m(z, clean=x0)
    for b in range(3):
        seq = torch.cat([x0[:, :4 * b], z[:, 4 * b:4 * b + 4]], 1)
        torch.testing.assert_close(both[:, 4 * b:4 * b + 4], m(seq)[:, 4 * b:], atol=1e-5, rtol=1e-5)


def test_masked_line_masks_exactly_the_line(tok):
    text = load_works("test")["hamlet"]
    line = "Whether 'tis nobler in the mind to suffer"
    problem, truth = masked_line(tok, text, line, 64)
    masked = problem == tok.mask_id
    assert problem.shape == truth.shape == (64,) and tok.decode(truth[masked].tolist()) == line
    assert torch.equal(problem[~masked], truth[~masked]) and line in tok.decode(truth.tolist())
    left = int(masked.nonzero()[0])
    assert abs(left - (64 - int(masked.sum()) - left)) <= 1                   # the context is centred
    with pytest.raises(ValueError, match="does not occur"):
        masked_line(tok, text, "not in Hamlet at all, surely", 64)
    with pytest.raises(ValueError, match="more than length"):
        masked_line(tok, text, line, 4)


def test_bpe_labels_show_spaces_and_line_breaks(tok):
    ids = tok.encode("my lord,\nthe king")
    labels = [tok.labels[i] for i in ids]
    assert "".join(labels).replace("·", " ").replace("↵", "\n") == "my lord,\nthe king"
    assert tok.labels[0] == "[PAD]" and tok.labels[1] == "[MASK]"


def test_repeated_ngrams_and_unigram_baseline(tok):
    assert repeated_ngrams(torch.tensor([[5, 6, 7, 5, 6, 7]]), 3) == pytest.approx(1 / 4)
    assert repeated_ngrams(torch.tensor([[1, 2, 3, 4]]), 2) == 0.0
    rows = torch.tensor([[2, 3], [3, 3]])
    tb = torch.ones(4, dtype=torch.long)
    # add-one counts over 4 ids from train rows [[3, 3]]: p(2) = 1/6, p(3) = 3/6
    want = -(torch.tensor([1 / 6, 3 / 6, 3 / 6, 3 / 6]).log2().sum()) / 4
    assert unigram_bits_per_byte(torch.tensor([[3, 3]]), rows, tb) == pytest.approx(float(want))


def test_real_text_recipes_train_on_given_rows(tok):
    rows = windows(encode_works(tok, "validation").values(), 64)[:64]
    model, process, history = train_text_recipe("shakespeare-ar-live", data=rows, steps=3, progress=False,
                                                device="cpu")
    assert len(history) == 3 and model.config.rope and model.config.vocab_size == 1024
    assert TEXT_RECIPES["shakespeare-mdlm"].describe().startswith("kind=mdlm")
    assert "corpus=shakespeare" in TEXT_RECIPES["shakespeare-mdlm"].describe()
    assert "corpus" not in TEXT_RECIPES["stories-mdlm"].describe()


@pytest.mark.slow
def test_shipped_real_text_headline_metrics(tok):
    """The figures lesson 07 and the README report (recorded by ``bench real_text``), recomputed from the files
    on the first 192 rows of Hamlet."""
    recorded = json.loads(RESULTS.read_text())["splits"]["test"]
    tb = token_bytes(tok)
    rows = windows(encode_works(tok, "test").values(), 64)[:192]
    unigram = unigram_bits_per_byte(windows(encode_works(tok, "train").values(), 64), rows, tb)
    bpc = {}
    for name in ("shakespeare-mdlm", "shakespeare-ar"):
        model, process, shipped_tok, meta = load_pretrained(name)
        assert shipped_tok.vocab == tok.vocab and meta["corpus"] == "shakespeare"
        bpc[name], err = bits_per_byte(model, process, rows, tb, n_samples=16, seed=0)
        assert bpc[name] < unigram - 0.5                                     # it uses context
        assert abs(bpc[name] - recorded[name]["bits_per_byte"]) < 0.1      # 192 of 1,146 rows: sampling noise
    assert bpc["shakespeare-ar"] < bpc["shakespeare-mdlm"] < 1.5 * bpc["shakespeare-ar"]
