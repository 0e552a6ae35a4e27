"""Lesson 05's checkers accept the reference, reject the typical wrong answer, and report a stub as
"not attempted"."""

from __future__ import annotations

import torch

from diffnlp.course.exercises import lesson05 as ex
from diffnlp.models.transformer import block_causal_mask


def _stub(*args):
    raise NotImplementedError


def test_block_calls_is_counted_live_and_matches_the_reference():
    for k in (1, 2, 4):
        want = ex.reference_block_calls(32, 8, k)
        assert ex.check_block_calls(want, steps_per_block=k).correct
    assert "denoising steps only" in ex.check_block_calls(16).message
    assert ex.check_block_calls(20).status == "incorrect"
    assert ex.check_block_calls("19").status == "incorrect"
    assert ex.check_block_calls(None).status == "not attempted"


def test_block_causal_checker():
    assert ex.check_block_causal(ex.reference_block_causal).correct
    assert torch.equal(ex.reference_block_causal(12, 4), block_causal_mask(torch.arange(12), 12, 4))
    assert "transposed" in ex.check_block_causal(lambda L, b: ex.reference_block_causal(L, b).T).message
    assert "plain causal" in ex.check_block_causal(lambda L, b: torch.ones(L, L, dtype=torch.bool).tril()).message
    assert "bool" in ex.check_block_causal(lambda L, b: ex.reference_block_causal(L, b).float()).message
    assert ex.check_block_causal(lambda L, b: torch.ones(L, L, dtype=torch.bool)).status == "incorrect"
    assert ex.check_block_causal(_stub).status == "not attempted"
    assert ex.check_block_causal(None).status == "not attempted"
    assert "ZeroDivisionError" in ex.check_block_causal(lambda L, b: 1 / 0).message


def test_remask_reveal_probability_checker():
    assert ex.check_remask_reveal_probability(ex.reference_remask_reveal_probability).correct
    assert "MDLM's reveal probability" in ex.check_remask_reveal_probability(lambda a, b, s: (b - a) / (1 - a)).message
    assert ex.check_remask_reveal_probability(lambda a, b, s: "x").status == "incorrect"
    assert ex.check_remask_reveal_probability(lambda a, b, s: float("nan")).status == "incorrect"
    assert ex.check_remask_reveal_probability(_stub).status == "not attempted"
