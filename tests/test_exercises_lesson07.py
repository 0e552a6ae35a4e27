"""Lesson 07's exercise checkers accept the reference and reject typical wrong answers."""

from __future__ import annotations

import math

from diffnlp.course.exercises import (
    check_bits_per_byte,
    check_lowest_gen_ppl,
    check_uniform_bits,
    reference_bits_per_byte,
    reference_lowest_gen_ppl,
    reference_uniform_bits,
)

REPORT = {"held-out text": {"gen_ppl": 40.0, "entropy": 8.1, "repeats": 0.01},
          "ar": {"gen_ppl": 35.0, "entropy": 8.0, "repeats": 0.02},
          "greedy confidence": {"gen_ppl": 4.0, "entropy": 5.0, "repeats": 0.5}}


def test_uniform_bits_checker():
    assert check_uniform_bits(reference_uniform_bits).correct
    assert check_uniform_bits(None).status == "not attempted"
    nats = check_uniform_bits(lambda V, c: math.log(V) / c)
    assert nats.status == "incorrect" and "log2" in nats.message
    times = check_uniform_bits(lambda V, c: math.log2(V) * c)
    assert times.status == "incorrect" and "fewer bits" in times.message
    assert check_uniform_bits(lambda V, c: [1]).status == "incorrect"


def test_bits_per_byte_checker():
    assert check_bits_per_byte(reference_bits_per_byte).correct
    assert check_bits_per_byte(None).status == "not attempted"

    def stub(nats, n_bytes):
        raise NotImplementedError

    assert check_bits_per_byte(stub).status == "not attempted"
    nats_per_byte = check_bits_per_byte(lambda n, b: float(n.sum() / b.sum()))
    assert nats_per_byte.status == "incorrect" and "ln 2" in nats_per_byte.message
    mean_ratio = check_bits_per_byte(lambda n, b: float((n / b).mean() / math.log(2)))
    assert mean_ratio.status == "incorrect" and "total bytes" in mean_ratio.message
    assert check_bits_per_byte(lambda n, b: 1 / 0).status == "incorrect"


def test_lowest_gen_ppl_checker():
    assert reference_lowest_gen_ppl(REPORT) == "greedy confidence"
    assert check_lowest_gen_ppl("greedy confidence", REPORT).correct
    assert check_lowest_gen_ppl(None, REPORT).status == "not attempted"
    assert check_lowest_gen_ppl("ar", REPORT).status == "incorrect"
    assert check_lowest_gen_ppl("the best one", REPORT).status == "incorrect"
