"""The notebooks' first cell: the same in every notebook, it finds the repository from a clone, and
outside one (a fresh Colab) it says how to proceed instead of raising."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _setup_cell(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "".join(cells[1]["source"])


def _run(source, cwd, **env):
    """The cell's Python (its one IPython magic, ``%matplotlib inline``, left out) in a fresh process."""
    code = "\n".join(line for line in source.splitlines() if not line.startswith("%"))
    code += "\nprint('ROOT', ROOT)\nprint('CWD', __import__('os').getcwd())\n"
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("HNET_KERAS_REPOSITORY", "PYTHONPATH")}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**environment, **env})


def test_every_notebook_has_the_same_setup_cell():
    assert len(NOTEBOOKS) >= 13
    cells = {notebook.name: _setup_cell(notebook) for notebook in NOTEBOOKS}
    assert len(set(cells.values())) == 1, "the set-up cells differ"
    assert "%matplotlib inline" in next(iter(cells.values()))


def test_outside_a_clone_without_a_url_it_says_how_to_proceed(tmp_path):
    done = _run(_setup_cell(NOTEBOOKS[0]), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "hnet_keras is not here" in done.stdout and "REPOSITORY" in done.stdout
    assert "ROOT None" in done.stdout and f"CWD {tmp_path}" in done.stdout  # nothing cloned, no folder changed
    assert not (tmp_path / "hnet_keras").exists()
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_from_the_notebooks_folder_it_finds_the_repository_and_loads_keras():
    done = _run(_setup_cell(NOTEBOOKS[0]) + "\nprint('KERAS', keras.__version__)", ROOT / "notebooks")
    assert done.returncode == 0, done.stderr
    assert f"ROOT {ROOT}" in done.stdout and f"CWD {ROOT}" in done.stdout and "KERAS 3." in done.stdout
    assert "not here" not in done.stdout
