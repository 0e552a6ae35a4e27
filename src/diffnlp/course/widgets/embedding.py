"""The widget of lesson 03: a sentence's word vectors dissolving into Gaussian noise.

``EmbeddingNoisingExplorer``: type a sentence (or draw a story) and slide the timestep t. The plot is a
2-D projection (PCA) of the vocabulary's word vectors, with the sentence's noisy vectors
x_t = sqrt(abar_t) (EMB(w) + sigma_0 eps_0) + sqrt(1 - abar_t) eps drawn over it (fixed draws of eps_0
and eps, so only t moves), and the
model's prediction of x_0 beside them. Under the plot, two decodings by nearest word vector: of the
rescaled x_t / sqrt(abar_t) (what rounding alone reads), and of the model's x_0 prediction. The
clamping toggle snaps the prediction onto the nearest word vectors, as the clamping trick does at
every sampling step.
"""

from __future__ import annotations

import html
import time

import numpy as np
import torch

from ..._checks import check_int
from ...processes.embedding import EmbeddingDiffusion, clamp_to_words, round_to_words, word_vectors
from ..plotting import CORAL, GREY, INK, canvas_png, style_axes
from .chips import CLEAN_BG, chip
from .flipbook import FRAME_COLORS, Flipbook, frame_grid
from .points import PNGWidget, agg_figure

BLUE = "#3b6ea8"


