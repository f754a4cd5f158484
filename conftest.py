"""Settings for the whole test run, notebooks included.

The nbval kernels inherit this environment: TensorFlow's C++ logging is quietened so it
stays out of the compared cell outputs. Every notebook cell is marked ``slow``, so
``python -m pytest -m "not slow"`` is the fast lane of unit tests.

Ctrl-C is given back its default meaning: a job started in the background by a non-interactive
shell (``cmd &``, as some CI runners do) inherits SIGINT *ignored*, and so would every process a
test starts, so the tests that press Ctrl-C would measure nothing but the ignored signal.
"""

import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # its children then start with the default


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
