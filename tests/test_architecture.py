"""The package's shape: one direction of dependencies, lazy Keras, and an evaluate without TensorFlow."""

import ast
import os
import json
import subprocess
import sys
from pathlib import Path

import pytest

import hnet_keras

PACKAGE = Path(hnet_keras.__file__).parent
HEAVY = {"keras", "tensorflow", "jax", "torch"}
# The wings in the order data flows: a module imports only from its own wing or from a lower one.
LAYERS = ["geometry fileio", "data", "nets", "training", "plots", "features", "estimators", "scoring",
          "experiments", "cli", "__main__"]
RANK = {wing: rank for rank, names in enumerate(LAYERS) for wing in names.split()}


def _module_name(path):
    """``data.images`` for ``hnet_keras/data/images.py``; ``data`` for its ``__init__.py``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _imports():
    """Per module: ``[(imported name, inside a function?)]``; package modules by their dotted name
    inside the package (``data.images``), others by their top-level name."""
    found = {}
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(path) for path in paths}
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        local = {id(node) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for node in ast.walk(f)}
        name = _module_name(path)
        package = name.split(".") if path.name == "__init__.py" and name != "__init__" else name.split(".")[:-1]
        names = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    target = ".".join(parts[1:]) if parts[0] == "hnet_keras" else parts[0]
                    names.append((target or "__init__", id(node) in local))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                elif node.module.split(".")[0] == "hnet_keras":
                    base = []
                else:
                    names.append((node.module.split(".")[0], id(node) in local))
                    continue
                module = [p for p in (node.module or "").split(".") if p and p != "hnet_keras"]
                target = ".".join(base + module)
                for alias in node.names:  # ``from . import losses`` imports a module
                    candidate = f"{target}.{alias.name}" if target else alias.name
                    names.append((candidate if candidate in modules else target, id(node) in local))
        found[name] = sorted(set(names))
    return found


def _wing(module):
    return module.split(".")[0]


def test_the_import_graph_has_no_cycle():
    imports = _imports()
    graph = {module: {name for name, _ in names if name in imports} for module, names in imports.items()}
    state = {}

    def visit(module, trail):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(trail + [module])
        state[module] = "open"
        for target in sorted(graph[module]):
            visit(target, trail + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])
    assert {"cli", "scoring.evaluation", "scoring.real_pairs", "estimators.methods"} <= set(graph)


def test_the_library_is_in_wings_and_imports_only_downwards():
    imports = _imports()
    wings = set(map(_wing, imports))
    assert {"data", "nets", "training", "estimators", "scoring", "features", "cli"} <= wings
    assert set(map(_wing, imports)) - {"__init__"} <= set(RANK), "a module outside the known wings"
    upward = [f"{module} imports {target}" for module, names in imports.items() if module != "__init__"
              for target, _ in names if target in imports and target != "__init__"
              and _wing(target) != _wing(module) and RANK[_wing(target)] > RANK[_wing(module)]]
    assert upward == []


def test_only_the_command_line_parses_arguments():
    imports = _imports()
    parsing = sorted(module for module, names in imports.items() if ("argparse", False) in names
                     or ("argparse", True) in names)
    assert parsing and all(_wing(module) == "cli" for module in parsing), parsing
    assert not [module for module, names in imports.items() if _wing(module) not in ("cli", "__main__")
                for target, _ in names if _wing(target) == "cli"]


def test_imports_inside_functions_only_make_keras_lazy():
    imports = _imports()
    heavy = set(HEAVY)
    changed = True
    while changed:  # a package module is heavy when it imports a heavy one at module level
        before = len(heavy)
        heavy |= {module for module, names in imports.items() if any(n in heavy for n, inside in names if not inside)}
        changed = len(heavy) != before
    assert {"data.loaders", "nets.models", "nets.losses", "training.run"} <= heavy
    assert not heavy & {"scoring.evaluation", "estimators.methods", "estimators.predict", "nets.checkpoint",
                        "nets.targets", "training.presets", "data.synthesis", "scoring.real_pairs",
                        "scoring.robustness", "plots"}
    offending = [f"{module} imports {name}" for module, names in imports.items() if _wing(module) != "cli"
                 for name, inside in names if inside and name not in heavy]
    assert offending == []


# Runs the command line in a fresh interpreter and prints which heavy modules it loaded, and its exit code.
COMMAND_LINE = (
    "import sys, runpy\n"
    "sys.argv = ['hnet_keras'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('hnet_keras', run_name='__main__')\n"
    "except SystemExit as exit:\n"
    "    print('LOADED', sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules), exit.code)\n"
)


def _command_line(argv, cwd, timeout):
    return subprocess.run([sys.executable, "-c", COMMAND_LINE, *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})


def test_evaluate_on_classical_methods_never_imports_tensorflow(tmp_path):
    out = tmp_path / "r.json"
    done = _command_line(["evaluate", "--methods", "identity", "sift_ransac", "--pairs", "4", "--json", str(out),
                          "--no-progress"], PACKAGE.parent, 300)
    assert "LOADED [] 0" in done.stdout, done.stdout + done.stderr
    assert set(json.loads(out.read_text())["methods"]) == {"identity", "sift_ransac"}


@pytest.mark.parametrize("argv, code", [(["--help"], 0), (["train", "--help"], 0), (["train", "--bogus"], 2),
                                        (["evaluate", "--pairs", "-3", "--json", "x.json"], 2),
                                        (["make-dataset"], 2)])
def test_help_and_argument_errors_never_load_keras(tmp_path, argv, code):
    done = _command_line(argv, tmp_path, 120)
    assert f"LOADED [] {code}" in done.stdout, done.stdout + done.stderr
    if code:
        assert len(done.stderr.strip().splitlines()) == 1 and "error:" in done.stderr
