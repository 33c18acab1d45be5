"""Notebooks are built from notebooks/build.py and executed, so they cannot rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def _builder():
    spec = importlib.util.spec_from_file_location("nb_build", NB_DIR / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_notebooks_match_their_source():
    for name, text in _builder().render_all().items():
        committed = (NB_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run python notebooks/build.py"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_builder().NOTEBOOKS))
def test_notebook_executes(name: str, tmp_path: Path):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
