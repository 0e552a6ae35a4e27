"""Widgets for text: tokens are shown as coloured chips in an ``ipywidgets.HTML`` (no figure to draw,
so a callback costs a few milliseconds).

- ``TextNoisingExplorer``: type a sentence or draw a story, slide t, and watch the absorbing-mask or
  the uniform-replacement process corrupt it. Each token has one fixed uniform u_i and one fixed random
  replacement r_i, so as t grows the corruption only accumulates: token i is noised when
  u_i < 1 - alpha(t).
- ``UnmaskingPlayer``: a story appearing step by step under a chosen sampler (ancestral, confidence,
  random, confidence in blocks), coloured by decision step (dark blue = early, light blue = late); just
  decided: a thick dark outline; taken back (remasking): white, struck through, dashed coral outline.
- ``decision_strip``: finished stories, each token coloured by its decision step, chosen tokens outlined.

Both have ``strip()``, a static matplotlib picture of a few frames, and ``flipbook()``, their frames
precomputed behind a slider that moves without a kernel, for readers on the web.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

import numpy as np
import torch

from ..._checks import check_choice, check_float, check_int
from ...base import decision_steps, set_steps
from ...processes.masked import MaskedDiffusion
from ...schedules import mask_alpha
from ..plotting import CORAL, INK
from .chips import CLEAN_BG, MARKS, MASK_BG, chip, is_dark, order_colors, token_strip
from .flipbook import Flipbook

PROCESSES = ("mask", "uniform")


class TextNoisingExplorer:
    """Slide t in [0, 1] and watch a sentence being noised.

    ``text``: a sentence in the tokenizer's vocabulary (default: a story drawn from ``grammar``);
    ``process``: "mask" (absorbing: a token becomes [MASK]) or "uniform" (a token is replaced by a
    random word); ``schedule``: the masking schedule alpha(t).
    """

    def __init__(self, grammar=None, text: str | None = None, process: str = "mask", schedule: str = "loglinear",
                 t: float = 0.5, seed: int = 0):
        import ipywidgets as W

        from ...data.stories import StoryGrammar

        self.grammar = grammar or StoryGrammar()
        self.tokenizer = self.grammar.tokenizer()
        check_choice("process", process, PROCESSES)
        self.schedule = check_choice("schedule", schedule, ("loglinear", "cosine"))
        t = check_float("t", t, 0.0, 1.0)
        self.seed = check_int("seed", seed)
        self.latencies: list[float] = []
        if text is None:
            text = self.grammar.sample(1, seed=self.seed)[0]
        self.ids = self.tokenizer.encode(text)                       # clear errors for bad text
        self._draw_noise()

        self.text = W.Text(value=text, description="sentence", layout=W.Layout(width="95%"))
        self.new = W.Button(description="draw a story", icon="random")
        self.process = W.ToggleButtons(options=[("absorbing [MASK]", "mask"), ("uniform replacement", "uniform")],
                                       value=process)
        self.slider = W.FloatSlider(value=t, min=0.0, max=1.0, step=0.01, description="t", readout_format=".2f",
                                    continuous_update=True, layout=W.Layout(width="60%"))
        self.html = W.HTML()
        self.status = W.HTML()
        self.slider.observe(self._on_change, names="value")
        self.process.observe(self._on_change, names="value")
        self.text.observe(self._on_text, names="value")
        self.new.on_click(self._on_new)
        self.widget = W.VBox([W.HBox([self.text]), W.HBox([self.new, self.process]), self.slider, self.html,
                              self.status])
        self.widget.add_class("diffnlp-text-noising-explorer")
        self._update()

    def _draw_noise(self):
        g = torch.Generator().manual_seed(self.seed)
        n = len(self.ids)
        self.u = torch.rand(n, generator=g)                                    # one uniform per token
        words = torch.arange(2, self.tokenizer.vocab_size)                    # never a special token
        self.replacement = words[torch.randint(0, len(words), (n,), generator=g)]

    def noised(self, t: float | None = None, process: str | None = None) -> list[int]:
        """The noised token ids at time t: token i is corrupted when u_i < 1 - alpha(t)."""
        t = self.slider.value if t is None else check_float("t", t, 0.0, 1.0)
        process = self.process.value if process is None else check_choice("process", process, PROCESSES)
        alpha = float(mask_alpha(self.schedule, torch.tensor(t, dtype=torch.float64)))
        hit = (self.u < 1 - alpha).tolist()
        other = self.tokenizer.mask_id if process == "mask" else None
        return [(other if other is not None else int(r)) if h else i
                for i, h, r in zip(self.ids, hit, self.replacement.tolist())]

    def render(self, t: float | None = None, process: str | None = None) -> str:
        """The noised sentence at time t as HTML chips (masked grey, replaced red, clean blue)."""
        noised = self.noised(t, process)
        chips = []
        for orig, now in zip(self.ids, noised):
            word = self.tokenizer.vocab[now]
            if now == orig:
                chips.append(chip(word, CLEAN_BG, INK, title="clean"))
            elif now == self.tokenizer.mask_id:
                chips.append(chip("[MASK]", MASK_BG, "#555", title=f"was {self.tokenizer.vocab[orig]!r}"))
            else:
                chips.append(chip(word, "#fbd3cb", CORAL, bold=True, title=f"was {self.tokenizer.vocab[orig]!r}"))
        return "<div style='line-height:2.0'>" + "".join(chips) + "</div>"

    def describe(self, t: float | None = None, process: str | None = None) -> str:
        """One line of HTML: t, alpha(t) and the share of tokens corrupted at time t."""
        t = self.slider.value if t is None else t
        alpha = float(mask_alpha(self.schedule, torch.tensor(t, dtype=torch.float64)))
        frac = sum(a != b for a, b in zip(self.noised(t, process), self.ids)) / len(self.ids)
        return (f"<span style='font-family:monospace'>t = {t:.2f} &nbsp; alpha(t) = {alpha:.3f} "
                f"(chance a token is clean) &nbsp; corrupted: {frac:.0%} of {len(self.ids)} tokens</span>")

    def _update(self, started: float | None = None):
        started = time.perf_counter() if started is None else started
        self.html.value = self.render()
        self.status.value = self.describe()
        self.latencies.append(time.perf_counter() - started)

    def _on_change(self, change):
        self._update(time.perf_counter())

    def _on_text(self, change):
        try:
            self.ids = self.tokenizer.encode(change["new"])
        except (TypeError, ValueError) as exc:
            self.status.value = f"<span style='color:{CORAL}'>{html.escape(str(exc))}</span>"
            return
        self._draw_noise()
        self._update(time.perf_counter())

    def _on_new(self, _=None):
        self.seed += 1
        self.text.value = self.grammar.sample(1, seed=self.seed)[0]      # triggers _on_text

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def flipbook(self, num_frames: int = 21) -> Flipbook:
        """The explorer as a ``Flipbook`` (no kernel needed): at ``num_frames`` evenly spaced times, the
        sentence under both processes (the same fixed u_i, so the same tokens are hit)."""
        times = np.linspace(0.0, 1.0, check_int("num_frames", num_frames, low=2)).tolist()
        names = {"mask": "absorbing [MASK]", "uniform": "uniform replacement"}
        return Flipbook(["".join(f"<div style='font-size:12px;color:#555;margin-top:4px'>{names[p]}: "
                                 f"{self.describe(t, p)}</div>{self.render(t, p)}" for p in PROCESSES) for t in times],
                        caption="t from 0 to 1 under both processes.", interval_ms=300, description="t step")

    def strip(self, times: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), process: str | None = None):
        """A static figure: the sentence at a few times, one row each."""
        rows = []
        for t in times:
            noised = self.noised(t, process)
            rows.append([(self.tokenizer.vocab[n], "clean" if n == o else ("mask" if n == self.tokenizer.mask_id
                                                                           else "replaced"))
                         for o, n in zip(self.ids, noised)])
        return token_strip(rows, [f"t = {t:.2f}" for t in times])


# name -> (strategy, block length, remasking eta)
STRATEGY_CHOICES = {"ancestral (MDLM)": ("ancestral", None, 0.0), "confidence (LLaDA)": ("confidence", None, 0.0),
                    "random order": ("random", None, 0.0), "confidence, blocks of 8": ("confidence", 8, 0.0),
                    "ancestral + remasking (ReMDM, eta = 0.1)": ("ancestral", None, 0.1),
                    "adaptive: threshold 0.9 (Fast-dLLM)": ("threshold", None, 0.0),      # the sampler's tau
                    "adaptive: entropy budget 1 nat (EB-sampler)": ("entropy", None, 0.0)}  # and gamma defaults
REMASKED_BG = "#ffffff"          # taken back: white, struck through, dashed coral outline (``MARKS["back"]``)


def order_legend(num_steps: int) -> list[tuple[str, str, str]]:
    """The key row of a decision-order strip: the palette from early to late, just decided, taken back, masked."""
    colors = order_colors(num_steps + 1)
    mid = colors[len(colors) // 2]
    return [("early", colors[1], ""), ("...", mid, ""), ("late", colors[-1], ""), ("just decided", mid, "new"),
            ("taken back", REMASKED_BG, "back"), ("[MASK]", MASK_BG, "")]


class UnmaskingPlayer:
    """Watch a masked diffusion model write a story: a Play button and a slider over the sampler's steps.

    Decided tokens are coloured by the step that decided them (one sequential palette, dark blue = early,
    light blue = late); the tokens revealed in the current step get a thick dark outline. With remasking
    (ReMDM) a decided token taken back shows its old word on white (``REMASKED_BG``), struck through, with a
    dashed coral outline. Choose the strategy and the number of steps; "new sample" draws another story.
    """

    def __init__(self, model, process: MaskedDiffusion, tokenizer, length: int = 32, num_steps: int = 32,
                 strategy: str = "confidence (LLaDA)", seed: int = 0, interval_ms: int = 250):
        import ipywidgets as W

        if not isinstance(process, MaskedDiffusion):
            raise TypeError(f"process must be a MaskedDiffusion, got {type(process).__name__}")
        check_choice("strategy", strategy, STRATEGY_CHOICES)
        self.model, self.process, self.tokenizer = model, process, tokenizer
        self.length = check_int("length", length, low=1)
        self.seed = check_int("seed", seed)
        self.latencies: list[float] = []
        self.strategy = W.Dropdown(options=list(STRATEGY_CHOICES), value=strategy, description="strategy")
        num_steps = check_int("num_steps", num_steps, low=1)
        if num_steps not in (4, 8, 16, 32, 64):
            raise ValueError(f"num_steps={num_steps} is not offered; choose one of 4, 8, 16, 32, 64")
        if self.length % 8:
            raise ValueError(f"length={self.length} must be a multiple of 8 (the player offers blocks of 8)")
        self.steps = W.Dropdown(options=[4, 8, 16, 32, 64], value=num_steps, description="steps")
        self.new = W.Button(description="new sample", icon="random")
        self.play = W.Play(value=0, min=0, max=1, step=1, interval=interval_ms, description="play")
        self.slider = W.IntSlider(value=0, min=0, max=1, step=1, description="step")
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.html = W.HTML()
        self.slider.observe(lambda c: self._update(time.perf_counter()), names="value")
        self.strategy.observe(lambda c: self.resample(), names="value")
        self.steps.observe(lambda c: self.resample(), names="value")
        self.new.on_click(self._on_new)
        self.widget = W.VBox([W.HBox([self.strategy, self.steps, self.new]), W.HBox([self.play, self.slider]),
                              self.html])
        self.widget.add_class("diffnlp-unmasking-player")
        self.resample()

    def resample(self):
        """Run the chosen sampler once (one story) and show its first frame."""
        started = time.perf_counter()
        strategy, block, eta = STRATEGY_CHOICES[self.strategy.value]
        K = self.steps.value
        if block is not None:
            K = max(K, self.length // block)
        traj = self.process.sample(self.model, 1, self.length, K, strategy=strategy, block_length=block,
                                   remask=eta, generator=torch.Generator().manual_seed(self.seed))
        self.states = [s[0].cpu() for s in traj]
        self.decided = decision_steps([s[None] for s in self.states], self.process.mask_id)[0]
        self.set_at = set_steps(self.states, self.process.mask_id)
        m = self.process.mask_id                                  # the tokens taken back in each step, once
        self._taken_back = [[]] + [((cur == m) & (prev != m)).nonzero()[:, 0].tolist()
                                   for prev, cur in zip(self.states, self.states[1:])]
        self.decided_per_step = [0] + [int(((cur != m) & (prev == m)).sum())     # many or few per step when
                                       for prev, cur in zip(self.states, self.states[1:])]  # adaptive
        self.colors = order_colors(len(self.states))          # once per trajectory, not per frame
        self.slider.max = self.play.max = len(self.states) - 1
        self.slider.value = self.slider.max if self.slider.value > self.slider.max else self.slider.value
        self._update(started)

    def _on_new(self, _=None):
        self.seed += 1
        self.resample()

    def remasked(self, i: int) -> list[int]:
        """The positions whose decided token went back to [MASK] in step i (self-correction)."""
        return self._taken_back[check_int("i", i, 0, len(self.states) - 1)]

    @property
    def revisions(self) -> int:
        """How many times a decided token was taken back over the whole trajectory."""
        return sum(map(len, self._taken_back))

    def frame(self, i: int) -> list[tuple[str, str]]:
        """Frame i as (token, colour) pairs; the colour encodes when the token was decided. A token taken back
        in this step shows its old word, coloured ``REMASKED_BG``."""
        return [(word, bg) for word, bg, _ in self.marked_frame(i)]

    def marked_frame(self, i: int) -> list[tuple[str, str, str]]:
        """Frame i as (token, colour, mark): ``frame`` plus the mark "new" (decided in this step), "back"
        (taken back in this step) or "" (``MARKS``)."""
        i = check_int("i", i, 0, len(self.states) - 1)
        colors, back = self.colors, set(self.remasked(i))
        out = []
        for pos, tok in enumerate(self.states[i].tolist()):
            if pos in back:
                out.append((self.tokenizer.labels[int(self.states[i - 1][pos])], REMASKED_BG, "back"))
            elif tok == self.process.mask_id:
                out.append(("[MASK]", MASK_BG, ""))
            else:
                step = int(self.set_at[i, pos])
                out.append((self.tokenizer.labels[tok], colors[step], "new" if step == i and i > 0 else ""))
        return out

    def frame_html(self, i: int) -> str:
        """Frame i as HTML: a status line and the chips of ``marked_frame(i)``."""
        chips = []
        for pos, (word, bg, mark) in enumerate(self.marked_frame(i)):
            step = int(self.set_at[i, pos])
            title = (f"position {pos}: taken back at step {i}" if mark == "back" else
                     f"position {pos}, decided at step {step}" if step >= 0 else f"position {pos}: masked")
            ec, lw, ls = MARKS.get(mark, ("", 0, ""))
            border = f"{lw:.0f}px {'dashed' if ls == '--' else 'solid'} {ec}" if mark else ""
            chips.append(chip(word, bg, "#fff" if is_dark(bg) else "#222", bold=mark == "new", title=title,
                              strike=mark == "back", border=border))
        done, back = int((self.states[i] != self.process.mask_id).sum()), len(self.remasked(i))
        note = f", {back} taken back (struck through, dashed outline)" if back else ""
        return (f"<div style='font-family:monospace;font-size:12px;color:#444'>step {i} of "
                f"{len(self.states) - 1}: {self.decided_per_step[i]} decided in this step, {done} of "
                f"{self.length} in all{note}</div><div style='line-height:2.0'>{''.join(chips)}</div>")

    def _update(self, started: float | None = None):
        started = time.perf_counter() if started is None else started
        self.html.value = self.frame_html(self.slider.value)
        self.latencies.append(time.perf_counter() - started)

    def flipbook(self) -> Flipbook:
        """The player as a ``Flipbook`` (no kernel needed): every step of the story drawn now."""
        return Flipbook([self.frame_html(i) for i in range(len(self.states))], interval_ms=250, description="step",
                        caption=f"one story written by {self.strategy.value} in {len(self.states) - 1} steps.")

    def story(self) -> str:
        """The finished story, decoded (trailing [PAD] removed)."""
        from ...data.attributes import decode_stories

        return decode_stories(self.tokenizer, self.states[-1][None])[0]

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def strip(self, n: int = 6):
        """A static figure of ``n`` evenly spaced frames, with the same colours and outlines, and a key row
        at the bottom (``order_legend``)."""
        idx = np.unique(np.linspace(0, len(self.states) - 1, n).round().astype(int))
        rows = [self.marked_frame(int(i)) for i in idx] + [order_legend(len(self.states) - 1)]
        return token_strip(rows, [f"step {int(i)}" for i in idx] + ["key"], colors={},
                           title=f"{self.strategy.value}, {len(self.states) - 1} steps: each token coloured by "
                                 "the step that decided it")


def decision_strip(tokenizer, ids: torch.Tensor, when: torch.Tensor, num_steps: int, labels: Sequence[str],
                   outlined: Sequence[Sequence[int]] = (), title: str | None = None):
    """Finished stories (N, L) with each token coloured by the step that decided it (``when``, from
    ``diffnlp.base.decision_steps``; the player's palette: dark blue = early, light blue = late). The positions
    in ``outlined[n]`` (e.g. coupled tokens decided in the same step) get a coral outline and their step
    written after them, "word:step". Trailing [PAD] is dropped; a key row closes the figure."""
    colors = order_colors(num_steps + 1)
    rows = []
    for n, (row, steps) in enumerate(zip(ids.tolist(), when.tolist())):
        ring, end = set(outlined[n]) if n < len(outlined) else set(), len(row)
        while end > 0 and row[end - 1] == tokenizer.pad_id:
            end -= 1
        rows.append([(f"{tokenizer.vocab[tok]}:{step}" if pos in ring else tokenizer.vocab[tok],
                      colors[max(step, 0)], "outline" if pos in ring else "")
                     for pos, (tok, step) in enumerate(zip(row[:end], steps[:end]))])
    key = [(f"step {k}", colors[k], "") for k in sorted({1, (num_steps + 1) // 2, num_steps})]
    key.append(("word:step = coupled tokens decided in one step", "#ffffff", "outline"))
    return token_strip(rows + [key], list(labels) + ["key"], colors={}, title=title, fontsize=8)
