"""Interactive explorers. Everything heavy is computed once; a slider callback only updates the
artists' data, draws the figure on an Agg canvas and sends the PNG to an ``ipywidgets.Image``.

- ``NoisingExplorer``: points or digits; slide t, pick a schedule; x_t = add_noise(x_0, eps, t)
  with one fixed eps, beside the abar_t and SNR curves with a marker at t.
- ``TrajectoryPlayer``: a Play button and a slider over a stored reverse trajectory.

Each has ``strip(...)``, a static matplotlib figure of a few frames, and ``flipbook(...)``, its frames
precomputed behind a slider that moves without a kernel (``flipbook.Flipbook``), for readers on the web.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from ..._checks import check_choice, check_int
from ...processes.gaussian import GaussianDiffusion
from ...schedules import BETA_SCHEDULES
from ..plotting import (
    CORAL,
    GREY,
    INK,
    SCHEDULE_COLORS,
    digit_mosaic,
    figure_png,
    frames_strip,
    plot_digits,
    plot_points,
    style_axes,
)
from .flipbook import FRAME_COLORS, Flipbook, frame_grid

KINDS = ("points", "digits")


def agg_figure(figsize):
    """A figure on its own Agg canvas (never shown by pyplot, so nothing is displayed twice)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=80)
    FigureCanvasAgg(fig)
    return fig


