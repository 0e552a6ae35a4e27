"""Sliced Wasserstein distance against closed forms, and the digits judge on real digits and noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffnlp.data.digits import load_digits
from diffnlp.data.toy2d import sample_points
from diffnlp.evaluation.metrics import JudgeReport, sliced_wasserstein, swd_mean

PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, database=None)


def randn(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def directions(d, num_projections, seed):
    """The unit directions sliced_wasserstein draws (same generator calls)."""
    theta = torch.randn(d, num_projections, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return theta / theta.norm(dim=0, keepdim=True)


# ------------------------------------------------------------------------------------------ sliced Wasserstein
@pytest.mark.parametrize("d", [1, 2, 5])
def test_swd_is_zero_for_identical_sets_and_permutations(d):
    x = randn((300, d), 0)
    assert sliced_wasserstein(x, x) == 0.0
    assert sliced_wasserstein(x, x[torch.randperm(300, generator=torch.Generator().manual_seed(1))]) == 0.0
    assert sliced_wasserstein(x, x.float()) < 1e-6


@pytest.mark.parametrize("d", [1, 2, 3])
def test_swd_is_symmetric(d):
    x, y = randn((200, d), 0), randn((200, d), 1) * 2 + 0.5
    assert sliced_wasserstein(x, y) == sliced_wasserstein(y, x)
    assert sliced_wasserstein(x, y) > 0


def test_swd_in_1d_is_the_exact_w2():
    """In 1-D every projection is +-1 and W2 between equal-size samples is the RMS gap of the sorted values
    (sorting by -x reverses both orders, so the sign of the projection does not matter)."""
    x, y = randn((500, 1), 0), randn((500, 1), 1) * 1.5 + 0.3
    exact = float(((np.sort(x[:, 0].numpy()) - np.sort(y[:, 0].numpy())) ** 2).mean() ** 0.5)
    for seed in range(3):
        assert sliced_wasserstein(x, y, num_projections=7, seed=seed) == pytest.approx(exact, rel=1e-12)
    # a monotone affine map y = a x + b keeps the order, so W2^2 = mean(((a - 1) x + b)^2)
    y = 1.5 * x + 0.3
    affine = float((((0.5 * x + 0.3) ** 2).mean()) ** 0.5)
    assert sliced_wasserstein(x, y, num_projections=3) == pytest.approx(affine, rel=1e-12)


@pytest.mark.parametrize("d", [2, 3])
def test_swd_of_a_translation(d):
    """For y = x + c, every projected gap is theta.c, so SWD^2 = mean_theta (theta.c)^2 exactly, and
    E_theta (theta.c)^2 = |c|^2 / d for uniform directions."""
    x = randn((400, d), 0)
    c = torch.tensor([0.6, -0.8, 0.3][:d], dtype=torch.float64)
    theta = directions(d, 512, seed=0)
    exact = float(((c @ theta) ** 2).mean().sqrt())
    assert sliced_wasserstein(x, x + c, num_projections=512, seed=0) == pytest.approx(exact, rel=1e-9)
    many = sliced_wasserstein(x, x + c, num_projections=20000, seed=1)
    assert many == pytest.approx(float(c.norm()) / math.sqrt(d), rel=0.02)


def test_swd_grows_with_the_shift():
    x = randn((400, 2), 0)
    c = torch.tensor([1.0, 1.0], dtype=torch.float64) / math.sqrt(2)
    values = [sliced_wasserstein(x, x + a * c) for a in (0.0, 0.1, 0.5, 1.0, 3.0)]
    assert values[0] == 0.0
    assert all(a < b for a, b in zip(values[:-1], values[1:], strict=True))
    # and exactly linearly, for a translation
    assert values[4] == pytest.approx(30 * values[1], rel=1e-9)


def test_swd_scales_with_the_data():
    x, y = randn((300, 2), 0), randn((300, 2), 1) + 1
    assert sliced_wasserstein(2.5 * x, 2.5 * y) == pytest.approx(2.5 * sliced_wasserstein(x, y), rel=1e-12)


def test_swd_is_seeded():
    x, y = randn((300, 2), 0), randn((300, 2), 1) * torch.tensor([1.0, 3.0], dtype=torch.float64)
    assert sliced_wasserstein(x, y, seed=3) == sliced_wasserstein(x, y, seed=3)
    assert sliced_wasserstein(x, y, seed=3) != sliced_wasserstein(x, y, seed=4)
    seeds = (0, 1, 2)
    assert swd_mean(x, y, 64, seeds) == pytest.approx(np.mean([sliced_wasserstein(x, y, 64, s) for s in seeds]))


def test_swd_tells_clouds_apart_above_its_floor():
    moons, fresh = sample_points("moons", 2000, seed=0), sample_points("moons", 2000, seed=1)
    ring = sample_points("ring", 2000, seed=0)
    floor = swd_mean(moons, fresh, 128)
    assert floor < 0.05
    assert swd_mean(moons, ring, 128) > 5 * floor


def test_swd_accepts_float32_and_grad_tensors():
    x = randn((100, 2), 0, torch.float32).requires_grad_()
    y = randn((100, 2), 1, torch.float32)
    assert isinstance(sliced_wasserstein(x, y), float)


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(2, 50), d=st.integers(1, 4), proj_seed=st.integers(0, 100))
def test_swd_is_a_metric(seed, n, d, proj_seed):
    """For a fixed set of directions SWD is a metric on equal-size point sets."""
    x, y, z = randn((n, d), seed), randn((n, d), seed + 1) * 2, randn((n, d), seed + 2) + 1
    sw = lambda a, b: sliced_wasserstein(a, b, num_projections=16, seed=proj_seed)  # noqa: E731
    assert sw(x, y) >= 0 and sw(x, x) == 0
    assert sw(x, y) == pytest.approx(sw(y, x), rel=1e-12)
    assert sw(x, z) <= sw(x, y) + sw(y, z) + 1e-9


# ------------------------------------------------------------------------------------------ digits judge
def test_judge_is_accurate_and_confident_on_real_digits(digits_judge):
    assert digits_judge.test_accuracy > 0.9
    assert 0.8 < digits_judge.real_confidence < 1.0


def test_judge_on_real_test_digits(digits_judge):
    x, y = load_digits("test", seed=0)
    report = digits_judge.judge(x)
    assert isinstance(report, JudgeReport)
    assert report.relative_confidence == pytest.approx(1.0, abs=1e-12)
    assert report.confidence == pytest.approx(digits_judge.real_confidence, abs=1e-12)
    assert len(report.class_shares) == 10 and sum(report.class_shares) == pytest.approx(1.0)
    assert report.min_share > 0.04
    # the judge's class shares follow the true labels
    true = (torch.bincount(y, minlength=10).double() / len(y)).numpy()
    np.testing.assert_allclose(report.class_shares, true, atol=0.03)
    text = str(report)
    assert "100.0%" in text and "0:" in text and "9:" in text


def test_judge_on_pure_noise_is_unsure(digits_judge):
    g = torch.Generator().manual_seed(0)
    for noise in (torch.rand(500, 1, 8, 8, generator=g) * 2 - 1, torch.randn(500, 1, 8, 8, generator=g)):
        report = digits_judge.judge(noise)
        assert report.relative_confidence < 0.75
        assert report.confidence < digits_judge.real_confidence - 0.2


def test_judge_class_shares_reveal_mode_collapse(digits_judge):
    x, y = load_digits("test", seed=0)
    report = digits_judge.judge(x[y == 3])
    assert report.class_shares[3] > 0.9
    assert report.min_share == 0.0


def test_judge_accepts_flat_or_image_shapes(digits_judge):
    x, _ = load_digits("test", seed=0)
    p1 = digits_judge.probabilities(x[:20])
    p2 = digits_judge.probabilities(x[:20].reshape(20, 64))
    p3 = digits_judge.probabilities(x[:20, 0])
    assert p1.shape == (20, 10)
    np.testing.assert_allclose(p1.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(p1, p3)
    # images are clamped to [-1, 1] first, so overshooting samples are judged as saturated pixels
    big = x[:20] * 3
    np.testing.assert_array_equal(digits_judge.probabilities(big), digits_judge.probabilities(big.clamp(-1, 1)))
    assert not np.allclose(digits_judge.probabilities(big), p1)


@pytest.mark.parametrize("images,exc", [
    (torch.zeros(4, 1, 7, 7), ValueError),
    (torch.zeros(4, 32), ValueError),
    (torch.zeros(0, 1, 8, 8), ValueError),
    (torch.zeros(64), ValueError),
    (torch.zeros(4, 1, 8, 8, dtype=torch.long), TypeError),
    (np.zeros((4, 1, 8, 8), dtype=np.float32), TypeError),
    (torch.tensor(0.5), ValueError),
], ids=["7x7", "32-flat", "empty", "1-D", "integer", "numpy", "0-d"])
def test_judge_bad_images(digits_judge, images, exc):
    with pytest.raises(exc, match="images"):
        digits_judge.judge(images)


def test_distribution_helpers():
    from diffnlp.evaluation.metrics import empirical_distribution, entropy, total_variation

    q = empirical_distribution(torch.tensor([[0, 1], [2, 2], [0, 1], [1, 0]]), 3)
    assert q.tolist() == [0, 0.5, 0, 0.25, 0, 0, 0, 0, 0.25]
    assert total_variation(q, torch.full((9,), 1 / 9)) == pytest.approx(2 / 3)       # (6/9 + 7/18 + 2 (5/36)) / 2
    assert total_variation(q, q) == 0.0
    assert entropy(q) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))


# ------------------------------------------------------------------------- lessons 01-02: exact yardsticks
def test_mixture_fit_is_exact_on_the_mixture_and_sees_blur_and_missing_mass():
    from diffnlp.data.toy2d import MIXTURE_STD, MIXTURE_WEIGHTS, mixture_means
    from diffnlp.evaluation.metrics import total_variation
    from diffnlp.evaluation.oracle import mixture_fit

    x = sample_points("mixture", 40000, seed=3)
    mass, spread = mixture_fit(x, mixture_means(), MIXTURE_STD)
    assert abs(spread - 1) < 0.01
    assert total_variation(mass, torch.tensor(MIXTURE_WEIGHTS)) < 0.01
    means = torch.tensor(mixture_means(), dtype=torch.float32)
    k = torch.cdist(x, means).argmin(1)
    blurred = means[k] + 1.5 * (x - means[k])                                # every cluster 1.5x wider
    assert abs(mixture_fit(blurred, mixture_means(), MIXTURE_STD)[1] - 1.5) < 0.02
    only_first = x[k == 0]                                                   # all the mass on one centre
    mass, spread = mixture_fit(only_first, mixture_means(), MIXTURE_STD)
    assert mass[0] == 1 and abs(spread - 1) < 0.05
    with pytest.raises(ValueError, match="same D"):
        mixture_fit(torch.zeros(5, 3), mixture_means(), MIXTURE_STD)


def test_swd_stderr_splits_into_independent_draws():
    from diffnlp.evaluation.metrics import mean_stderr
    from diffnlp.evaluation.oracle import swd_stderr

    x, y = sample_points("moons", 3000, seed=1), sample_points("moons", 3000, seed=2)
    m, se = swd_stderr(x, y, draws=3)
    parts = [sliced_wasserstein(x[j * 1000:(j + 1) * 1000], y[j * 1000:(j + 1) * 1000], seed=j) for j in range(3)]
    assert (m, se) == mean_stderr(parts) and se > 0
    assert swd_stderr(x, x + 1.0, draws=3)[0] > 0.5                          # a shift of (1, 1): far above 0
    with pytest.raises(ValueError, match="divisible"):
        swd_stderr(x[:100], y[:100], draws=3)


def test_sign_beyond_noise():
    from diffnlp.evaluation.oracle import sign_beyond_noise

    assert sign_beyond_noise((1.0, 0.1), (0.0, 0.1)) == 1                   # gap 1 > 3 * 0.141
    assert sign_beyond_noise((0.0, 0.1), (1.0, 0.1)) == -1
    assert sign_beyond_noise((0.3, 0.1), (0.0, 0.1)) == 0                   # 0.3 < 0.424: within noise
    assert sign_beyond_noise((0.3, 0.1), (0.0, 0.1), z=2) == 1              # 0.3 > 0.283
    assert sign_beyond_noise((0.5, 0.0), (0.5, 0.0)) == 0
    with pytest.raises(ValueError, match="standard errors"):
        sign_beyond_noise((0.0, -1.0), (0.0, 0.1))
