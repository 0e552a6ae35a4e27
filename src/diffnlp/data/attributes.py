"""Reading stories back: token ids to text (``decode_stories``), and the attributes of a story (its name,
adjective, object, place and feeling) from the grammar's parse, the labels of guidance and control."""

from __future__ import annotations

import torch

from .._checks import check_choice, check_tensor
from .stories import InvalidStory


def decode_stories(tokenizer, ids: torch.Tensor) -> list[str]:
    """Token ids (N, L) to text, keeping the padding honest: trailing [PAD] ends the story, but a [PAD]
    *inside* a story stays visible as "[PAD]" (and makes it invalid), as does a leftover [MASK]."""
    check_tensor("ids", ids, floating=False)
    if ids.ndim != 2:
        raise ValueError(f"ids must have shape (N, L), got {tuple(ids.shape)}")
    out = []
    for row in ids.tolist():
        end = len(row)
        while end > 0 and row[end - 1] == tokenizer.pad_id:
            end -= 1
        out.append(tokenizer.decode(row[:end], skip_pad=False) if end else "")
    return out


ATTRIBUTES = ("name", "adjective", "object", "place", "feeling")


def attribute_values(grammar, attribute: str) -> list[str]:
    """The values a story attribute can take, in a fixed order (the classes of a guidance classifier)."""
    check_choice("attribute", attribute, ATTRIBUTES)
    c = grammar.config
    return {"name": list(c.girls) + list(c.boys), "adjective": list(c.adjectives), "object": list(c.objects),
            "place": list(c.places), "feeling": list(c.happy) + list(c.sad)}[attribute]


def story_attributes(grammar, stories, attribute: str) -> list[str | None]:
    """The value of ``attribute`` in each story, read from the grammar's parse (None for an invalid story)."""
    attribute_values(grammar, attribute)
    out = []
    for s in stories:
        try:
            out.append(grammar.parse(s).choices[attribute])
        except InvalidStory:
            out.append(None)
    return out
