"""The stored notebooks are what a learner reads: no test plumbing in the code they see, one kernel, and
each lesson shows the package code of its core step (``course.show``)."""

from __future__ import annotations

import json
import re
from importlib import import_module
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


EXERCISE = re.compile(r"\*\*Exercise (\d+) \((predict|derive|implement)\)\.\*\*")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_lesson_has_three_kinds_of_exercise_each_with_a_checker_a_hint_and_a_reference(path):
    """At least three exercises per lesson, at least one "predict" (guess, then run), one "derive" and one
    "implement". Each is a markdown cell "**Exercise N (kind).**" with a hint and a "Stuck?" line that names
    the reference solution; the code cells after it (before the next markdown cell) call a checker of the
    lesson's own module, diffnlp.course.exercises.lessonNN, which has that reference."""
    lesson = import_module(f"diffnlp.course.exercises.lesson{path.name[:2]}")
    cells = json.loads(path.read_text())["cells"]
    kinds = []
    for i, cell in enumerate(cells):
        text = "".join(cell["source"])
        found = EXERCISE.findall(text) if cell["cell_type"] == "markdown" else []
        if not found:
            continue
        assert len(found) == 1, f"{path.name} cell {i}: one exercise per markdown cell"
        kinds.append(found[0][1])
        assert "Hint" in text, f"{path.name} cell {i}: exercise {found[0][0]} has no hint"
        stuck = re.search(r"Stuck\?.*?`(reference_\w+)`", text, re.S)
        assert stuck, f"{path.name} cell {i}: exercise {found[0][0]} has no 'Stuck?' line naming a reference_"
        assert hasattr(lesson, stuck.group(1)), f"{path.name} cell {i}: {stuck.group(1)} is not in {lesson.__name__}"
        code = ""
        for nxt in cells[i + 1:]:
            if nxt["cell_type"] != "code":
                break
            code += "".join(nxt["source"])
        checks = re.findall(r"\b(check_\w+)\(", code)
        assert checks, f"{path.name} cell {i}: exercise {found[0][0]} is not followed by a checker call"
        for check in checks:
            assert hasattr(lesson, check), f"{path.name}: {check} is not in {lesson.__name__}"
            assert hasattr(lesson, check.replace("check_", "reference_", 1)), f"{check} has no reference"
    assert len(kinds) >= 3, f"{path.name}: {len(kinds)} exercises, at least 3 wanted"
    assert {"predict", "derive", "implement"} <= set(kinds), f"{path.name}: exercise kinds {sorted(set(kinds))}"
