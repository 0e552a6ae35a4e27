"""Lesson 04's checkers: each accepts its reference, rejects the typical wrong answer with a specific message,
and reports a stub as "not attempted" (never an error)."""

import math

import torch

from diffnlp import MaskedDiffusion
from diffnlp.course.exercises import lesson04 as ex
from diffnlp.evaluation.metrics import StoryReport
from diffnlp.sampling.kernels import confidence_step


def _stub(*args):
    raise NotImplementedError


def test_confidence_step_checker():
    assert ex.check_confidence_step(ex.reference_confidence_step).correct
    z, x, logp, n_k, M = ex._confidence_cases()
    assert torch.equal(ex.reference_confidence_step(z, x, logp, n_k, M), confidence_step(z, x, logp, z == M, n_k))

    def by_max(z, x, logp, n_k, M):                        # ranks by the most probable token, not the draw
        return ex.reference_confidence_step(z, x, logp.max(-1, keepdim=True).values.expand_as(logp), n_k, M)

    assert "actually drawn" in ex.check_confidence_step(by_max).message

    def everywhere(z, x, logp, n_k, M):                    # lets decided positions compete and change
        score = logp.gather(-1, x[..., None])[..., 0]
        rank = score.argsort(1, descending=True).argsort(1)
        return torch.where(rank < n_k[:, None], x, z)

    assert "already decided" in ex.check_confidence_step(everywhere).message

    def lowest(z, x, logp, n_k, M):                        # the least confident instead of the most
        return ex.reference_confidence_step(z, x, -logp, n_k, M)

    v = ex.check_confidence_step(lowest)
    assert v.status == "incorrect" and "most confident" in v.message
    assert ex.check_confidence_step(lambda *a: a[0]).status == "incorrect"     # reveals nothing
    assert ex.check_confidence_step(lambda *a: 3).status == "incorrect"
    assert ex.check_confidence_step(None).status == "not attempted"
    assert ex.check_confidence_step(_stub).status == "not attempted"
    assert "ZeroDivisionError" in ex.check_confidence_step(lambda *a: 1 / 0).message


def test_same_step_probability_checker():
    assert ex.check_same_step_probability(ex.reference_same_step_probability).correct
    assert abs(ex.reference_same_step_probability(MaskedDiffusion().alpha, 8) - 1 / 8) < 1e-12
    assert "given" in ex.check_same_step_probability(lambda alpha, K: 1 / K ** 2).message

    def conditional(alpha, K):                              # squares the conditional reveal probabilities
        t = torch.linspace(1, 0, K + 1, dtype=torch.float64)
        p = (alpha(t[1:]) - alpha(t[:-1])) / (1 - alpha(t[:-1]))
        return float((p * p).sum())

    assert "conditional" in ex.check_same_step_probability(conditional).message
    v = ex.check_same_step_probability(lambda alpha, K: 1 / K)          # right for log-linear only
    assert v.status == "incorrect" and "cosine" in v.message
    assert ex.check_same_step_probability(lambda alpha, K: "x").status == "incorrect"
    assert ex.check_same_step_probability(None).status == "not attempted"
    assert ex.check_same_step_probability(_stub).status == "not attempted"


def _report(valid, n=400):
    return StoryReport(n=n, valid=valid, reasons={}, oracle_nll=math.nan, distinct=1.0, examples=[])


def test_validity_prediction_checker():
    measured = {"ancestral": _report(0.55), "confidence": _report(0.16)}
    assert ex.reference_validity_prediction(measured) == "ancestral"
    assert ex.check_validity_prediction(ex.reference_validity_prediction(measured), measured).correct
    assert ex.check_validity_prediction("Ancestral", measured).correct
    wrong = ex.check_validity_prediction("confidence", measured)
    assert wrong.status == "incorrect" and "'ancestral'" in wrong.message and "55%" in wrong.message
    close = {"ancestral": _report(0.50), "confidence": _report(0.52)}
    assert ex.reference_validity_prediction(close) == "same"
    assert ex.check_validity_prediction("same", close).correct
    assert ex.reference_validity_prediction({"ancestral": _report(0.2), "confidence": _report(0.6)}) == "confidence"
    assert ex.check_validity_prediction("maybe", measured).status == "incorrect"
    assert ex.check_validity_prediction(3, measured).status == "incorrect"
    assert ex.check_validity_prediction("same", {"ancestral": 1}).status == "incorrect"
    assert ex.check_validity_prediction(None, measured).status == "not attempted"
