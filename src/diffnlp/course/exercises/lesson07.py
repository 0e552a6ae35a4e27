"""Lesson 07's exercises: each checker with its reference solution."""

from __future__ import annotations

import math

import torch

from ._verdict import NOT_ATTEMPTED, Verdict, run_learner


# ---------------------------------------------------------------- 1. derive: the uniform baseline
def reference_uniform_bits(vocab_size: int, chars_per_token: float) -> float:
    """A model that gives each of V tokens probability 1/V spends log2 V bits a token; a token stands for
    ``chars_per_token`` characters on average, so it scores log2(V) / chars_per_token bits per character."""
    return math.log2(vocab_size) / chars_per_token


def check_uniform_bits(fn) -> Verdict:
    """Exercise (derive): bits per character of the uniform model over ``vocab_size`` tokens, on a text whose
    tokens stand for ``chars_per_token`` characters on average."""
    for V, c in ((1024, 2.37), (2, 1.0), (50257, 4.1), (256, 1.0)):
        got, err = run_learner(fn, V, c)
        if err or got is None:
            return err or NOT_ATTEMPTED
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Verdict("incorrect", f"return one number (a float), got {type(got).__name__}")
        want = reference_uniform_bits(V, c)
        if not abs(got - want) <= 1e-9 * max(1.0, want):
            hint = ""
            if abs(got - math.log(V) / c) < 1e-9:
                hint = " That is nats (ln V): bits use log2."
            elif abs(got - math.log2(V) * c) < 1e-9:
                hint = " More characters a token means fewer tokens, and fewer bits, per character."
            return Verdict("incorrect", f"for V = {V} and {c} characters a token you return {got:.4f}, the answer "
                                        f"is {want:.4f}.{hint}")
    return Verdict("correct", "log2(V) bits a token, divided by the characters a token stands for (for byte-level "
                              "V = 256 and one character a token: 8 bits, one byte)")


# ---------------------------------------------------------------- 2. implement: bits per character
def reference_bits_per_byte(nats: torch.Tensor, n_bytes: torch.Tensor) -> float:
    """sum_rows (-log p(row)) / (ln 2 * sum_rows bytes(row)): the total information over the total text, in bits
    (``evaluation.real_text.bits_per_byte`` without the model)."""
    return float(nats.double().sum() / (math.log(2) * n_bytes.double().sum()))


def check_bits_per_byte(fn) -> Verdict:
    """Exercise (implement): bits per byte from each row's negative log-likelihood in nats, (N,), and the bytes
    each row stands for, (N,). Rows of unequal byte length tell a total-over-total from a mean of ratios."""
    g = torch.Generator().manual_seed(7)
    for n in (1, 5, 40):
        nats = 20 + 200 * torch.rand(n, generator=g, dtype=torch.float64)
        n_bytes = torch.randint(60, 260, (n,), generator=g)
        got, err = run_learner(fn, nats.clone(), n_bytes.clone())
        if err or got is None:
            return err or NOT_ATTEMPTED
        want = reference_bits_per_byte(nats, n_bytes)
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Verdict("incorrect", f"return one number (a float), got {type(got).__name__}")
        if not abs(got - want) <= 1e-6 * max(1.0, abs(want)):    # float32 sums are fine
            hint = ""
            if abs(got - want * math.log(2)) < 1e-5:
                hint = " It is in nats per byte: divide by ln 2 to get bits."
            elif n > 1 and abs(got - float((nats / n_bytes.double()).mean() / math.log(2))) < 1e-5:
                hint = " That is the mean of the rows' ratios: divide the total bits by the total bytes."
            return Verdict("incorrect", f"with {n} rows you return {got:.9f}, the answer is {want:.9f}.{hint}")
    return Verdict("correct", "bits per byte = total bits / total bytes, for any number of rows of any length")


# ---------------------------------------------------------------- 3. predict: who wins generative perplexity
GEN_PPL_CHOICES = ("held-out text", "ar", "mdlm 64 steps", "mdlm 4 steps", "greedy confidence")


def reference_lowest_gen_ppl(report: dict) -> str:
    """The row of ``report`` (name -> {"gen_ppl": ...}) with the lowest generative perplexity."""
    return min(report, key=lambda k: report[k]["gen_ppl"])


def check_lowest_gen_ppl(guess, report: dict) -> Verdict:
    """Exercise (predict): which of the rows gets the *lowest* (the "best") generative perplexity from the AR
    judge? ``report`` is the measured table, name -> {"gen_ppl", "entropy", "repeats"}."""
    if guess is None:
        return NOT_ATTEMPTED
    choices = [c for c in GEN_PPL_CHOICES if c in report]
    if not isinstance(guess, str) or guess.strip().lower() not in choices:
        return Verdict("incorrect", f"answer one of {', '.join(map(repr, choices))}; got {guess!r}")
    truth = reference_lowest_gen_ppl(report)
    best = report[truth]
    data = f"; the held-out text scores {report['held-out text']['gen_ppl']:.1f}" if "held-out text" in report else ""
    if guess.strip().lower() == truth:
        return Verdict("correct", f"{truth!r} scores {best['gen_ppl']:.1f}, the lowest{data}. Read on: why can "
                                  "anything score better than real text?")
    return Verdict("incorrect", f"the lowest is {truth!r} ({best['gen_ppl']:.1f}; yours: "
                                f"{report[guess.strip().lower()]['gen_ppl']:.1f}{data}). Look at who the judge is, "
                                f"and at the repeated 3-grams and token entropy of each row")
