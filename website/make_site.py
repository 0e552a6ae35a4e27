"""Build the course's website from the stored notebooks: ``make site`` runs
``python website/make_site.py --out build/site``.

Nothing is executed: every lesson page shows the outputs stored in its notebook. The steps:

1. Stage a Sphinx source folder (``build/site-src``): this folder's ``conf.py`` and ``_static/``, a landing
   page written from the notebooks' opening boxes (the course map), the lessons under ``lessons/`` and the
   project's ``docs/`` pages (the lessons link to ``../docs/notation.md``).
2. Prepare each notebook for the web (``prepare_notebook``): drop the test plumbing (nbval tags, the load
   test's tag), replace a live explorer's output (cells tagged ``kernel-only``: a widget whose every frame
   is drawn by a Python callback) by a note, since on a static page its controls would do nothing (its
   flipbook, in the next cell, works anywhere), and keep only the widget state that the remaining outputs
   use.
3. Unpack MathJax 3 and the widget renderer (``@jupyter-widgets/html-manager``'s ``embed.js`` and its fonts)
   from their npm packages, which ``make site`` fetched with ``npm pack`` into ``.venv/share/diffnlp/web``
   (checked by SHA-256), with their licences: a page loads nothing from the network.
4. ``sphinx-build -W`` (every warning is an error) into ``build/site``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import html
import json
import re
import shutil
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs"
WEB_ASSETS = ROOT / ".venv" / "share" / "diffnlp" / "web"

# npm packages: tarball -> (SHA-256, {path in the tarball (a file, or a folder ending in "/"): path under
# _static/vendor/}). Fetched by `make site` with `npm pack mathjax@3.2.2 @jupyter-widgets/html-manager@1.0.15`.
VENDOR = {
    "mathjax-3.2.2.tgz": (
        "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
        {
            "package/LICENSE": "mathjax/LICENSE",
            "package/es5/tex-mml-chtml.js": "mathjax/tex-mml-chtml.js",
            "package/es5/input/tex/extensions/": "mathjax/input/tex/extensions/",
            "package/es5/output/chtml/fonts/woff-v2/": "mathjax/output/chtml/fonts/woff-v2/",
            "package/es5/ui/": "mathjax/ui/",
            "package/es5/a11y/": "mathjax/a11y/",
            "package/es5/adaptors/": "mathjax/adaptors/",
        },
    ),
    "jupyter-widgets-html-manager-1.0.15.tgz": (
        "2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638",
        {
            "package/dist/embed.js": "html-manager/embed.js",
            "package/dist/embed.js.LICENSE.txt": "html-manager/embed.js.LICENSE.txt",
            "package/dist/*.woff2": "html-manager/",
            "package/dist/*.woff": "html-manager/",
            "package/dist/*.ttf": "html-manager/",
        },  # not its .eot and .svg fonts (1.9 MB): only Internet Explorer and very old Safari ask for them
    ),
}
# @jupyter-widgets/html-manager ships no licence file; its package.json says BSD-3-Clause (ipywidgets' licence).
HTML_MANAGER_LICENSE = """\
@jupyter-widgets/html-manager 1.0.15 (npm), part of ipywidgets. Licence: BSD-3-Clause (its package.json).

Copyright (c) 2015 Project Jupyter Contributors
All rights reserved.

Redistribution and use in source and binary forms, with or without modification, are permitted provided that
the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this list of conditions and the
   following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice, this list of conditions and the
   following disclaimer in the documentation and/or other materials provided with the distribution.
3. Neither the name of the copyright holder nor the names of its contributors may be used to endorse or promote
   products derived from this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED
WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR
PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT,
INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE
GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF
LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY
OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.

embed.js bundles third-party code; its notices are in embed.js.LICENSE.txt beside this file.
"""

TEST_TAGS = frozenset({"nbval-ignore-output", "nbval-check-output", "nbval-skip", "nbval-raises-exception",
                       "speed-race"})
KERNEL_ONLY = "kernel-only"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
KERNEL_NOTE = ("<div class='diffnlp-kernel-note'><b>Live explorer: needs a running kernel.</b> Its controls "
               "redraw the picture in Python, so on this page they would do nothing. Run the lesson with "
               "<code>make lab</code> to use it; the flipbook below shows the same figure, precomputed.</div>")


# ------------------------------------------------------------------------------------------ notebooks
def _model_refs(value) -> set[str]:
    """The widget model ids a widget's state refers to ("IPY_MODEL_<id>" strings, at any depth)."""
    if isinstance(value, str):
        return {value[len("IPY_MODEL_"):]} if value.startswith("IPY_MODEL_") else set()
    if isinstance(value, dict):
        return set().union(*map(_model_refs, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_model_refs, value)) if value else set()
    return set()


