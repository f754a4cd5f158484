"""The command line prints only its own lines: the backend's start-up log stays out unless asked for."""

import json
import os
import subprocess
import sys

import pytest

from hnet_keras.data.images import embedded_photo_paths


def _run(*argv, verbose=False):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_CPP", "HNET_KERAS"))}
    if verbose:
        env["HNET_KERAS_VERBOSE"] = "1"
    return subprocess.run([sys.executable, "-m", "hnet_keras", *argv], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_estimate_prints_nothing_on_stderr_but_its_own_lines():
    photo = str(embedded_photo_paths("test")[0])
    done = _run("estimate", photo, photo)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["H_ab"]
    assert all(line.startswith("hnet_keras estimate:") for line in done.stderr.splitlines()), done.stderr
    loud = _run("estimate", photo, photo, verbose=True)
    assert loud.returncode == 0 and loud.stdout == done.stdout
