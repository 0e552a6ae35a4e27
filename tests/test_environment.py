"""The install files agree with each other: requirements.lock, environment.yml, pyproject.toml, Makefile.

A learner installs with `make lab` (the lock file) or with conda (environment.yml); both must give the
same packages, every dependency the package declares must be pinned, torch must be the pinned CPU-able
release, and `make lab` must serve on loopback with token authentication.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
ENV_YML = ROOT / "environment.yml"
PYPROJECT = ROOT / "pyproject.toml"
MAKEFILE = ROOT / "Makefile"

EXTRAS = ("dev", "parity", "browser", "hf", "site")
TORCH_PIN = "2.13.0"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def _parse_pins(lines: list[str], source: str) -> dict[str, str]:
    """name (normalised) -> version, from lines of the form name==version; anything else is an error."""
    pins: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        m = PIN.match(line)
        assert m, f"{source}: {line!r} is not an exact pin name==version"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"{source}: {name} pinned twice"
        pins[name] = m.group(2)
    return pins


def lock_pins() -> dict[str, str]:
    lines = [ln for ln in LOCK.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return _parse_pins(lines, LOCK.name)


def _env_yml() -> dict:
    """environment.yml as data: PyYAML when installed (it is in the lock), else a small line parser that
    knows the shape of this file (a dependencies list holding strings and one {pip: [...]} mapping)."""
    text = ENV_YML.read_text()
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is pinned in the lock
        return _env_yml_fallback(text)
    return yaml.safe_load(text)


def _env_yml_fallback(text: str) -> dict:
    deps: list = []
    pip: list[str] | None = None
    section = None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        body = line.strip()
        if indent == 0:
            section = body.rstrip(":").split(":")[0]
            continue
        if section != "dependencies" or not body.startswith("- "):
            continue
        item = body[2:].strip()
        if item == "pip:":
            pip = []
            deps.append({"pip": pip})
        elif pip is not None and indent > 2:
            pip.append(item)
        else:
            pip = None
            deps.append(item)
    return {"dependencies": deps}


def env_yml_parts() -> tuple[list[str], list[str]]:
    """(conda dependencies as strings, pip section lines)."""
    data = _env_yml()
    conda, pip = [], None
    for dep in data["dependencies"]:
        if isinstance(dep, dict):
            assert list(dep) == ["pip"], f"environment.yml: unexpected mapping {dep}"
            assert pip is None, "environment.yml: two pip sections"
            pip = [str(x) for x in dep["pip"]]
        else:
            conda.append(str(dep).replace(" ", ""))
    assert pip is not None, "environment.yml has no pip section"
    return conda, pip


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    extras = project.get("optional-dependencies", {})
    for extra in EXTRAS:
        assert extra in extras, f"pyproject.toml has no extra {extra!r}"
        reqs += [Requirement(r) for r in extras[extra]]
    return reqs


# ---- requirements.lock -------------------------------------------------------------------------------


def test_lock_has_a_header_saying_how_it_was_made():
    head = LOCK.read_text().splitlines()[:6]
    assert any(line.startswith("#") and "pip freeze" in line for line in head)


def test_lock_pins_torch_exactly_without_local_label():
    pins = lock_pins()
    # "torch==2.13.0" (not "+cpu"): pip takes the CPU wheel on disk; a looser pin can pull a CUDA build.
    assert pins.get("torch") == TORCH_PIN, f"torch must be pinned =={TORCH_PIN}, got {pins.get('torch')}"
    assert "+" not in "".join(pins.values()), "local version labels (+cpu) do not belong in the lock"


def test_lock_excludes_the_package_itself_and_the_installer():
    pins = lock_pins()
    for name in ("diffnlp", "pip"):  # setuptools stays: torch requires it at run time
        assert name not in pins, f"{name} must not be pinned in the lock"
    lines = [ln.strip() for ln in LOCK.read_text().splitlines() if not ln.lstrip().startswith("#")]
    assert not [ln for ln in lines if ln.startswith("-")], "options/editables belong in the Makefile, not the lock"


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = lock_pins()
    for req in pyproject_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject.toml) is not pinned in requirements.lock"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject.toml's {req}"
        )


def test_lock_pins_every_installed_transitive_dependency():
    """The whole dependency tree of diffnlp[dev,parity,browser], as installed, is pinned: nothing is left
    for pip to choose at install time."""
    from importlib import metadata

    pins = lock_pins()
    missing: set[str] = set()
    seen: dict[str, set[str]] = {}
    stack: list[tuple[str, set[str], str]] = [("diffnlp", set(EXTRAS), "pyproject.toml")]
    while stack:
        name, extras, parent = stack.pop()
        key = canonicalize_name(name)
        if key in seen and extras <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | extras
        if key != "diffnlp" and key not in pins:
            missing.add(f"{key} (required by {parent})")
        try:
            requires = metadata.requires(key) or []
        except metadata.PackageNotFoundError:
            pytest.skip(f"{key} is not installed here; run in the venv made from the lock (make venv)")
        for line in requires:
            req = Requirement(line)
            envs = [{"extra": e} for e in seen[key]] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                stack.append((req.name, set(req.extras), key))
    assert not missing, f"not pinned in requirements.lock: {sorted(missing)}"


# ---- environment.yml ---------------------------------------------------------------------------------


def test_environment_yml_is_python_311_with_pip():
    conda, _ = env_yml_parts()
    assert "python=3.11" in conda
    assert "pip" in conda


def test_environment_yml_pip_pins_equal_the_lock():
    _, pip = env_yml_parts()
    assert "-e ." in pip, "environment.yml's pip section must install the package itself (-e .)"
    env_pins = _parse_pins([line for line in pip if line != "-e ."], ENV_YML.name)
    lock = lock_pins()
    only_env = sorted(f"{n}=={v}" for n, v in env_pins.items() if lock.get(n) != v)
    only_lock = sorted(f"{n}=={v}" for n, v in lock.items() if env_pins.get(n) != v)
    assert not only_env and not only_lock, (
        f"environment.yml and requirements.lock differ: only in environment.yml {only_env}, "
        f"only in requirements.lock {only_lock}"
    )


def test_env_yml_fallback_parser_agrees_with_yaml():
    yaml = pytest.importorskip("yaml")
    text = ENV_YML.read_text()
    assert _env_yml_fallback(text)["dependencies"] == yaml.safe_load(text)["dependencies"]


# ---- Makefile: `make lab` ----------------------------------------------------------------------------


def make_recipe(target: str) -> str:
    """The recipe of a Makefile rule, continuation lines joined."""
    lines = MAKEFILE.read_text().splitlines()
    rule = re.compile(rf"^{re.escape(target)}\s*:(?!=)")
    for i, line in enumerate(lines):
        if rule.match(line):
            recipe = []
            for body in lines[i + 1 :]:
                if not body.startswith("\t"):
                    break
                recipe.append(body[1:])
            assert recipe, f"Makefile target {target!r} has an empty recipe"
            return "\n".join(recipe).replace("\\\n", " ")
    raise AssertionError(f"Makefile has no target {target!r}")


def test_make_lab_binds_loopback_only():
    recipe = make_recipe("lab")
    assert "jupyter lab" in recipe or "jupyter-lab" in recipe
    assert re.search(r"--(ServerApp|NotebookApp)\.ip=(127\.0\.0\.1|localhost)\b", recipe), recipe
    assert not re.search(r"--ip=|0\.0\.0\.0|\*", recipe.replace("notebooks/", "")), recipe
    assert "--no-browser" in recipe


def test_make_lab_never_disables_the_token():
    recipe = make_recipe("lab")
    words = shlex.split(recipe.replace(";", " ; "), posix=True)
    for word in words:
        for option in ("token", "password"):
            m = re.match(rf"^--\w+\.{option}=(.*)$", word)
            assert not (m and m.group(1).strip() == ""), f"make lab passes an empty {option}: {word!r}"
        assert not re.match(r"^JUPYTER_TOKEN=$", word), f"make lab sets an empty JUPYTER_TOKEN: {word!r}"
    assert "disable_check_xsrf" not in recipe and "allow_unauthenticated" not in recipe