def used_models(state: dict, roots: set[str]) -> set[str]:
    """The models that the views ``roots`` need (``state``: id -> model dict): every model reachable from a
    root through its references, and every link (``jslink``) between two of those, which no view refers to
    but which moves a flipbook's frames."""
    seen, todo = set(), list(roots)
    while todo:
        mid = todo.pop()
        if mid in seen or mid not in state:
            continue
        seen.add(mid)
        todo.extend(_model_refs(state[mid].get("state", {})))
    links = {mid for mid, model in state.items()
             if model.get("model_name") in ("LinkModel", "DirectionalLinkModel")
             and _model_refs(model.get("state", {})) and _model_refs(model.get("state", {})) <= seen}
    return seen | links


def prepare_notebook(nb: dict) -> dict:
    """A copy of a stored notebook as the website shows it: test tags removed, each ``kernel-only`` cell's
    widget output replaced by ``KERNEL_NOTE``, and the widget state cut to the models still displayed."""
    nb = copy.deepcopy(nb)
    roots = set()
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        kernel_only = KERNEL_ONLY in tags
        if tags:
            kept = [t for t in tags if t not in TEST_TAGS and t != KERNEL_ONLY]
            if kept:
                cell["metadata"]["tags"] = kept
            else:
                del cell["metadata"]["tags"]
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is not None and kernel_only:
                out = {"output_type": "display_data", "metadata": {},
                       "data": {"text/html": KERNEL_NOTE, "text/plain": "Live explorer: needs a running kernel."}}
            elif view is not None:
                roots.add(view["model_id"])
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    widgets = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE)
    if widgets is not None:
        state = widgets.get("state", {})
        keep = used_models(state, roots)
        widgets["state"] = {k: v for k, v in state.items() if k in keep}
        if not widgets["state"]:
            del nb["metadata"]["widgets"]
    return nb


# ------------------------------------------------------------------------------------------ landing page
def opening_box(nb: dict) -> dict:
    """The title, times and "What you will learn" list of a lesson's first cell."""
    text = "".join(nb["cells"][0]["source"])
    title = re.search(r"^# (.+)$", text, re.M)
    if title is None:
        raise ValueError("the notebook's first cell has no '# ' title")
    reading = re.search(r"\*\*Reading time:\*\* ([^.*]+)", text)
    compute = re.search(r"\*\*Compute time:\*\* about ([^.*]+?) to run", text)
    assumes = re.search(r"\*\*Assumes:\*\* (.+?)\s*$", text, re.M)
    learn = re.search(r"\*\*What you will learn and do\*\*\s*\n((?:\d+\. .*\n?)+)", text)
    return {"title": title.group(1).strip(), "reading": reading.group(1).strip() if reading else "",
            "compute": compute.group(1).strip() if compute else "", "assumes": assumes.group(1) if assumes else "",
            "learn": re.findall(r"^\d+\. (.+)$", learn.group(1), re.M) if learn else []}


def index_page(lessons: list[tuple[str, dict]]) -> str:
    """The landing page (MyST Markdown): what the course is, the course map, how to run it locally."""
    rows = []
    for stem, box in lessons:
        number, _, name = box["title"].partition(" · ")
        rows.append(f"| {html.escape(number)} | [{name}](lessons/{stem}.ipynb) | {box['reading']} | "
                    f"{box['compute']} |")
    sections = []
    for stem, box in lessons:
        items = "\n".join(f"{k}. {item}" for k, item in enumerate(box["learn"], 1))
        sections.append(f"### [{box['title']}](lessons/{stem}.ipynb)\n\n"
                        f"*Assumes:* {box['assumes']}  \n*Reading time:* {box['reading']}; *compute time:* about "
                        f"{box['compute']} on a 2-core laptop CPU.\n\n{items}\n")
    toctree = "\n".join(f"lessons/{stem}" for stem, _ in lessons)
    return f"""# Diffusion in NLP, hands-on

An interactive course on diffusion models for text. It starts from the big picture and the math of
diffusion, then follows the two ways diffusion is adapted to text: in embedding space (Diffusion-LM), and on
tokens (masking: MDLM, LLaDA). It goes on to parallel decoding (as in Gemini Diffusion), what lies beyond
masking, and real text, with a path to training on many GPUs. Every lesson imports one small, tested
package, `diffnlp`, so the code you read is the code the tests check. Every lesson runs on a laptop CPU in a
few minutes.

These pages show each lesson as it was last executed, with its stored outputs. The sliders under
**Flipbook** move precomputed frames and work right here. The live explorers, which redraw in Python,
need a running kernel: run the course locally (below) to use them and to do the exercises.

## Course map

| # | Lesson | Reading time | Compute time (2-core CPU) |
|---|---|---|---|
{chr(10).join(rows)}

{chr(10).join(sections)}
## Run it on your machine

You need Python 3.11, `make` and git. Two commands: the first gets the course, the second creates a virtual
environment from the lock file (CPU PyTorch, no GPU needed) and opens JupyterLab on `127.0.0.1` with token
authentication, the notebooks as its root.

```bash
git clone <this repository> diffnlp && cd diffnlp
make lab
```

`make test` runs the unit tests, the browser tests and re-executes every lesson against its stored outputs.
Nothing is downloaded while a lesson runs: the story grammar is generated, and the trained models ship with the package.

## Reference

- [Notation and time conventions](docs/notation.md): every symbol of the lessons, with its name in the code.
- [How diffnlp is built](docs/architecture.md): the layers, the one process contract, a token's path.

```{{toctree}}
:hidden:
:maxdepth: 1
:caption: Lessons

{toctree}
```

```{{toctree}}
:hidden:
:maxdepth: 1
:caption: Reference

docs/notation
docs/architecture
```
"""


