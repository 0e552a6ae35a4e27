"""Matplotlib helpers shared by the notebooks and the widgets: one look for the whole course."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from .._checks import check_int

# A quiet palette: data in ink blue, model samples in coral, markers in dark grey.
INK = "#2b4c7e"
CORAL = "#e0654f"
GREY = "#444444"
SCHEDULE_COLORS = {"linear": "#2b4c7e", "cosine": "#e0654f", "sqrt": "#5a9e6f"}
POINT_LIMITS = (-2.6, 2.6)


def style_axes(ax, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None):
    """Light grid, no top/right spines, optional labels."""
    ax.grid(True, alpha=0.25, linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    return ax


def _np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def plot_points(ax, points, color: str = INK, title: str | None = None, size: float = 3.0, limits=POINT_LIMITS):
    """Scatter a 2-D point cloud on fixed, square axes; returns the PathCollection."""
    p = _np(points)
    sc = ax.scatter(p[:, 0], p[:, 1], s=size, color=color, alpha=0.6, linewidths=0)
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    ax.set_aspect("equal")
    style_axes(ax, title, "$x_1$", "$x_2$")
    return sc


def digit_mosaic(images, ncols: int = 8, pad: int = 1) -> np.ndarray:
    """Tile (n, 1, 8, 8) images in [-1, 1] into one 2-D array (white padding) for imshow."""
    x = _np(images).reshape(-1, 8, 8).clip(-1, 1)
    n = x.shape[0]
    nrows = int(np.ceil(n / ncols))
    out = np.full((nrows * (8 + pad) + pad, ncols * (8 + pad) + pad), -1.0, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[pad + r * (8 + pad): pad + r * (8 + pad) + 8, pad + c * (8 + pad): pad + c * (8 + pad) + 8] = x[i]
    return out


def plot_digits(ax, images, ncols: int = 8, title: str | None = None):
    """Show digits as a mosaic (ink on white); returns the AxesImage."""
    im = ax.imshow(digit_mosaic(images, ncols), cmap="Greys", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return im


def plot_loss(ax, history: Sequence[float], window: int = 50, title: str = "training loss"):
    """Raw loss (faint) and its moving average."""
    h = np.asarray(history, dtype=np.float64)
    ax.plot(h, color=INK, alpha=0.25, linewidth=0.8, label="per step")
    if len(h) >= window:
        ma = np.convolve(h, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(h)), ma, color=INK, linewidth=1.8, label=f"mean of {window}")
    ax.set_yscale("log")
    ax.legend(frameon=False)
    return style_axes(ax, title, "step", "loss")


def frames_strip(frames: Sequence, titles: Sequence[str], kind: str = "points", color: str = INK,
                 figsize_per: float = 2.0):
    """A static row of frames (point clouds or digit batches): what a widget shows, for readers
    of the notebook on the web where widgets do not render."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(frames), figsize=(figsize_per * len(frames), figsize_per + 0.4))
    for ax, frame, title in zip(np.atleast_1d(axes), frames, titles):
        if kind == "points":
            plot_points(ax, frame, color=color, size=1.5)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.tick_params(labelsize=7)
        else:
            plot_digits(ax, frame, ncols=4, title=title)
    fig.tight_layout()
    return fig


def figure_png(fig, dpi: int | None = None, colors: int | None = None) -> bytes:
    """Render a figure to PNG bytes quickly: draw on the Agg canvas, then encode (``canvas_png``)."""
    fig.canvas.draw()
    return canvas_png(fig.canvas, colors)


def canvas_png(canvas, colors: int | None = None) -> bytes:
    """The PNG bytes of what an Agg canvas holds now (no redraw, for widgets that blit). ``colors=None``: full
    colour, fast encoding (a widget's redraw); an int: quantised to a palette of that many colours and
    compressed, a few times smaller (a flipbook stores every frame)."""
    from PIL import Image

    rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    buf = io.BytesIO()
    if colors is None:
        rgb.save(buf, format="png", compress_level=1)
    else:
        colors = check_int("colors", colors, 2, 256)
        rgb.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buf, format="png", optimize=True)
    return buf.getvalue()


