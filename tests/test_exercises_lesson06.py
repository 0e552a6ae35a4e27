"""Lesson 06's checkers: each accepts its reference, rejects the typical wrong answer with a specific message,
and reports a stub as "not attempted" (never an error)."""

import torch

from diffnlp.course.exercises import lesson06 as ex
from diffnlp.evaluation.metrics import ControlReport, StoryReport


def _stub(*args):
    raise NotImplementedError


def test_true_score_checker():
    assert ex.check_true_score(ex.reference_true_score).correct
    assert "the posterior itself" in ex.check_true_score(lambda p, a: p).message
    assert "wrong way up" in ex.check_true_score(lambda p, a: (1 - a) / a * p).message
    assert "divide by" in ex.check_true_score(lambda p, a: a * p).message
    assert ex.check_true_score(lambda p, a: p / a).status == "incorrect"
    assert ex.check_true_score(lambda p, a: "x").status == "incorrect"
    assert ex.check_true_score(lambda p, a: torch.full_like(p, float("nan"))).status == "incorrect"
    assert ex.check_true_score(_stub).status == "not attempted"
    assert ex.check_true_score(None).status == "not attempted"


def test_true_score_reference_is_the_brute_force_ratio():
    for post, a, ratio in ex._score_cases():
        assert torch.allclose(ex.reference_true_score(post, a), ratio, atol=1e-12)


def test_guided_log_probs_checker():
    assert ex.check_guided_log_probs(ex.reference_guided_log_probs).correct
    assert "normalise" in ex.check_guided_log_probs(lambda c, u, w: (1 - w) * u + w * c).message
    assert "mixed probabilities" in ex.check_guided_log_probs(
        lambda c, u, w: torch.log((1 - w) * u.exp() + w * c.exp())).message
    assert ex.check_guided_log_probs(lambda c, u, w: c).status == "incorrect"
    assert ex.check_guided_log_probs(lambda c, u, w: torch.full_like(c, float("nan"))).status == "incorrect"
    assert ex.check_guided_log_probs(None).status == "not attempted"
    assert ex.check_guided_log_probs(_stub).status == "not attempted"


def _control(valid, n=200):
    return ControlReport("place", "museum", n, valid, valid, (valid * (1 - valid) / n) ** 0.5)


def test_cfg_break_checker():
    sweep = {0.0: _control(0.8), 1.0: _control(0.83), 2.0: _control(0.83), 4.0: _control(0.82),
             8.0: _control(0.65)}
    assert ex.reference_cfg_break(sweep) == 8.0
    assert ex.check_cfg_break(8, sweep).correct
    assert ex.check_cfg_break(8.0, sweep).correct
    v = ex.check_cfg_break(2, sweep)
    assert v.status == "incorrect" and "still within noise" in v.message
    assert "breaks earlier" in ex.check_cfg_break("none", sweep).message
    assert ex.check_cfg_break(3, sweep).status == "incorrect"            # not a swept scale
    assert ex.check_cfg_break(True, sweep).status == "incorrect"
    assert ex.check_cfg_break(8, {}).status == "incorrect"               # no sweep passed: a message, no error
    assert ex.check_cfg_break(None, sweep).status == "not attempted"
    flat = {1.0: _control(0.83), 2.0: _control(0.82), 4.0: _control(0.81)}
    assert ex.reference_cfg_break(flat) == "none" and ex.check_cfg_break("none", flat).correct


def _story(valid, n=200):
    return StoryReport(n=n, valid=valid, reasons={}, oracle_nll=20.0, distinct=1.0, examples=[])


def test_one_step_fill_checker():
    measured = {"edit": (_story(0.97), _story(0.98)), "object": (_story(0.3), _story(0.95))}
    assert ex.reference_one_step_fill(measured) == "object"
    assert ex.check_one_step_fill("object", measured).correct
    assert ex.check_one_step_fill(" Object ", measured).correct
    v = ex.check_one_step_fill("both", measured)
    assert v.status == "incorrect" and "depend on each other" in v.message
    assert ex.check_one_step_fill("maybe", measured).status == "incorrect"
    assert ex.check_one_step_fill("edit", {}).status == "incorrect"
    assert ex.check_one_step_fill(None, measured).status == "not attempted"
    both = {"edit": (_story(0.5), _story(0.98)), "object": (_story(0.3), _story(0.95))}
    assert ex.reference_one_step_fill(both) == "both"
    same = {"edit": (_story(0.97), _story(0.98)), "object": (_story(0.94), _story(0.95))}
    assert ex.reference_one_step_fill(same) == "neither"
