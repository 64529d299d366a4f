"""The contributor docs stay true: every path and module docs/architecture.md names exists,
and the README's and the architecture's links lead to files the repository holds."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# A repository path: piyasa/db/models.py, tests/e2e/, .ci/run, chatops/commands/<capability>.py
PATH = re.compile(r"(?<![\w./-])((?:piyasa|chatops|tests|migrations|docs|scripts|\.ci)/[\w./<>-]*)")
# A dotted module reference such as `python -m piyasa.runtime`
MODULE = re.compile(r"(?<![\w./-])((?:piyasa|chatops)(?:\.[a-z_][a-z0-9_]*)+)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def named_paths() -> list[str]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    return sorted({m.rstrip(".,:;") for m in PATH.findall(text)})


def test_the_architecture_names_many_paths() -> None:
    paths = named_paths()
    assert len(paths) > 50, paths
    for must in ("chatops/pipeline.py", "chatops/commands/registry.py", "piyasa/admin/"):
        assert must in paths


@pytest.mark.parametrize("path", named_paths())
def test_every_path_in_the_architecture_exists(path: str) -> None:
    if "<" in path:  # a placeholder for a file to add: its directory must exist
        path = path.split("<", 1)[0]
        assert path.endswith("/"), path
    assert (ROOT / path).exists(), f"docs/architecture.md names {path}, which does not exist"


def test_every_module_in_the_architecture_exists() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    missing = []
    for dotted in sorted(set(MODULE.findall(text))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr, None)
            if obj is None:
                missing.append(dotted)
            break
        else:
            missing.append(dotted)
    assert not missing, missing


@pytest.mark.parametrize("doc", ["README.md", "docs/architecture.md"])
def test_relative_links_lead_to_files(doc: str) -> None:
    source = ROOT / doc
    links = [
        link
        for link in LINK.findall(source.read_text(encoding="utf-8"))
        if "://" not in link and not link.startswith("mailto:")
    ]
    assert links, doc
    missing = [link for link in links if not (source.parent / link).exists()]
    assert not missing, missing


def test_readme_design_section_points_to_the_architecture() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    design = readme.split("## Design", 1)[1].split("\n## ", 1)[0]
    assert "(docs/architecture.md)" in design
    assert "DESIGN.md" not in design
