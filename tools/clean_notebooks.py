"""Strip what a notebook run leaves behind that nobody should compare or commit: stored widget
state (the progress bars' frozen models), widget views in the outputs of cells nbval ignores,
and execution timestamps.

    python tools/clean_notebooks.py [NOTEBOOK ...]      # strip in place (default: notebooks/*.ipynb)
    python tools/clean_notebooks.py --check [NOTEBOOK ...]  # list what is left, exit 1 if any

``tests/test_notebook_hygiene.py`` runs the check on every notebook, so CI fails on a dirty one.
"""

import argparse
import json
import sys
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _ignored(cell):
    return "NBVAL_IGNORE_OUTPUT" in "".join(cell.get("source", [])) or "nbval-ignore-output" in cell.get(
        "metadata", {}).get("tags", [])


def leftovers(notebook):
    """What ``notebook`` (a parsed .ipynb) holds that should not be committed, as short lines."""
    found = []
    if "widgets" in notebook.get("metadata", {}):
        found.append("stored widget state (metadata.widgets)")
    for index, cell in enumerate(notebook.get("cells", [])):
        if "execution" in cell.get("metadata", {}):
            found.append(f"cell {index}: execution timestamps")
        if any(WIDGET_VIEW in output.get("data", {}) for output in cell.get("outputs", [])):
            found.append(f"cell {index}: a widget view in its outputs")
    return found


def clean(notebook):
    """Strip the leftovers in place; a widget view in a compared cell is kept (nbval would miss it)."""
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook.get("cells", []):
        cell.get("metadata", {}).pop("execution", None)
        if "outputs" in cell and _ignored(cell):
            cell["outputs"] = [o for o in cell["outputs"] if WIDGET_VIEW not in o.get("data", {})]
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="only list what is left; exit 1 if anything is")
    args = parser.parse_args(argv)
    dirty = 0
    for path in args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        found = leftovers(notebook)
        if args.check:
            dirty += bool(found)
            for line in found:
                print(f"{path}: {line}")
        elif found:
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(json.dumps(clean(notebook), indent=1, ensure_ascii=False) + "\n")
            temporary.replace(path)
            print(f"{path}: stripped {len(found)} leftover(s)")
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main())
