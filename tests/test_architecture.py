"""The package's layout is a contract (docs/architecture.md): layers that import only downwards, no private
name imported across modules, small modules, and no dispatch on class names or kind strings outside the
one registry (``training.kinds``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "diffnlp"

# bottom-up: a module may import from its own layer or a lower one, never from a higher one
LAYERS = {"_checks": 0, "runtime": 0, "base": 0, "schedules": 0, "data": 1, "models": 2, "sampling": 3,
          "processes": 4, "training": 5, "frontier": 5, "evaluation": 6, "course": 7, "cli": 8, "__init__": 9,
          "__main__": 9}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts)


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def _imports(path: Path):
    """(absolute module inside diffnlp, imported names) for every diffnlp import of a file."""
    here = _name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    if path.name == "__init__.py":
        package = here[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("diffnlp"):
                module = node.module[len("diffnlp"):].lstrip(".")
            else:
                continue
            yield module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("diffnlp."):
                    yield a.name[len("diffnlp."):], []


def test_the_folder_list_shows_the_layers():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert {"data", "models", "processes", "sampling", "training", "evaluation", "course", "cli"} <= folders
    for p in _modules():
        assert _name(p).split(".")[0] in LAYERS, f"{p.relative_to(PACKAGE)} is outside every layer"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers_and_never_take_a_private_name(path):
    me = _name(path)
    for module, names in _imports(path):
        if module == "":                                   # from diffnlp import x: x is a subpackage or module
            targets = names
        else:
            targets = [module]
        for target in targets:
            top = target.split(".")[0]
            if top in LAYERS:
                assert _layer(target) <= _layer(me), f"{me} (layer {_layer(me)}) imports {target} (higher)"
        if module.split(".")[-1] != "_checks":
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{me} imports private name(s) {private} from {module}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small(path):
    if path.relative_to(PACKAGE).as_posix() == "data/stories.py":     # the grammar is one thing
        return
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{path.relative_to(PACKAGE)} has {lines} lines"


@pytest.mark.parametrize("module", ["evaluation/lm_eval.py", "evaluation/frontier.py", "training/recipes.py",
                                    "training/pretrained.py", "cli/bench.py", "cli/bench_frontier.py"])
def test_no_dispatch_on_class_names_or_kind_strings(module):
    text = (PACKAGE / module).read_text()
    assert not re.search(r"__name__\s*(==|!=|in)", text), "dispatch on a class name"
    assert not re.search(r"\.kind\s*(==|!=|in\b)", text), "dispatch on a kind string (use training.kinds.KINDS)"
    assert not re.search(r"isinstance\(process", text), "dispatch on a process class (use the protocol)"


def test_the_package_exports_every_process_on_one_screen():
    import diffnlp

    init = (PACKAGE / "__init__.py").read_text()
    assert len(init.splitlines()) <= 40
    for name in ("GaussianDiffusion", "EmbeddingDiffusion", "MaskedDiffusion", "BlockDiffusion", "ScoreEntropy",
                 "MaskedFlowMatching", "D3PM", "Autoregressive", "Transformer", "load_pretrained", "fit", "device",
                 "seed_everything", "set_threads"):
        assert name in diffnlp.__all__ and getattr(diffnlp, name) is not None
