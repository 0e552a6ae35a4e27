"""Flipbooks: each explorer's frames, precomputed, behind a slider and Play linked in the browser.

A flipbook frame must show what the live explorer shows at the same t (or step), and building one must leave
the live explorer as it was.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from diffnlp.course.widgets.flipbook import FLIPBOOK_CLASS, Flipbook, frame_grid


def _links(flipbook: Flipbook) -> set[tuple]:
    """(source, source attribute, target, target attribute) of each jslink a flipbook holds."""
    return {(link.source[0], link.source[1], link.target[0], link.target[1]) for link in flipbook.links}


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(float)


def test_frame_grid_keeps_ends_and_is_denser_at_the_start():
    grid = frame_grid(1000, 24)
    assert grid[0] == 0 and grid[-1] == 999 and grid == sorted(set(grid))
    gaps = np.diff(grid)
    assert gaps[0] < gaps[-1]
    even = frame_grid(1000, 11, power=1.0)
    assert len(even) == 11 and np.allclose(np.diff(even), 99.9, atol=1)
    assert frame_grid(3, 10) == [0, 1, 2]                                   # every frame when there are few
    assert frame_grid(3, 3) == [0, 1, 2] and frame_grid(1, 5) == [0]
    with pytest.raises(ValueError, match="power"):
        frame_grid(10, 5, power=0.0)


def test_flipbook_links_play_slider_and_stack_in_the_browser():
    fb = Flipbook([b"\x89PNG-a", "<b>two</b>", (b"\x89PNG-c", "<i>three</i>")], caption="test")
    assert len(fb) == 3 and fb.slider.max == fb.play.max == 2 and fb.stack.selected_index == 0
    assert _links(fb) == {(fb.play, "value", fb.slider, "value"), (fb.slider, "value", fb.stack, "selected_index")}
    assert all(type(link).__name__ == "Link" for link in fb.links)                     # jslink: in the browser
    assert FLIPBOOK_CLASS in fb.widget._dom_classes
    assert [f"diffnlp-frame-{k}" in f._dom_classes for k, f in enumerate(fb.frames)] == [True] * 3
    assert fb.frames[0].value == b"\x89PNG-a" and fb.frames[1].value == "<b>two</b>"
    assert [type(c).__name__ for c in fb.frames[2].children] == ["Image", "HTML"]


@pytest.mark.parametrize("frames, match", [([b"x"], "at least 2"), ("ab", "must be a list"),
                                           ([b"x", 3], r"frames\[1\] must be PNG bytes"),
                                           ([b"x", (b"y", 2)], r"frames\[1\]")])
def test_flipbook_rejects_bad_frames(frames, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Flipbook(frames)


def test_flipbook_rejects_bad_caption_and_interval():
    with pytest.raises(TypeError, match="caption"):
        Flipbook([b"a", b"b"], caption=3)
    with pytest.raises(ValueError, match="interval_ms"):
        Flipbook([b"a", b"b"], interval_ms=0)


@pytest.mark.parametrize("kind", ["points", "digits"])
def test_noising_flipbook_frames_are_the_explorers_pictures(kind):
    from diffnlp.course.widgets.points import NoisingExplorer

    explorer = NoisingExplorer(kind, n=200 if kind == "points" else 4)
    explorer.slider.value = 40
    before = (explorer.image.value, len(explorer.latencies))
    fb = explorer.flipbook(num_frames=8)
    assert (explorer.image.value, len(explorer.latencies)) == before          # the live explorer is untouched,
    explorer._redraw()
    assert np.array_equal(_pixels(explorer.image.value), _pixels(before[0]))  # and so are its artists
    grid = frame_grid(explorer.T, 8)
    assert len(fb) == len(grid)
    diffs = []
    for k in (0, 3, len(grid) - 1):
        explorer.slider.value = grid[k]                                       # the live picture at that t
        diffs.append(np.abs(_pixels(fb.frames[k].value) - _pixels(explorer.image.value)).mean())
        assert diffs[-1] < 2.0, f"frame {k} differs from the explorer at t = {grid[k]} by {diffs[-1]:.2f}"
    other = np.abs(_pixels(fb.frames[0].value) - _pixels(fb.frames[-1].value)).mean()
    assert other > 3 * max(diffs)                                             # frames differ far more


def test_trajectory_flipbook_frames_are_the_players_pictures():
    from diffnlp.course.widgets.points import TrajectoryPlayer

    g = torch.Generator().manual_seed(0)
    traj = [torch.randn(300, 2, generator=g) * (1 - i / 40) for i in range(41)]
    player = TrajectoryPlayer(traj)
    player.slider.value = 7
    before = player.image.value
    fb = player.flipbook(num_frames=6)
    player._redraw()
    assert np.array_equal(_pixels(player.image.value), _pixels(before))      # the live picture is restored
    keep = frame_grid(len(player.frames), 6, power=1.0)
    assert len(fb) == len(keep)
    player.slider.value = keep[2]
    assert np.abs(_pixels(fb.frames[2].value) - _pixels(player.image.value)).mean() < 2.0


def test_text_flipbook_shows_both_processes_at_each_time():
    from diffnlp.course.widgets.text import TextNoisingExplorer

    explorer = TextNoisingExplorer(t=0.3)
    fb = explorer.flipbook(num_frames=5)
    assert len(fb) == 5 and explorer.slider.value == 0.3
    for frame, t in zip(fb.frames, np.linspace(0, 1, 5)):
        for process in ("mask", "uniform"):
            assert explorer.render(float(t), process) in frame.value
            assert explorer.describe(float(t), process) in frame.value


def test_unmasking_flipbook_has_every_step_of_the_players_story():
    from diffnlp.course.widgets.text import UnmaskingPlayer
    from diffnlp.training.pretrained import load_pretrained

    model, process, tok, _ = load_pretrained("stories-mdlm")
    player = UnmaskingPlayer(model, process, tok, num_steps=8, seed=1)
    fb = player.flipbook()
    assert len(fb) == len(player.states) == 9
    assert [f.value for f in fb.frames] == [player.frame_html(i) for i in range(9)]
    player.slider.value = 5
    assert player.html.value == fb.frames[5].value                           # the live view draws the same


def test_embedding_flipbook_frames_are_the_explorers_picture_and_decodings():
    from diffnlp.course.widgets.embedding import EmbeddingNoisingExplorer

    explorer = EmbeddingNoisingExplorer(t=100)
    before = explorer.image.value
    fb = explorer.flipbook(num_frames=5)
    assert explorer.image.value == before and len(fb) == 5
    explorer._redraw()
    assert np.array_equal(_pixels(explorer.image.value), _pixels(before))    # the live picture is restored
    grid = frame_grid(explorer.T, 5)
    explorer.slider.value = grid[2]
    picture, rows = fb.frames[2].children
    assert rows.value == explorer.decoded.value
    assert np.abs(_pixels(picture.value) - _pixels(explorer.image.value)).mean() < 2.0
