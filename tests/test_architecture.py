"""The package's shape: one direction of dependencies, lazy Keras, and an evaluate without TensorFlow."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import hnet_keras

PACKAGE = Path(hnet_keras.__file__).parent
HEAVY = {"keras", "tensorflow", "jax", "torch"}


def _imports():
    """Per module: ``[(imported name, inside a function?)]``, package modules as their short name."""
    found = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        local = {id(node) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for node in ast.walk(f)}
        names = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [(alias.name.split(".")[0], id(node) in local) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [alias.name for alias in node.names]
                names += [(target.split(".")[0], id(node) in local) for target in targets]
            elif isinstance(node, ast.ImportFrom):
                names.append((node.module.split(".")[0], id(node) in local))
        found[path.stem] = names
    return found


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
    assert {"cli", "evaluation", "real_pairs", "methods"} <= set(graph)
    assert not any("cli" in targets for module, targets in graph.items() if module != "__main__")


def test_imports_inside_functions_only_make_keras_lazy():
    imports = _imports()
    heavy = set(HEAVY)
    changed = True
    while changed:  # a package module is heavy when it imports a heavy one at module level
        before = len(heavy)
        heavy |= {module for module, names in imports.items() if any(n in heavy for n, inside in names if not inside)}
        changed = len(heavy) != before
    assert {"loaders", "models", "losses", "training", "predict"} <= heavy
    assert not heavy & {"evaluation", "methods", "checkpoint", "synthesis", "real_pairs", "robustness", "plots"}
    offending = [f"{module} imports {name}" for module, names in imports.items()
                 for name, inside in names if inside and name not in heavy]
    assert offending == []


def test_evaluate_on_classical_methods_never_imports_tensorflow(tmp_path):
    script = (
        "import sys, runpy\n"
        "sys.argv = ['hnet_keras'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('hnet_keras', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    print('LOADED', sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules), exit.code)\n"
    )
    out = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, "-c", script, "evaluate", "--methods", "identity", "sift_ransac", "--pairs", "4",
         "--json", str(out), "--no-progress"],
        capture_output=True, text=True, cwd=PACKAGE.parent, timeout=300,
    )
    assert "LOADED [] 0" in done.stdout, done.stdout + done.stderr
    assert set(json.loads(out.read_text())["methods"]) == {"identity", "sift_ransac"}