class PNGWidget:
    """Shared plumbing: a figure rendered into an Image widget, and the timing of each redraw."""

    def _init_image(self):
        import ipywidgets as W

        self.image = W.Image(format="png", layout=W.Layout(width="auto", max_width="100%"))
        self.latencies: list[float] = []

    def _redraw(self, started: float | None = None):
        started = time.perf_counter() if started is None else started
        self.image.value = figure_png(self.fig)
        self.latencies.append(time.perf_counter() - started)

    def _frame_pngs(self, keys) -> list[bytes]:
        """The picture at each key of ``_draw`` (a timestep, a frame index) as a flipbook frame; afterwards the
        artists are set back to the slider's value, so the live picture is as it was."""
        frames = []
        for key in keys:
            self._draw(key)
            frames.append(figure_png(self.fig, colors=FRAME_COLORS))
        self._draw(self.slider.value)
        return frames

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class NoisingExplorer(PNGWidget):
    """Watch q(x_t | x_0) blur points or digits as t grows.

    ``kind`` is "points" (``dataset`` one of diffnlp.data.toy2d's clouds) or "digits".
    """

    def __init__(self, kind: str = "points", dataset: str = "moons", schedule: str = "linear",
                 num_train_timesteps: int = 1000, n: int | None = None, seed: int = 0):
        import ipywidgets as W

        self.kind = check_choice("kind", kind, KINDS)
        check_choice("schedule", schedule, BETA_SCHEDULES)
        self.T = check_int("num_train_timesteps", num_train_timesteps, low=2)
        self.processes = {s: GaussianDiffusion(self.T, s) for s in BETA_SCHEDULES}
        g = torch.Generator().manual_seed(seed)
        if kind == "points":
            from ...data.toy2d import sample_points

            self.x0 = sample_points(dataset, n or 1500, seed=seed)
        else:
            from ...data.digits import load_digits

            images, _ = load_digits("test", seed=0)
            self.x0 = images[torch.randperm(len(images), generator=g)[: n or 8]]
        self.noise = torch.randn(self.x0.shape, generator=g)  # one fixed eps: only t moves

        self.fig = agg_figure((9.0, 3.4))
        ax_x, ax_c = self.fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.35]})
        if kind == "points":
            self.artist = plot_points(ax_x, self.x0, size=4)
        else:
            self.artist = plot_digits(ax_x, self.x0, ncols=4)
        self.ax_x = ax_x
        steps = np.arange(self.T)
        self.abar_line, = ax_c.plot(steps, steps * 0.0, color=INK, lw=2, label=r"$\bar\alpha_t$ (signal kept)")
        style_axes(ax_c, None, "timestep t", r"$\bar\alpha_t$")
        ax_c.set_ylim(-0.02, 1.02)
        ax_snr = ax_c.twinx()
        self.snr_line, = ax_snr.plot(steps, steps * 0.0 + 1, color=CORAL, lw=1.5, ls="--", label="SNR (log scale)")
        ax_snr.set_yscale("log")
        ax_snr.set_ylim(1e-5, 1e4)
        ax_snr.set_ylabel("SNR = " + r"$\bar\alpha_t / (1-\bar\alpha_t)$")
        self.marker_line = ax_c.axvline(0, color=GREY, lw=1)
        self.marker_dot, = ax_c.plot([0], [1], "o", color=GREY)
        lines = [self.abar_line, self.snr_line]
        ax_c.legend(lines, [ln.get_label() for ln in lines], loc="upper right", frameon=False, fontsize=8)
        self.fig.tight_layout()

        self._init_image()
        self.slider = W.IntSlider(value=0, min=0, max=self.T - 1, step=1, description="t",
                                  continuous_update=True, layout=W.Layout(width="420px"))
        self.dropdown = W.Dropdown(options=list(BETA_SCHEDULES), value=schedule, description="schedule")
        self.readout = W.HTML()
        self.slider.observe(self._on_change, names="value")
        self.dropdown.observe(self._on_schedule, names="value")
        self.widget = W.VBox([W.HBox([self.slider, self.dropdown]), self.readout, self.image])
        self.widget.add_class("diffnlp-noising-explorer")
        self._set_curves()
        self._update()

    # -- state
    @property
    def diffusion(self) -> GaussianDiffusion:
        """The ``GaussianDiffusion`` of the chosen schedule."""
        return self.processes[self.dropdown.value]

    def x_t(self, t: int | None = None) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps for the current schedule and the fixed eps."""
        t = self.slider.value if t is None else t
        return self.diffusion.add_noise(self.x0, self.noise, t)

    # -- callbacks
    def _set_curves(self):
        d = self.diffusion
        self.abar_line.set_ydata(d.alphas_cumprod.numpy())
        self.snr_line.set_ydata(d.snr.clamp(1e-6, 1e6).numpy())
        self.abar_line.set_color(SCHEDULE_COLORS[d.beta_schedule])

    def _draw(self, t: int) -> float:
        """Set the artists for timestep t (no rendering); returns abar_t."""
        x = self.x_t(t)
        if self.kind == "points":
            self.artist.set_offsets(x.numpy())
        else:
            self.artist.set_data(digit_mosaic(x, ncols=4))
        abar = float(self.diffusion.alphas_cumprod[t])
        self.marker_line.set_xdata([t, t])
        self.marker_dot.set_data([t], [abar])
        self.ax_x.set_title(f"$x_t$ at t = {t}", fontsize=10)
        return abar

    def _update(self, started: float | None = None):
        abar = self._draw(self.slider.value)
        self.readout.value = (f"<code>abar_t = {abar:.4f}</code> &nbsp; signal scale sqrt(abar_t) = {abar ** 0.5:.3f}"
                              f" &nbsp; noise scale sqrt(1-abar_t) = {(1 - abar) ** 0.5:.3f}")
        self._redraw(started)

    def _on_change(self, change):
        self._update(time.perf_counter())

    def _on_schedule(self, change):
        started = time.perf_counter()
        self._set_curves()
        self._update(started)

    def flipbook(self, num_frames: int = 24) -> Flipbook:
        """The explorer as a ``Flipbook`` (no kernel needed): x_t and the curves at ``num_frames`` timesteps
        under the current schedule, denser at small t, where the picture changes fastest."""
        timesteps = frame_grid(self.T, num_frames)
        frames = self._frame_pngs(timesteps)
        shown = timesteps if len(timesteps) <= 5 else timesteps[:4] + ["...", timesteps[-1]]
        return Flipbook(frames, caption=f"x_t under the {self.dropdown.value} schedule at t = "
                                        f"{', '.join(map(str, shown))}.")

    def strip(self, timesteps: Sequence[int] = (0, 100, 250, 500, 999)):
        """A static row of x_t at a few timesteps, under the current schedule."""
        frames = [self.x_t(int(t)) for t in timesteps]
        titles = [f"t = {int(t)}" for t in timesteps]
        return frames_strip(frames, titles, kind=self.kind)


class TrajectoryPlayer(PNGWidget):
    """Play a stored reverse trajectory [x_T, ..., x_0] (a list of tensors, as ``sample`` yields).

    ``timesteps`` labels each frame (default: the frame index counted down). At most
    ``max_frames`` frames are kept, always including the first and the last, spaced more densely
    towards the end, where the structure appears.
    """

    def __init__(self, trajectory: Sequence[torch.Tensor], kind: str = "points",
                 timesteps: Sequence[int] | None = None, max_frames: int = 100, interval_ms: int = 80,
                 reference: torch.Tensor | None = None):
        import ipywidgets as W

        self.kind = check_choice("kind", kind, KINDS)
        if not isinstance(trajectory, (list, tuple)) or len(trajectory) < 2:
            raise ValueError(f"trajectory must be a list of at least 2 tensors, got {type(trajectory).__name__}"
                             f" of length {len(trajectory) if hasattr(trajectory, '__len__') else '?'}")
        if timesteps is not None and len(timesteps) != len(trajectory):
            raise ValueError(f"timesteps has {len(timesteps)} entries but the trajectory has {len(trajectory)} frames")
        u = np.linspace(0, 1, min(max_frames, len(trajectory)))
        keep = np.unique(((len(trajectory) - 1) * (1 - (1 - u) ** 2)).round().astype(int))
        self.frames = [trajectory[i].detach().float().cpu() for i in keep]
        labels = list(timesteps) if timesteps is not None else list(range(len(trajectory) - 1, -1, -1))
        self.labels = [labels[i] for i in keep]

        self.fig = agg_figure((4.2, 4.2) if kind == "points" else (4.6, 4.2))
        ax = self.fig.subplots()
        if reference is not None and kind == "points":
            plot_points(ax, reference, color="#bbbbbb", size=2)
        self.artist = plot_points(ax, self.frames[0], color=CORAL, size=3) if kind == "points" else \
            plot_digits(ax, self.frames[0], ncols=int(np.ceil(np.sqrt(len(self.frames[0])))))
        self.ax = ax
        self.fig.tight_layout()

        self._init_image()
        n = len(self.frames) - 1
        self.play = W.Play(value=0, min=0, max=n, step=1, interval=interval_ms, description="play")
        self.slider = W.IntSlider(value=0, min=0, max=n, step=1, description="frame")
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_change, names="value")
        self.widget = W.VBox([W.HBox([self.play, self.slider]), self.image])
        self.widget.add_class("diffnlp-trajectory-player")
        self._update()

    def _draw(self, i: int):
        """Set the artists for kept frame i (no rendering)."""
        x = self.frames[i]
        if self.kind == "points":
            self.artist.set_offsets(x.numpy())
        else:
            n = x.shape[0]
            self.artist.set_data(digit_mosaic(x, ncols=int(np.ceil(np.sqrt(n)))))
        self.ax.set_title(f"reverse process: step {i} of {len(self.frames) - 1} (t = {self.labels[i]})", fontsize=10)

    def _update(self, started: float | None = None):
        self._draw(self.slider.value)
        self._redraw(started)

    def _on_change(self, change):
        self._update(time.perf_counter())

    def flipbook(self, num_frames: int = 30) -> Flipbook:
        """The player as a ``Flipbook`` (no kernel needed): ``num_frames`` of the kept frames, evenly spaced."""
        frames = self._frame_pngs(frame_grid(len(self.frames), num_frames, power=1.0))
        return Flipbook(frames, caption=f"the reverse process from t = {self.labels[0]} to t = {self.labels[-1]}.",
                        interval_ms=120)

    def strip(self, labels: Sequence[int] | None = None, n: int = 6):
        """A static row of frames: those whose label (t) is nearest to each of ``labels``, or
        ``n`` evenly spaced kept frames."""
        if labels is None:
            idx = np.unique(np.linspace(0, len(self.frames) - 1, n).round().astype(int))
        else:
            have = np.asarray(self.labels)
            idx = [int(np.abs(have - lab).argmin()) for lab in labels]
        return frames_strip([self.frames[i] for i in idx], [f"t = {self.labels[i]}" for i in idx],
                            kind=self.kind, color=CORAL)
