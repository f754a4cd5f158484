"""Committed notebooks hold no widget state, widget views nbval ignores, or execution timestamps."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("clean_notebooks", ROOT / "tools" / "clean_notebooks.py")
clean_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clean_notebooks)


def test_every_committed_notebook_is_clean():
    dirty = {path.name: clean_notebooks.leftovers(json.loads(path.read_text()))
             for path in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    assert {name: found for name, found in dirty.items() if found} == {}, "run python tools/clean_notebooks.py"


def test_the_cleaner_strips_exactly_the_leftovers(tmp_path):
    view = {"output_type": "display_data", "metadata": {},
            "data": {clean_notebooks.WIDGET_VIEW: {"model_id": "x"}, "text/plain": "0epoch [00:00, ?epoch/s]"}}
    text = {"output_type": "stream", "name": "stdout", "text": ["MACE 3.1 px\n"]}
    notebook = {"metadata": {"widgets": {"state": {}}, "kernelspec": {"name": "python3"}}, "nbformat": 4,
                "nbformat_minor": 5, "cells": [
                    {"cell_type": "code", "metadata": {"execution": {"iopub.status.busy": "2026"}},
                     "source": ["# NBVAL_IGNORE_OUTPUT\n", "train()"], "outputs": [view, text], "execution_count": 1},
                    {"cell_type": "code", "metadata": {}, "source": ["print(1)"], "outputs": [view],
                     "execution_count": 2}]}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook))
    assert clean_notebooks.main(["--check", str(path)]) == 1
    assert clean_notebooks.main([str(path)]) == 0
    cleaned = json.loads(path.read_text())
    assert cleaned["metadata"] == {"kernelspec": {"name": "python3"}}
    assert cleaned["cells"][0]["outputs"] == [text] and cleaned["cells"][0]["metadata"] == {}
    assert cleaned["cells"][1]["outputs"] == [view]  # a compared cell keeps what nbval compares
    assert clean_notebooks.leftovers(cleaned) == ["cell 1: a widget view in its outputs"]
