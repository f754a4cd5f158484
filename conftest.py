"""Settings for the whole test run, notebooks included.

The nbval kernels inherit this environment: TensorFlow's C++ logging is quietened so it
stays out of the compared cell outputs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