def plot_transition_matrices(d3pm, steps: Sequence[int] | None = None, ax=None):
    """Heatmaps of a D3PM's cumulative transition matrices Qbar_t = Q_1 ... Q_t: row x0 of panel t
    is q(x_t | x_0). One panel per step (default t = 1, T // 2, T), one shared colour bar.

    ``ax``: None (a new figure) or as many axes as steps. Returns the figure.
    """
    import matplotlib.pyplot as plt

    from .._checks import check_int

    T, K = d3pm.num_timesteps, d3pm.vocab_size
    if steps is None:
        steps = sorted({1, max(T // 2, 1), T})
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or len(steps) == 0:
        raise ValueError(f"steps must be a non-empty sequence of ints in [0, {T}], got {steps!r}")
    steps = [check_int("steps", t, low=0, high=T) for t in steps]
    if ax is None:
        fig, axes = plt.subplots(1, len(steps), figsize=(2.6 * len(steps) + 1.0, 2.8), squeeze=False,
                                 layout="constrained")
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(ax).ravel())
        if len(axes) != len(steps):
            raise ValueError(f"ax must hold one axes per step ({len(steps)}), got {len(axes)}")
        fig = axes[0].figure
    labels = [str(i) for i in range(K)]
    if getattr(d3pm, "mask_id", None) is not None:
        labels[d3pm.mask_id] = "[M]"
    for a, t in zip(axes, steps):
        im = a.imshow(_np(d3pm.Q_bar(t)), cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        a.set_title(f"$\\bar{{Q}}_t$, t = {t}", fontsize=10)
        a.set_xlabel("to token $x_t$")
        a.set_ylabel("from token $x_0$")
        if K <= 16:
            a.set_xticks(range(K), labels, fontsize=7)
            a.set_yticks(range(K), labels, fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.85, label="probability")
    return fig


ROLE_COLORS = {"name": "#2b4c7e", "adjective": "#5a9e6f", "object": "#e0654f", "place": "#8e5ea2",
               "verb": "#d4a017", "time": "#3aa6b9", "feeling": "#c2477f", "other": "#444444"}


def plot_word_vectors(ax, coords, words: Sequence[str], roles: Sequence[str], label_every: int = 4,
                      title: str | None = None):
    """A 2-D map of word vectors (V, 2), coloured by each word's role, with every ``label_every``-th word
    of each role written next to its point."""
    xy = _np(coords)
    seen: dict[str, int] = {}
    for role, color in ROLE_COLORS.items():
        idx = [i for i, r in enumerate(roles) if r == role]
        if not idx:
            continue
        ax.scatter(xy[idx, 0], xy[idx, 1], s=16, color=color, label=role, alpha=0.85)
    for i, (w, r) in enumerate(zip(words, roles)):
        seen[r] = seen.get(r, -1) + 1
        if seen[r] % label_every == 0:
            ax.annotate(w, xy[i], fontsize=7, color=ROLE_COLORS.get(r, GREY), xytext=(2, 2),
                        textcoords="offset points")
    ax.legend(fontsize=7, frameon=False, loc="best", ncol=2)
    return style_axes(ax, title, "principal direction 1", "principal direction 2")


# The map of the field (lesson 06): each family of text diffusion, its methods, and the lesson of this course
# that covers each one ("" where the course only names it).
FIELD_MAP: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "embedding": ("continuous: Gaussian noise on word vectors",
                  [("Diffusion-LM", "03"), ("CDCD", ""), ("Plaid", "")]),
    "simplex": ("continuous: Gaussian noise on the simplex (logits)", [("SSD-LM", "")]),
    "mask": ("discrete: absorbing noise ([MASK])",
             [("D3PM-absorbing", "04"), ("MDLM", "04"), ("MD4", ""), ("LLaDA (8B)", "04, 05"),
              ("ReMDM", "05"), ("SEDD-absorb", "06"), ("DFM (mask path)", "06"), ("EB-sampler", "05"),
              ("Fast-dLLM", "05"), ("SDTT", "05")]),
    "uniform": ("discrete: uniform noise (random tokens)", [("D3PM-uniform", "04, 06"), ("SEDD-uniform", "")]),
    "block": ("block / semi-autoregressive: AR over blocks, diffusion within",
              [("BD3-LM", "05"), ("Gemini Diffusion*", "05"), ("Mercury*", "")]),
}


def plot_field_map(ax=None):
    """One figure of text diffusion's families (``FIELD_MAP``): continuous (word vectors, simplex) on the left,
    discrete (mask, uniform) on the right, block / semi-autoregressive models across the bottom. Each method
    carries the lesson that covers it ("L04"); * marks models whose design is public only in outline."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 5.2))
    boxes = {"embedding": (0.0, 0.40, 0.48, 0.44), "simplex": (0.0, 0.26, 0.48, 0.12),
             "mask": (0.52, 0.40, 0.48, 0.44), "uniform": (0.52, 0.26, 0.48, 0.12),
             "block": (0.0, 0.0, 1.0, 0.22)}
    colors = {"embedding": "#dbe4f0", "simplex": "#dbe4f0", "mask": "#f6ddd6", "uniform": "#f6ddd6",
              "block": "#e3efe6"}
    for key, (x, y, w, h) in boxes.items():
        title, methods = FIELD_MAP[key]
        ax.add_patch(plt.Rectangle((x, y), w, h, facecolor=colors[key], edgecolor=GREY, linewidth=0.8))
        ax.text(x + 0.01, y + h - 0.015, title, fontsize=8.5, weight="bold", va="top", color=GREY)
        per_row = 2 if key != "block" else 3
        for j, (name, lesson) in enumerate(methods):
            col, row = j % per_row, j // per_row
            label = name + (f"  (L{lesson})" if lesson else "")
            ax.text(x + 0.02 + col * (w - 0.02) / per_row, y + h - 0.08 - row * 0.075, label, fontsize=8.5,
                    va="top", color=INK if lesson else GREY, weight="bold" if lesson else "normal")
    ax.text(0.24, 0.88, "CONTINUOUS", ha="center", fontsize=10, weight="bold", color=INK)
    ax.text(0.76, 0.88, "DISCRETE", ha="center", fontsize=10, weight="bold", color=CORAL)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 0.93)
    ax.axis("off")
    ax.set_title("A map of text diffusion (bold: covered in this course, with its lesson; "
                 "*: design public only in outline)", fontsize=9)
    return ax
