"""Every checker accepts the reference solution, rejects a typical wrong answer, and reports an
untouched stub as "not attempted" (never an error)."""

import pytest
import torch

from diffnlp import GaussianDiffusion
from diffnlp.course import exercises as ex


def _stub(*args):
    raise NotImplementedError


CASES = [
    (ex.check_add_noise, ex.reference_add_noise,
     lambda x0, noise, abar: abar * x0 + (1 - abar) * noise),  # forgot the square roots
    (ex.check_posterior_mean, ex.reference_posterior_mean,
     lambda x_t, x0, a, ap: ap ** 0.5 * x0),  # dropped the x_t term
    (ex.check_eps_from_v, ex.reference_eps_from_v,
     lambda x_t, v, a: a ** 0.5 * x_t + (1 - a) ** 0.5 * v),  # swapped coefficients
]


@pytest.mark.parametrize("check, reference, wrong", CASES, ids=lambda f: getattr(f, "__name__", ""))
def test_function_checkers(check, reference, wrong):
    assert check(reference).status == "correct"
    assert check(wrong).status == "incorrect"
    assert check(_stub).status == "not attempted"
    assert check(None).status == "not attempted"
    crashed = check(lambda *a: 1 / 0)
    assert crashed.status == "incorrect" and "ZeroDivisionError" in crashed.message


def test_half_signal_checker():
    t = ex.reference_half_signal_t(GaussianDiffusion())
    a = GaussianDiffusion().alphas_cumprod
    assert a[t] <= 0.5 < a[t - 1]
    assert ex.check_half_signal_t(t).status == "correct"
    assert ex.check_half_signal_t(t + 1).status == "incorrect"
    assert ex.check_half_signal_t(500).status == "incorrect"
    assert ex.check_half_signal_t(None).status == "not attempted"
    assert ex.check_half_signal_t("250").status == "incorrect"


def test_verdict_repr():
    assert "not attempted" in repr(ex.check_add_noise(_stub))


def test_lesson_05_checkers():
    from diffnlp.course.exercises import (
        check_remask_reveal_probability,
        reference_remask_reveal_probability,
    )

    assert check_remask_reveal_probability(reference_remask_reveal_probability).correct
    assert "MDLM's reveal probability" in check_remask_reveal_probability(lambda a, b, s: (b - a) / (1 - a)).message
    assert check_remask_reveal_probability(lambda a, b, s: "x").status == "incorrect"
    assert check_remask_reveal_probability(lambda a, b, s: float("nan")).status == "incorrect"
    assert check_remask_reveal_probability(lambda a, b, s: torch.ones(2)).status == "incorrect"


def test_show_displays_a_functions_source_under_its_equation():
    import inspect

    from diffnlp.course.show import show
    from diffnlp.processes.masked import MaskedDiffusion
    from diffnlp.sampling.kernels import categorical

    src = show(MaskedDiffusion.reveal_probability)
    assert src.name == "diffnlp.processes.masked.MaskedDiffusion.reveal_probability"
    assert src.path == "src/diffnlp/processes/masked.py" and src.lineno > 1
    assert src.code.startswith("def reveal_probability(") and "(a_s - a_t) / (1 - a_t)" in src.code
    assert any("(alpha(s) - alpha(t)) / (1 - alpha(t))" in e for e in src.equations)
    page = src._repr_html_()
    assert "reveal_probability" in page and "alpha(s) - alpha(t)" in page and "<span" in page   # highlighted
    assert str(src).splitlines()[0].startswith("# diffnlp.processes.masked")
    assert show(categorical).code == inspect.getsource(categorical)
    with pytest.raises(TypeError, match="function"):
        show(42)
    with pytest.raises(ValueError, match="course package"):
        show(inspect.getsource)
    with pytest.raises(ValueError, match="max_lines=5"):
        show(MaskedDiffusion.sample, max_lines=5)