def pca_2d(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the top-2 principal directions (d, 2) of a set of vectors (N, d)."""
    v = vectors.detach().cpu().double()
    mean = v.mean(0)
    _, _, vt = torch.linalg.svd(v - mean, full_matrices=False)
    return mean, vt[:2].T


class EmbeddingNoisingExplorer(PNGWidget):
    """Slide t and watch a sentence's word vectors become noise, and what the nearest words become.

    ``model`` and ``process``: a Diffusion-LM (an ``EmbeddingDenoiser`` and its ``EmbeddingDiffusion``;
    default: the shipped "stories-diffusion-lm" checkpoint); ``text``: a sentence in its vocabulary
    (default: a story drawn from the grammar).
    """

    def __init__(self, model=None, process: EmbeddingDiffusion | None = None, tokenizer=None, text: str | None = None,
                 t: int = 200, clamp: bool = False, seed: int = 0):
        import ipywidgets as W

        from ...data.stories import StoryGrammar

        self.grammar = StoryGrammar()
        if model is None:
            from ...training.pretrained import load_pretrained

            model, process, tokenizer, _ = load_pretrained("stories-diffusion-lm")
        if process is None or not isinstance(process, EmbeddingDiffusion):
            raise TypeError(f"process must be the model's EmbeddingDiffusion, got {type(process).__name__}")
        self.model, self.process = model.eval(), process
        self.tokenizer = tokenizer or self.grammar.tokenizer()
        emb = word_vectors(model).detach().cpu()
        if emb.shape[0] != self.tokenizer.vocab_size:
            raise ValueError(f"the model has {emb.shape[0]} word vectors but the tokenizer {self.tokenizer.vocab_size} "
                             f"words")
        self.T = process.num_train_timesteps
        t = check_int("t", t, 0, self.T - 1)
        if not isinstance(clamp, bool):
            raise TypeError(f"clamp must be a bool, got {type(clamp).__name__} {clamp!r}")
        self.seed = check_int("seed", seed)
        self.latencies: list[float] = []
        self.mean, self.axes = pca_2d(emb)
        self.vocab_2d = self.project(emb)
        if text is None:
            text = self.grammar.sample(1, seed=self.seed)[0]
        self._set_text(text)                                     # clear errors for bad text

        self.fig = agg_figure((6.4, 4.6))
        ax = self.fig.subplots()
        self.ax = ax
        ax.scatter(self.vocab_2d[:, 0], self.vocab_2d[:, 1], s=9, color=GREY, alpha=0.45, label="every word vector")
        self.clean = ax.scatter([], [], s=60, facecolors="none", edgecolors=INK, lw=1.2, label="the sentence's words")
        self.noisy = ax.scatter([], [], s=22, color=CORAL, label=r"noisy $x_t$", zorder=3)
        self.pred = ax.scatter([], [], s=40, marker="x", color=BLUE, lw=1.6, label=r"model's $\hat x_0$", zorder=4)
        self.labels = []
        self._labelled = None
        lim = float(np.abs(self.vocab_2d).max()) * 1.25
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        style_axes(ax, None, "principal direction 1", "principal direction 2")
        ax.legend(loc="upper right", fontsize=7, frameon=False)
        self.title = ax.set_title("t = 999   abar_t = 0.000   noise std = 1.00", fontsize=10)
        self.fig.tight_layout()
        for artist in (self.noisy, self.pred, self.title):    # drawn over a cached background (blitting)
            artist.set_animated(True)
        self._background = None

        self._init_image()
        self.text = W.Text(value=text, description="sentence", layout=W.Layout(width="95%"))
        self.new = W.Button(description="draw a story", icon="random")
        self.clamp = W.ToggleButton(value=clamp, description="clamp x̂0 to words", icon="magnet")
        self.slider = W.IntSlider(value=t, min=0, max=self.T - 1, step=1, description="t",
                                  continuous_update=True, layout=W.Layout(width="60%"))
        self.decoded = W.HTML()
        self.status = W.HTML()
        for control in (self.slider, self.clamp):
            control.observe(self._on_change, names="value")
        self.text.observe(self._on_text, names="value")
        self.new.on_click(self._on_new)
        self.widget = W.VBox([self.text, W.HBox([self.new, self.clamp]), self.slider, self.image, self.decoded,
                              self.status])
        self.widget.add_class("diffnlp-embedding-noising-explorer")
        self._update()

    # ----------------------------------------------------------------- the computation
    def project(self, x: torch.Tensor) -> np.ndarray:
        """Coordinates on the vocabulary's two principal directions: (..., d) -> (..., 2)."""
        return ((x.detach().cpu().double() - self.mean) @ self.axes).numpy()

    def _set_text(self, text: str):
        ids = self.tokenizer.encode(text)
        L = self.model.config.max_len if hasattr(self.model, "config") else len(ids)
        if len(ids) > L:
            raise ValueError(f"the sentence has {len(ids)} tokens; the model takes at most {L}")
        self.ids = torch.tensor(ids)
        self.x0 = self.process.embed(self.model, self.ids[None]).detach()[0].cpu()         # EMB(w), (n, d)

    def state(self, t: int | None = None, clamp: bool | None = None) -> dict:
        """x_t, the model's x_0 prediction (clamped or not) and both decodings at timestep t."""
        t = self.slider.value if t is None else check_int("t", t, 0, self.T - 1)
        clamp = self.clamp.value if clamp is None else clamp
        tt = torch.tensor([t])
        abar = float(self.process.gaussian.alphas_cumprod[t])
        with torch.no_grad():
            # the training forward process with the same draws every time (only t moves):
            # x_t = sqrt(abar_t) (EMB(w) + sigma_0 eps_0) + sqrt(1 - abar_t) eps
            gen = torch.Generator().manual_seed(self.seed)
            x_t = self.process.noisy_word_vectors(self.model, self.ids[None], tt, gen)              # (1, n, d)
            pred = self.model(x_t, tt.to(x_t.device))
            if clamp:
                pred = clamp_to_words(self.model, pred)
        return {"t": t, "abar": abar, "x_t": x_t[0].cpu(), "pred": pred[0].cpu(),
                "rounded": round_to_words(self.model, x_t[0] / abar ** 0.5).tolist(),
                "predicted": round_to_words(self.model, pred[0]).tolist()}

    def _row(self, label: str, ids: list[int]) -> str:
        chips = []
        for orig, now in zip(self.ids.tolist(), ids):
            word = self.tokenizer.vocab[now]
            same = now == orig
            chips.append(chip(word, CLEAN_BG if same else "#fbd3cb", INK if same else CORAL, bold=not same,
                               title="as written" if same else f"was {self.tokenizer.vocab[orig]!r}"))
        right = sum(a == b for a, b in zip(self.ids.tolist(), ids))
        return (f"<div style='margin:2px 0'><span style='font-family:sans-serif;font-size:12px;color:#555'>"
                f"{html.escape(label)} ({right}/{len(ids)} right)</span><br>{''.join(chips)}</div>")

    # ----------------------------------------------------------------- drawing
    def _draw(self, s: dict) -> str:
        """Set the artists for the state ``s`` (``state(t)``; no rendering); returns the two decodings as HTML."""
        if self._labelled is not self.ids:                       # the sentence changed: its words move
            clean = self.project(self.x0)
            self.clean.set_offsets(clean)
            for a in self.labels:
                a.remove()
            ids = self.ids.tolist()
            self.labels = [self.ax.annotate(self.tokenizer.vocab[i], clean[k], fontsize=7, color=INK,
                                            xytext=(3, 3), textcoords="offset points")
                           for k, i in enumerate(ids) if ids.index(i) == k]
            self._labelled = self.ids
            self._background = None                              # the static picture changed
        self.noisy.set_offsets(self.project(s["x_t"]))
        self.pred.set_offsets(self.project(s["pred"]))
        self.title.set_text(f"t = {s['t']}   abar_t = {s['abar']:.3f}   noise std = {(1 - s['abar']) ** 0.5:.2f}")
        what = "clamped to the nearest words" if self.clamp.value else "as predicted"
        return (self._row("nearest word to x_t / sqrt(abar_t)", s["rounded"])
                + self._row(f"nearest word to the model's x̂0 ({what})", s["predicted"]))

    def _blit(self):
        """Blit: the static picture (word vectors, axes, legend, labels) is drawn once and cached; each
        call restores it and draws only the noisy vectors, the predictions and the title. Returns the canvas."""
        canvas = self.fig.canvas
        if self._background is None:
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        canvas.restore_region(self._background)
        self.ax.draw_artist(self.noisy)
        self.ax.draw_artist(self.pred)
        self.fig.draw_artist(self.title)
        return canvas

    def _update(self, started: float | None = None):
        started = time.perf_counter() if started is None else started
        self.decoded.value = self._draw(self.state())
        self._redraw(started)

    def _redraw(self, started: float | None = None):
        started = time.perf_counter() if started is None else started
        self.image.value = canvas_png(self._blit())
        self.latencies.append(time.perf_counter() - started)

    def flipbook(self, num_frames: int = 24) -> Flipbook:
        """The explorer as a ``Flipbook`` (no kernel needed): the picture and both decodings at ``num_frames``
        timesteps, denser at small t, with the clamping toggle as it is now."""
        frames = []
        for t in frame_grid(self.T, num_frames):
            rows = self._draw(self.state(t))
            frames.append((canvas_png(self._blit(), colors=FRAME_COLORS), rows))
        self._draw(self.state())                                 # the live picture's artists, as they were
        clamped = "clamped to the nearest words" if self.clamp.value else "not clamped"
        return Flipbook(frames, caption=f"t from 0 to {self.T - 1}, the model's x̂0 {clamped}.")

    def _on_change(self, change):
        self._update(time.perf_counter())

    def _on_text(self, change):
        try:
            self._set_text(change["new"])
        except (TypeError, ValueError) as exc:
            self.status.value = f"<span style='color:{CORAL}'>{html.escape(str(exc))}</span>"
            return
        self.status.value = ""
        self._update(time.perf_counter())

    def _on_new(self, _button):
        self.seed += 1
        self.text.value = self.grammar.sample(1, seed=self.seed)[0]

    # ----------------------------------------------------------------- for readers on the web
    def strip(self, timesteps=(0, 100, 300, 600, 999), clamp: bool = False):
        """A static figure for readers without a kernel: at a few timesteps, the projection (every word
        vector in grey, the sentence's words as open circles, the noisy x_t in coral, the model's x_0
        prediction as blue crosses) and, under each panel, the two nearest-word decodings: of
        x_t / sqrt(abar_t) (rounding alone) and of the model's prediction. Words decoded wrongly are coral."""
        import matplotlib.pyplot as plt

        words = [self.tokenizer.vocab[i] for i in self.ids.tolist()]
        fig, axes = plt.subplots(1, len(timesteps), figsize=(2.9 * len(timesteps), 5.6), squeeze=False)
        axes = axes[0]
        clean = self.project(self.x0)
        lim = float(np.abs(self.vocab_2d).max()) * 1.25
        for k, (ax, t) in enumerate(zip(axes, timesteps)):
            s = self.state(int(t), clamp=clamp)
            ax.scatter(self.vocab_2d[:, 0], self.vocab_2d[:, 1], s=5, color=GREY, alpha=0.4)
            ax.scatter(clean[:, 0], clean[:, 1], s=30, facecolors="none", edgecolors=INK, lw=1,
                       label="the sentence's words")
            noisy, pred = self.project(s["x_t"]), self.project(s["pred"])
            ax.scatter(noisy[:, 0], noisy[:, 1], s=12, color=CORAL, label=r"noisy $x_t$")
            ax.scatter(pred[:, 0], pred[:, 1], s=30, marker="x", color=BLUE, lw=1.3, label=r"model's $\hat x_0$")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            title = f"t = {t}   $\\bar\\alpha_t$ = {s['abar']:.3f}"
            style_axes(ax, title, "PC 1", "PC 2" if k == 0 else None)
            if k == 0:
                ax.legend(loc="upper left", fontsize=6, frameon=False)
            y = -0.2
            for label, decoded in (("nearest word to x_t/sqrt(abar_t)", s["rounded"]),
                                   ("nearest word to the model's x̂0" + (" (clamped)" if clamp else ""),
                                    s["predicted"])):
                right = sum(a == b for a, b in zip(self.ids.tolist(), decoded))
                ax.text(0, y, f"{label}: {right}/{len(words)} right", transform=ax.transAxes, fontsize=6.5,
                        color=INK, va="top", weight="bold")
                y -= 0.055
                y = self._strip_words(ax, [self.tokenizer.vocab[i] for i in decoded], words, y)
                y -= 0.03
        fig.tight_layout()
        fig.subplots_adjust(bottom=0.45)
        return fig

    @staticmethod
    def _strip_words(ax, decoded: list[str], truth: list[str], y: float, width: int = 34) -> float:
        """Write a decoded sentence under a panel, wrapped, in a monospace font: the words that match the
        sentence in ink and the others in coral (two overlaid layers whose characters line up)."""
        line_height = 0.05
        lines, cur, n = [], [], 0
        for d, w in zip(decoded, truth):
            if cur and n + 1 + len(d) > width:
                lines.append(cur)
                cur, n = [], 0
            n += len(d) + (1 if cur else 0)
            cur.append((d, d == w))
        if cur:
            lines.append(cur)
        for line in lines:
            ok = " ".join(d if good else " " * len(d) for d, good in line)
            bad = " ".join(" " * len(d) if good else d for d, good in line)
            for text, color in ((ok, INK), (bad, CORAL)):
                ax.text(0, y, text, transform=ax.transAxes, fontsize=6.5, family="monospace", color=color,
                        va="top")
            y -= line_height
        return y

    def png(self) -> bytes:
        """The widget's current picture as PNG bytes."""
        return self.image.value
