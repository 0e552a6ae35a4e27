"""The command line and the benchmark report, without training anything."""

import json

import pytest

from diffnlp.cli import main
from diffnlp.cli.report import write_markdown
from diffnlp.training.recipes import RECIPES, train_recipe


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(ValueError, match="recipe='cifar'"):
        train_recipe("cifar")


def test_cli_rejects_unknown_benchmark_and_recipe(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "nonsense"])
    assert "unknown benchmark" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--recipe", "cifar"])


def test_recipes_describe_their_settings():
    for name, r in RECIPES.items():
        assert r.name == name and f"steps={r.steps}" in r.describe()


def test_markdown_report_lists_every_result(tmp_path):
    (tmp_path / "widgets.json").write_text(json.dumps({
        "benchmark": "widgets", "machine": {"device": "cpu", "cpu_count": 2, "torch": "x"},
        "callbacks": {"NoisingExplorer(points) slider": {"median_ms": 41.5, "max_ms": 60.0, "n": 40}}}))
    (tmp_path / "notebooks.json").write_text(json.dumps({
        "benchmark": "notebooks", "machine": {}, "notebooks": {"01_the_big_picture.ipynb": {"seconds": 81.2}}}))
    text = write_markdown(tmp_path).read_text()
    assert "| NoisingExplorer(points) slider | 41.5 | 60.0 | 40 |" in text
    assert "| 01_the_big_picture.ipynb | 81.2 |" in text
