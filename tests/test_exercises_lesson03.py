"""Lesson 03's checkers accept the reference, reject the typical wrong answer, and report a stub as
"not attempted"."""

from __future__ import annotations

import pytest
import torch

from diffnlp.course.exercises import lesson03 as ex
from diffnlp.models.embedding import EmbeddingDenoiser
from diffnlp.processes.embedding import EmbeddingDiffusion


def _stub(*args):
    raise NotImplementedError


def test_nearest_word_checker():
    assert ex.check_nearest_word(ex.reference_nearest_word).correct
    assert ex.check_nearest_word(None).status == "not attempted"
    assert ex.check_nearest_word(_stub).status == "not attempted"
    wrong = ex.check_nearest_word(lambda x, emb: (x @ emb.T).argmax(-1))
    assert wrong.status == "incorrect" and "dot product" in wrong.message
    assert "shape" in ex.check_nearest_word(lambda x, emb: x).message
    assert "ZeroDivisionError" in ex.check_nearest_word(lambda x, emb: 1 / 0).message


def test_rounding_grad_checker_matches_autograd():
    from diffnlp.processes.embedding import rounding_nll

    emb, x, ids = ex._word_vector_case(0)
    x = x.clone().requires_grad_(True)
    rounding_nll(ex._word_vector_model(emb), x, ids).sum().backward()
    assert torch.allclose(ex.reference_rounding_grad(x.detach(), emb, ids), x.grad, atol=1e-10)
    assert ex.check_rounding_grad(ex.reference_rounding_grad).correct
    forgot = ex.check_rounding_grad(lambda x, e, i: 2 * (x - e[i]))           # no normaliser
    assert forgot.status == "incorrect" and "normaliser" in forgot.message
    assert "sign" in ex.check_rounding_grad(lambda x, e, i: -ex.reference_rounding_grad(x, e, i)).message
    assert "factor 2" in ex.check_rounding_grad(lambda x, e, i: ex.reference_rounding_grad(x, e, i) / 2).message
    assert ex.check_rounding_grad(lambda x, e, i: torch.zeros_like(x)).status == "incorrect"
    assert ex.check_rounding_grad(_stub).status == "not attempted"
    assert ex.check_rounding_grad(None).status == "not attempted"


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = EmbeddingDenoiser(vocab_size=20, max_len=6, embed_dim=4, num_train_timesteps=100, d_model=16,
                              n_layers=1, n_heads=2).eval()
    ids = torch.randint(2, 20, (64, 6))
    ids[:, 0] = 5                                                     # a template word every sequence has
    return model, EmbeddingDiffusion(100), ids


def test_rounding_guess_is_measured_live(small):
    model, process, ids = small
    measured = ex.reference_rounding_guess(model, process, ids, t=30)
    assert measured == process.rounding_accuracy(model, ids, [30], positions="free")["noisy"][0]
    assert ex.check_rounding_guess(measured, model, process, ids, t=30).correct
    assert ex.check_rounding_guess(torch.tensor(measured), model, process, ids, t=30).correct
    far = min(1.0, measured + 0.3) if measured < 0.6 else measured - 0.3
    v = ex.check_rounding_guess(far, model, process, ids, t=30)
    assert v.status == "incorrect" and f"{measured:.3f}" in v.message
    assert "percentage" in ex.check_rounding_guess(64, model, process, ids, t=30).message
    assert ex.check_rounding_guess(-0.5, model, process, ids, t=30).status == "incorrect"
    assert ex.check_rounding_guess("0.5").status == "incorrect"
    assert ex.check_rounding_guess(True).status == "incorrect"
    assert ex.check_rounding_guess(None).status == "not attempted"


def test_rounding_guess_default_is_the_shipped_model_at_t_200():
    v = ex.check_rounding_guess(0.0)                 # far too pessimistic: rounding keeps most words at t = 200
    assert v.status == "incorrect" and "too pessimistic" in v.message
    assert 0.4 < ex.reference_rounding_guess() < 0.9
