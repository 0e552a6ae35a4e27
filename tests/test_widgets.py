"""Widget callbacks driven from Python, without a browser."""

import numpy as np
import pytest
import torch

from diffnlp import GaussianDiffusion
from diffnlp.course.widgets.points import NoisingExplorer, TrajectoryPlayer

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def points_explorer():
    return NoisingExplorer("points", dataset="moons", n=300)


def test_slider_redraws_and_shows_x_t(points_explorer):
    e = points_explorer
    e.slider.value = 0
    before = e.image.value
    e.slider.value = 500
    assert e.image.value != before and e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    shown = e.artist.get_offsets()
    want = GaussianDiffusion(1000, e.dropdown.value).add_noise(e.x0, e.noise, 500)
    np.testing.assert_allclose(shown, want.numpy(), atol=1e-6)
    assert e.marker_line.get_xdata()[0] == 500


def test_schedule_dropdown_changes_curve_and_points(points_explorer):
    e = points_explorer
    e.slider.value = 300
    linear = e.abar_line.get_ydata().copy()
    pts = e.artist.get_offsets().copy()
    e.dropdown.value = "cosine"
    cosine = e.abar_line.get_ydata()
    np.testing.assert_allclose(cosine, GaussianDiffusion(1000, "cosine").alphas_cumprod.numpy())
    assert not np.allclose(linear, cosine)
    assert not np.allclose(pts, e.artist.get_offsets())
    e.dropdown.value = "linear"


def test_digits_explorer_updates_image():
    e = NoisingExplorer("digits", n=4)
    a = e.artist.get_array().copy()
    e.slider.value = 400
    assert not np.allclose(a, e.artist.get_array())
    assert len(e.latencies) >= 2


def test_strips_are_figures(points_explorer):
    import matplotlib.pyplot as plt

    fig = points_explorer.strip([0, 500, 999])
    assert len(fig.axes) == 3
    plt.close(fig)


def test_trajectory_player_frames_and_labels():
    traj = [torch.full((10, 2), float(i)) for i in range(301)]
    p = TrajectoryPlayer(traj, max_frames=50)
    assert len(p.frames) <= 50 and p.labels[0] == 300 and p.labels[-1] == 0
    assert torch.equal(p.frames[-1], traj[-1])
    before = p.image.value
    p.slider.value = p.slider.max
    assert p.image.value != before
    np.testing.assert_allclose(p.artist.get_offsets(), traj[-1].numpy())
    import matplotlib.pyplot as plt

    fig = p.strip(labels=[300, 100, 0])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "t = 300" and titles[2] == "t = 0"
    middle = int(titles[1].split("= ")[1])
    assert abs(middle - 100) == min(abs(lab - 100) for lab in p.labels)
    plt.close(fig)


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "audio"}, "kind"),
    ({"schedule": "quadratic"}, "schedule"),
    ({"dataset": "circles"}, "name"),
])
def test_explorer_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoisingExplorer(**kwargs)


def test_player_bad_input():
    with pytest.raises(ValueError, match="trajectory"):
        TrajectoryPlayer([torch.zeros(3, 2)])
    with pytest.raises(ValueError, match="timesteps"):
        TrajectoryPlayer([torch.zeros(3, 2)] * 3, timesteps=[1, 0])
