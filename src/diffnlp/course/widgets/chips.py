"""Tokens drawn as coloured chips: inline HTML for the text widgets, and a matplotlib strip of rows of
chips (``token_strip``) for static figures. One palette for both, so the figure and the widget agree.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from ..plotting import CORAL, INK

MASK_BG, CLEAN_BG, NEW_BG = "#d9d9d9", "#e6eef8", "#ffe08a"


def chip(text: str, bg: str, fg: str = "#222", bold: bool = False, title: str = "", strike: bool = False,
         border: str = "") -> str:
    """One token as an inline HTML chip: background ``bg``, text colour ``fg``, an optional outline
    ``border`` (CSS), bold or struck through, and a hover ``title``."""
    weight = "600" if bold else "400"
    deco = ";text-decoration:line-through" if strike else ""
    edge = f";outline:{border};outline-offset:-1px" if border else ""
    return (f'<span title="{html.escape(title)}" style="display:inline-block;margin:2px 2px;padding:1px 5px;'
            f'border-radius:4px;background:{bg};color:{fg};font-family:monospace;font-size:13px;'
            f'font-weight:{weight}{deco}{edge}">{html.escape(text)}</span>')


def order_colors(n: int) -> list[str]:
    """n colours of one sequential palette, from early (dark blue) to late (light blue): the decision order.
    "Just decided" and "taken back" are marked by outlines (``MARKS``), never by a colour of this palette."""
    import matplotlib

    cmap = matplotlib.colormaps["Blues"]
    return [matplotlib.colors.to_hex(cmap(0.95 - 0.7 * i / max(1, n - 1))) for i in range(n)]


MARKS = {"new": (INK, 2.0, "-"), "back": (CORAL, 1.6, "--"), "outline": (CORAL, 2.0, "-")}  # edge, width, style


def is_dark(color: str) -> bool:
    """Whether a colour's luma is below one half (then its text is drawn white)."""
    import matplotlib

    r, g, b = matplotlib.colors.to_rgb(color)
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5


def token_strip(rows: Sequence[Sequence[tuple]], labels: Sequence[str], colors: dict | None = None,
                title: str | None = None, fontsize: float = 8.5):
    """Rows of (token, kind) or (token, kind, mark) drawn as coloured chips in a monospace font, one row per
    frame. ``kind`` is "clean", "mask", "replaced", "new" or any matplotlib colour; masks are drawn as "___".
    ``mark`` (``MARKS``): "new" (a thick dark outline: just decided), "back" (a dashed coral outline and a
    strike-through: taken back), "outline" (a coral outline: a token to look at), or "" for none."""
    import matplotlib.pyplot as plt

    colors = {"clean": CLEAN_BG, "mask": MASK_BG, "replaced": "#fbd3cb", "new": NEW_BG, **(colors or {})}
    rows = [[("___" if item[0] == "[MASK]" else item[0], item[1], item[2] if len(item) > 2 else "")
             for item in row] for row in rows]
    label_w = max(len(lab) for lab in labels) + 2
    width = label_w + max(sum(len(item[0]) + 1.1 for item in row) for row in rows)
    char_in = 0.6 * fontsize / 72                     # the width of one monospace character, in inches
    fig = plt.figure(figsize=(width * char_in + 0.2, 0.3 * len(rows) + (0.45 if title else 0.15)))
    ax = fig.add_axes((0.1 / (width * char_in + 0.2), 0, 1 - 0.2 / (width * char_in + 0.2),
                       1 - (0.4 if title else 0.1) / (0.3 * len(rows) + (0.45 if title else 0.15))))
    ax.set_xlim(0, width)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.axis("off")
    for r, (row, label) in enumerate(zip(rows, labels)):
        ax.text(label_w - 1.5, r, label, ha="right", va="center", fontsize=fontsize, color="#444")
        x = label_w
        for tok, kind, mark in row:
            bg = colors.get(kind, kind)
            ec, lw, ls = MARKS.get(mark, ("none", 0.0, "-"))
            ax.text(x, r, tok, va="center", ha="left", family="monospace", fontsize=fontsize,
                    color="white" if is_dark(bg) else "#222", fontweight="bold" if mark == "new" else "normal",
                    bbox=dict(boxstyle="round,pad=0.18", fc=bg, ec=ec, lw=lw, ls=ls))
            if mark == "back":                                    # struck through, as in the widget
                ax.plot([x, x + len(tok)], [r, r], color=CORAL, lw=1.2, zorder=5)
            x += len(tok) + 1.1
    if title:
        fig.suptitle(title, fontsize=fontsize + 1, x=0.01, ha="left", y=0.99)
    return fig
