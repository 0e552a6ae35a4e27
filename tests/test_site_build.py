"""The website's build step (website/make_site.py) without Sphinx or a browser: how a notebook is prepared for
the web, the landing page, the vendor packages' checks; and what the notebooks must hold for the site (a
flipbook after every live explorer, the live explorer tagged ``kernel-only``, sizes within budget)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "website"))
import make_site  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LIVE_CLASSES = {"diffnlp-noising-explorer", "diffnlp-trajectory-player", "diffnlp-text-noising-explorer",
                "diffnlp-unmasking-player", "diffnlp-embedding-noising-explorer"}
VIEW, STATE = make_site.WIDGET_VIEW, make_site.WIDGET_STATE


def _model(name: str, **state) -> dict:
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}


def _view(model_id: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0}, "text/plain": "VBox()"}}


def _toy_notebook() -> dict:
    state = {
        "live": _model("VBoxModel", children=["IPY_MODEL_live_img"], layout="IPY_MODEL_lay1"),
        "live_img": _model("ImageModel"), "lay1": _model("LayoutModel"),
        "fb": _model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_stack"]),
        "slider": _model("IntSliderModel"), "stack": _model("StackModel", children=["IPY_MODEL_f0"]),
        "f0": _model("ImageModel"),
        "link": _model("LinkModel", source=["IPY_MODEL_slider", "value"], target=["IPY_MODEL_stack", "selected_index"]),
        "live_link": _model("LinkModel", source=["IPY_MODEL_live", "value"], target=["IPY_MODEL_live_img", "value"]),
        "orphan": _model("HTMLModel"),
    }
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# 01 · Toy"},
        {"cell_type": "code", "metadata": {"tags": ["nbval-ignore-output", "kernel-only"]}, "execution_count": 1,
         "source": "explorer", "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi\n"}, _view("live")]},
        {"cell_type": "code", "metadata": {"tags": ["nbval-check-output", "speed-race", "hide-input"]},
         "execution_count": 2, "source": "explorer.flipbook()", "outputs": [_view("fb")]},
    ]
    return {"cells": cells, "metadata": {"widgets": {STATE: {"state": state, "version_major": 2, "version_minor": 0}}},
            "nbformat": 4, "nbformat_minor": 5}


def test_prepare_notebook_drops_test_tags_and_live_outputs_and_unused_state():
    nb = _toy_notebook()
    before = json.dumps(nb)
    out = make_site.prepare_notebook(nb)
    assert json.dumps(nb) == before                                            # the input is not changed
    live, flip = out["cells"][1], out["cells"][2]
    assert "tags" not in live["metadata"] and flip["metadata"]["tags"] == ["hide-input"]
    assert live["outputs"][0]["output_type"] == "stream"                      # other outputs stay
    note = live["outputs"][1]["data"]
    assert VIEW not in note and "needs a running kernel" in note["text/html"]
    assert flip["outputs"] == nb["cells"][2]["outputs"]
    kept = set(out["metadata"]["widgets"][STATE]["state"])
    assert kept == {"fb", "slider", "stack", "f0", "link"}   # the live models, their link, the orphan: gone


def test_prepare_notebook_without_widgets_keeps_no_state():
    nb = _toy_notebook()
    nb["cells"] = nb["cells"][:2]
    out = make_site.prepare_notebook(nb)
    assert "widgets" not in out["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_lesson_has_an_opening_box_for_the_landing_page(path):
    box = make_site.opening_box(json.loads(path.read_text()))
    assert box["title"].startswith(path.stem[:2] + " · ")
    assert box["reading"].startswith("about ") and box["compute"].endswith("seconds")
    assert len(box["learn"]) >= 3 and box["assumes"]


def test_index_page_links_every_lesson_and_says_how_to_run():
    lessons = [(p.stem, make_site.opening_box(json.loads(p.read_text()))) for p in NOTEBOOKS]
    page = make_site.index_page(lessons)
    for stem, box in lessons:
        assert f"(lessons/{stem}.ipynb)" in page and box["reading"] in page
        assert f"lessons/{stem}\n" in page                                    # in the toctree
    assert "make lab" in page and "## Course map" in page


def test_opening_box_without_a_title_is_an_error():
    with pytest.raises(ValueError, match="no '# ' title"):
        make_site.opening_box({"cells": [{"cell_type": "markdown", "source": "text"}]})


def _tarball(path: Path, files: dict[str, bytes]) -> str:
    import hashlib
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unpack_vendor_maps_files_folders_and_globs(tmp_path):
    files = {"package/LICENSE": b"L", "package/dist/a.woff": b"w", "package/dist/a.woff2": b"w2",
             "package/es5/x/y.js": b"y", "package/es5/other.js": b"o"}
    digest = _tarball(tmp_path / "p.tgz", files)
    vendor = {"p.tgz": (digest, {"package/LICENSE": "p/LICENSE", "package/dist/*.woff": "p/fonts/",
                                 "package/es5/x/": "p/x/"})}
    make_site.unpack_vendor(tmp_path, tmp_path / "out", vendor)
    got = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert got == ["p/LICENSE", "p/fonts/a.woff", "p/x/y.js"]                 # *.woff does not take .woff2
    vendor["p.tgz"][1]["package/missing.js"] = "p/missing.js"
    with pytest.raises(ValueError, match="no file for.*missing.js"):
        make_site.unpack_vendor(tmp_path, tmp_path / "out2", vendor)


def test_vendor_tarball_missing_or_altered_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="make site"):
        make_site.unpack_vendor(tmp_path, tmp_path / "vendor")
    for name in make_site.VENDOR:
        (tmp_path / name).write_bytes(b"not the package")
    with pytest.raises(ValueError, match="SHA-256"):
        make_site.unpack_vendor(tmp_path, tmp_path / "vendor")


# ------------------------------------------------------------------------------- what the notebooks hold
def shown_widgets(nb: dict) -> list[tuple[int, str, set]]:
    """(cell index, model id, its _dom_classes) of every widget a cell displays (test_site.py uses it too)."""
    models = nb.get("metadata", {}).get("widgets", {}).get(STATE, {}).get("state", {})
    return [(i, o["data"][VIEW]["model_id"], set(models.get(o["data"][VIEW]["model_id"], {})
                                                 .get("state", {}).get("_dom_classes", [])))
            for i, c in enumerate(nb["cells"]) for o in c.get("outputs", []) if VIEW in o.get("data", {})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_live_explorer_is_tagged_kernel_only_and_followed_by_its_flipbook(path):
    nb = json.loads(path.read_text())
    roots = shown_widgets(nb)
    models = nb.get("metadata", {}).get("widgets", {}).get(STATE, {}).get("state", {})
    for _, model_id, _ in roots:
        assert model_id in models, f"a displayed widget ({model_id}) has no saved state: re-execute {path.name}"
    live = [(i, c) for i, _, c in roots if c & LIVE_CLASSES]
    flipbooks = [i for i, _, c in roots if "diffnlp-flipbook" in c]
    for i, _ in live:
        assert "kernel-only" in nb["cells"][i]["metadata"].get("tags", []), f"cell {i} shows a live explorer"
        nxt = next(j for j in range(i + 1, len(nb["cells"])) if nb["cells"][j]["cell_type"] == "code")
        assert nxt in flipbooks, f"the code cell after the live explorer of cell {i} shows no flipbook"
    tagged = [i for i, c in enumerate(nb["cells"]) if "kernel-only" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [i for i, _ in live], "a cell is tagged kernel-only but shows no live explorer"
    assert len(flipbooks) == len(live)


def test_lessons_with_explorers_have_them():
    """The lessons that have widgets (01, 03, 04, 05, 07) keep them: the test above cannot pass vacuously."""
    counts = {p.stem[:2]: sum(bool(c & LIVE_CLASSES) for _, _, c in shown_widgets(json.loads(p.read_text())))
              for p in NOTEBOOKS}
    assert counts == {"01": 4, "02": 0, "03": 1, "04": 2, "05": 2, "06": 0, "07": 1}


def test_notebook_sizes_are_within_budget():
    sizes = {p.name: p.stat().st_size for p in NOTEBOOKS}
    assert max(sizes.values()) <= 5_000_000, sizes
    assert sum(sizes.values()) <= 20_000_000, sizes
