"""Settings for the whole test run, notebooks included.

The nbval kernels inherit this environment: TensorFlow's C++ logging is quietened so it
stays out of the compared cell outputs. Every notebook cell is marked ``slow``, so
``python -m pytest -m "not slow"`` is the fast lane of unit tests.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