# ------------------------------------------------------------------------------------------ vendor assets
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def unpack_vendor(web_dir: Path, vendor_dir: Path, vendor: dict = VENDOR) -> None:
    """Unpack the files the pages need from the npm tarballs in ``web_dir`` into ``vendor_dir``, after
    checking each tarball's SHA-256 against ``vendor`` (default ``VENDOR``). Every path of the mapping must
    match at least one file of its tarball."""
    for name, (digest, members) in vendor.items():
        tarball = web_dir / name
        if not tarball.is_file():
            raise FileNotFoundError(f"{tarball} is missing: run `make site`, which fetches it with `npm pack`")
        got = sha256(tarball)
        if got != digest:
            raise ValueError(f"{tarball} has SHA-256 {got}, expected {digest}")
        matched = set()
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                for source, target in members.items():
                    if source.endswith("/") and member.name.startswith(source):
                        dest = target + member.name[len(source):]
                    elif "*" in source and re.fullmatch(re.escape(source).replace(r"\*", r"[^/]+"), member.name):
                        dest = target + Path(member.name).name
                    elif member.name == source:
                        dest = target
                    else:
                        continue
                    path = vendor_dir / dest
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(tar.extractfile(member).read())
                    matched.add(source)
                    break
        if set(members) - matched:
            raise ValueError(f"{tarball} has no file for {sorted(set(members) - matched)}")
    if (vendor_dir / "html-manager").is_dir():
        (vendor_dir / "html-manager" / "LICENSE").write_text(HTML_MANAGER_LICENSE)


# ------------------------------------------------------------------------------------------ the build
def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def stage(staging: Path, web_dir: Path, notebooks_dir: Path = NOTEBOOKS) -> list[str]:
    """Write the Sphinx source folder; returns the lesson stems in course order."""
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(HERE, staging, ignore=shutil.ignore_patterns("make_site.py", "__pycache__"))
    (staging / "lessons").mkdir()
    lessons = []
    for path in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        lessons.append((path.stem, opening_box(nb)))
        (staging / "lessons" / path.name).write_text(json.dumps(prepare_notebook(nb), ensure_ascii=False),
                                                     encoding="utf-8")
    if not lessons:
        raise FileNotFoundError(f"no lesson notebooks (NN_*.ipynb) in {notebooks_dir}")
    shutil.copytree(DOCS, staging / "docs", ignore=shutil.ignore_patterns("*.png"))
    (staging / "index.md").write_text(index_page(lessons), encoding="utf-8")
    unpack_vendor(web_dir, staging / "_static" / "vendor")
    return [stem for stem, _ in lessons]


def build(out: Path, staging: Path, web_dir: Path = WEB_ASSETS) -> dict:
    """Stage and build the site into ``out`` (emptied first) with every Sphinx warning an error."""
    from sphinx.cmd.build import build_main

    started = time.perf_counter()
    lessons = stage(staging, web_dir)
    if out.exists():
        shutil.rmtree(out)
    code = build_main(["-W", "--keep-going", "-q", "-b", "html", "-d", str(staging / ".doctrees"),
                       str(staging), str(out)])
    if code != 0:
        raise SystemExit(f"sphinx-build failed (exit {code}); see the messages above")
    return {"lessons": lessons, "seconds": time.perf_counter() - started, "bytes": folder_size(out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="the built site (emptied first)")
    parser.add_argument("--staging", type=Path, default=ROOT / "build" / "site-src", help="the Sphinx source")
    parser.add_argument("--web-assets", type=Path, default=WEB_ASSETS, help="the npm tarballs")
    args = parser.parse_args(argv)
    report = build(args.out, args.staging, args.web_assets)
    print(f"site: {len(report['lessons'])} lessons in {args.out}, {report['bytes'] / 1e6:.1f} MB, "
          f"built in {report['seconds']:.1f} s; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
