"""Flipbooks: an explorer's pictures computed once, so that a slider and a Play button move them with no
kernel behind the page.

A ``Flipbook`` is an ``ipywidgets.Stack`` of precomputed frames (PNG pictures, HTML, or both), whose
``selected_index`` is ``jslink``-ed to an ``IntSlider``, itself linked to a ``Play``. The links run in the
browser, not in Python, so the same widget works in JupyterLab, in a saved notebook and on the course's
static website, where the live explorers (whose every frame is drawn by a Python callback) cannot run.

Every explorer and player has a ``flipbook()`` method that returns one.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from ..._checks import check_float, check_int

FLIPBOOK_CLASS = "diffnlp-flipbook"  # the browser test of the website finds every flipbook by this class
FRAME_CLASS = "diffnlp-frame"        # frame k carries the class diffnlp-frame-k
FRAME_COLORS = 128                   # a frame's PNG palette (plotting.canvas_png): every frame is stored


def frame_grid(num_total: int, num_frames: int, power: float = 2.0) -> list[int]:
    """``num_frames`` indices into 0..num_total-1, always the first and the last, spaced as u^power for u
    evenly spaced in [0, 1] (power 2: denser at the start, where a noising picture changes fastest;
    power 1: even). Fewer when indices coincide; all of them when ``num_frames >= num_total``."""
    num_total = check_int("num_total", num_total, low=1)
    num_frames = check_int("num_frames", num_frames, low=2)
    power = check_float("power", power, 0.1, 10.0)
    if num_frames >= num_total:
        return list(range(num_total))
    u = np.linspace(0.0, 1.0, num_frames)
    return np.unique(((num_total - 1) * u ** power).round().astype(int)).tolist()


class Flipbook:
    """Precomputed frames behind a slider and a Play button, linked in the browser (no kernel needed).

    ``frames``: a list of at least 2 frames, each PNG bytes (shown as an image), an HTML string, or a
    (PNG bytes, HTML string) pair (the picture above the HTML). ``caption``: one line above the controls.
    """

    def __init__(self, frames: Sequence, caption: str = "", interval_ms: int = 200, description: str = "frame"):
        import ipywidgets as W

        if not isinstance(frames, (list, tuple)) or len(frames) < 2:
            raise ValueError(f"frames must be a list of at least 2 frames, got {type(frames).__name__}"
                             f" of length {len(frames) if hasattr(frames, '__len__') else '?'}")
        if not isinstance(caption, str):
            raise TypeError(f"caption must be a str, got {type(caption).__name__} {caption!r}")
        interval_ms = check_int("interval_ms", interval_ms, low=10)
        self.frames = [self._frame_widget(k, f) for k, f in enumerate(frames)]
        for k, frame in enumerate(self.frames):                 # the browser test reads the frame shown
            frame.add_class(f"{FRAME_CLASS}-{k}")
        n = len(self.frames) - 1
        self.stack = W.Stack(self.frames, selected_index=0)
        self.play = W.Play(value=0, min=0, max=n, step=1, interval=interval_ms, description="play")
        self.slider = W.IntSlider(value=0, min=0, max=n, step=1, description=description,
                                  continuous_update=True, layout=W.Layout(width="420px"))
        self.links = (W.jslink((self.play, "value"), (self.slider, "value")),      # run in the browser
                      W.jslink((self.slider, "value"), (self.stack, "selected_index")))
        note = (f"<span style='font-size:12px;color:#555;line-height:1.4'><b>Flipbook</b> · {len(self.frames)} "
                f"precomputed frames, no kernel needed · {html.escape(caption)}</span>")
        self.caption = W.HTML(note)
        self.widget = W.VBox([self.caption, W.HBox([self.play, self.slider]), self.stack])
        self.widget.add_class(FLIPBOOK_CLASS)

    @staticmethod
    def _frame_widget(k: int, frame):
        import ipywidgets as W

        def image(png):
            return W.Image(value=png, format="png", layout=W.Layout(width="auto", max_width="100%"))

        if isinstance(frame, bytes):
            return image(frame)
        if isinstance(frame, str):
            return W.HTML(frame)
        if isinstance(frame, tuple) and len(frame) == 2 and isinstance(frame[0], bytes) and isinstance(frame[1], str):
            return W.VBox([image(frame[0]), W.HTML(frame[1])])
        got = (f"({', '.join(type(x).__name__ for x in frame)})" if isinstance(frame, tuple)
               else type(frame).__name__)
        raise TypeError(f"frames[{k}] must be PNG bytes, an HTML str or a (bytes, str) pair, got {got}")

    def __len__(self) -> int:
        return len(self.frames)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
