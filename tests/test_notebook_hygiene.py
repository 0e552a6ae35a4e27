"""The stored notebooks are what a learner reads: no test plumbing in the code they see, one kernel, and
each lesson shows the package code of its core step (``course.show``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
NBVAL_TAGS = {"nbval-ignore-output", "nbval-check-output", "nbval-skip", "raises-exception"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_live_in_cell_tags_not_in_the_code(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        assert "NBVAL_" not in source, f"{path.name} cell {i}: an nbval comment a learner would read"
        tags = set(cell.get("metadata", {}).get("tags", []))
        assert not {t for t in tags if t.startswith("nbval")} - NBVAL_TAGS, f"{path.name} cell {i}: unknown tag"
        assert not {"nbval-ignore-output", "nbval-check-output"} <= tags, f"{path.name} cell {i}: both tags"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_kernel_and_the_core_step_shown(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python",
                                            "name": "python3"}
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "from diffnlp.course.show import show" in code and "show(" in code, f"{path.name} shows no package code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_lesson_opens_with_what_it_assumes_and_takes(path):
    opening = "".join(json.loads(path.read_text())["cells"][0]["source"])
    for field in ("**Assumes:**", "**Reading time:**", "**Compute time:**", "**What you will learn and do**"):
        assert field in opening, f"{path.name}: the opening box has no {field}"
