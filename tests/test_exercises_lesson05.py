"""Lesson 05's checkers accept the reference, reject the typical wrong answer, and report a stub as
"not attempted"."""

from __future__ import annotations

import torch

from diffnlp.course.exercises import lesson05 as ex
from diffnlp.models.transformer import block_causal_mask


def _stub(*args):
    raise NotImplementedError


def test_block_positions_are_counted_live_and_match_the_reference():
    for k in (1, 2, 4):
        calls, positions = ex._measured_block_work(k)
        assert calls == 4 * k                                    # K steps a block cost K calls
        assert positions == ex.reference_block_positions(32, 8, k)
        assert ex.check_block_positions(positions, steps_per_block=k).correct
    assert "current block only" in ex.check_block_positions(64).message
    assert "without the cache" in ex.check_block_positions(256).message
    assert ex.check_block_positions(80).status == "incorrect"
    assert ex.check_block_positions("88").status == "incorrect"
    assert ex.check_block_positions(None).status == "not attempted"


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


def test_entropy_bounded_count_checker():
    from diffnlp.sampling.kernels import entropy_bounded_counts

    assert ex.check_entropy_bounded_count(ex.reference_entropy_bounded_count).correct
    h = torch.tensor([0.3, 0.01, 2.0, 0.2])
    every = torch.ones(1, 4, dtype=torch.bool)
    assert ex.reference_entropy_bounded_count(h, 0.5) == int(entropy_bounded_counts(h[None], every, 0.5)) == 2
    assert "at least one" in ex.check_entropy_bounded_count(lambda h, b: int((torch.sort(h).values.cumsum(0) <= b)
                                                                              .sum())).message
    assert "sort the entropies" in ex.check_entropy_bounded_count(
        lambda h, b: max(int((h.cumsum(0) <= b).sum()), 1)).message
    assert ex.check_entropy_bounded_count(lambda h, b: len(h)).status == "incorrect"
    assert ex.check_entropy_bounded_count(lambda h, b: "2").status == "incorrect"
    assert ex.check_entropy_bounded_count(_stub).status == "not attempted"
