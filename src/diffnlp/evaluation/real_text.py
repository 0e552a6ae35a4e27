"""Measuring a language model of real text, where no oracle knows the true distribution.

On the story grammar every figure is read against the exact entropy H. Real text has no H, so:

- **Held-out likelihood replaces the oracle.** A model's NLL on text it never saw bounds the text's
  (unknown) entropy rate from above, and the lower the better; only *differences* between models mean
  something. ``bits_per_byte`` divides by the text's UTF-8 bytes, not by tokens, so models with different
  tokenizers compare (the course's corpus is ASCII: bytes = characters):

      bits per byte = sum_rows (-log p(row)) / (ln 2 * sum_rows bytes(row))

  For MDLM -log p(row) is replaced by its NELBO (an upper bound: the model's true bits are lower); for AR
  it is exact.
- **The generative-perplexity trap.** Scoring a model's *samples* by another model's perplexity
  (``generative_perplexity``) rewards dull text: a sampler at low temperature, or one that repeats a
  frequent phrase, scores "better" than the data itself. Report it only beside a diversity measure
  (``unigram_entropy`` of the samples against the data's), or not at all.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_int, check_tensor
from ..base import model_device


def check_rows(name: str, rows) -> torch.Tensor:
    """A (N, L) LongTensor of token ids with N, L >= 1."""
    check_tensor(name, rows)
    if rows.ndim != 2 or rows.dtype != torch.long or rows.numel() == 0:
        raise ValueError(f"{name} must be a non-empty (N, L) LongTensor of token ids, got shape {tuple(rows.shape)} "
                         f"and dtype {rows.dtype}")
    return rows


@torch.no_grad()
def bits_per_byte(model, process, rows: torch.Tensor, token_bytes: torch.Tensor, n_samples: int = 16,
                  batch_size: int = 128, seed: int = 0) -> tuple[float, float]:
    """(bits per byte, its Monte-Carlo standard error) of held-out ``rows`` (N, L): the process's ``nelbo``
    (MDLM's bound with ``n_samples`` draws a row; AR's exact NLL, error 0) summed over rows, divided by
    ln 2 and by the bytes the rows stand for (``data.corpus.token_bytes``):

        bits per byte = sum_rows (-log p(row)) / (ln 2 * sum_rows bytes(row))
    """
    rows = check_rows("rows", rows)
    check_tensor("token_bytes", token_bytes)
    n_samples = check_int("n_samples", n_samples, low=2)
    if int(rows.max()) >= len(token_bytes):
        raise ValueError(f"rows hold id {int(rows.max())}, but token_bytes covers only {len(token_bytes)} ids")
    n_bytes = int(token_bytes[rows].sum())
    if n_bytes == 0:
        raise ValueError("rows stand for no text (0 bytes): bits per byte is undefined")
    gen = torch.Generator().manual_seed(seed)
    total, var = 0.0, 0.0
    dev = model_device(model)
    for i in range(0, len(rows), batch_size):
        est = process.nelbo(model, rows[i:i + batch_size].to(dev), generator=gen, n_samples=n_samples)
        total += float(est.mean.double().sum())
        var += float((est.stderr.double() ** 2).sum())
    scale = 1.0 / (math.log(2) * n_bytes)
    return total * scale, math.sqrt(var) * scale


def unigram_bits_per_byte(train_rows: torch.Tensor, rows: torch.Tensor, token_bytes: torch.Tensor) -> float:
    """The baseline that uses no context: each token of ``rows`` scored by its frequency in ``train_rows``
    (add-one smoothed over the vocabulary), -sum log2 p(token) / bytes."""
    train_rows, rows = check_rows("train_rows", train_rows), check_rows("rows", rows)
    check_tensor("token_bytes", token_bytes)
    top = max(int(train_rows.max()), int(rows.max()))
    if top >= len(token_bytes):
        raise ValueError(f"the rows hold id {top}, but token_bytes covers only {len(token_bytes)} ids")
    if int(token_bytes[rows].sum()) == 0:
        raise ValueError("rows stand for no text (0 bytes): bits per byte is undefined")
    counts = torch.bincount(train_rows.reshape(-1), minlength=len(token_bytes)).double() + 1
    log2p = (counts / counts.sum()).log2()
    return float(-log2p[rows].sum() / token_bytes[rows].sum())


@torch.no_grad()
def generative_perplexity(judge, judge_process, samples: torch.Tensor, batch_size: int = 256) -> float:
    """exp(mean -log p_judge(token | its prefix)) over ``samples`` (N, L), scored by an autoregressive
    ``judge``: the figure papers report for samples, and the one a dull sampler games (module docstring)."""
    samples = check_rows("samples", samples)
    dev = model_device(judge)
    nll = sum(float(judge_process.nll(judge, samples[i:i + batch_size].to(dev)).double().sum())
              for i in range(0, len(samples), batch_size))
    return math.exp(nll / samples.numel())


def unigram_entropy(rows: torch.Tensor, vocab_size: int) -> float:
    """The entropy, in bits, of the token frequencies in ``rows``: how varied the words are. Text repeated
    from a few frequent tokens scores low; compare samples against held-out data of the same length."""
    rows = check_rows("rows", rows)
    vocab_size = check_int("vocab_size", vocab_size, low=1)
    p = torch.bincount(rows.reshape(-1).cpu(), minlength=vocab_size).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log2()).sum())


def repeated_ngrams(rows: torch.Tensor, n: int = 3) -> float:
    """The share of the n-grams of each row that already occurred earlier in the same row, over all rows: the
    loops a low-temperature or too-confident sampler falls into ("my lord, my lord, my lord")."""
    rows = check_rows("rows", rows)
    n = check_int("n", n, low=1, high=rows.shape[1])
    repeats = total = 0
    for row in rows.tolist():
        seen = set()
        for i in range(len(row) - n + 1):
            gram = tuple(row[i:i + n])
            repeats += gram in seen
            seen.add(gram)
            total += 1
    return repeats / total


__all__ = ["bits_per_byte", "check_rows", "generative_perplexity", "repeated_ngrams", "unigram_bits_per_byte",
           "unigram_entropy"]
