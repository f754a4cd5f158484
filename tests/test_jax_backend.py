"""Losses, models and training under the JAX backend.

Keras fixes its backend when it is first imported, so the JAX run happens in a
subprocess started with ``KERAS_BACKEND=jax``.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax", reason="jax is not installed (pip install 'jax[cpu]'); the JAX backend cannot be tested")

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from hnet_keras.nets.losses import euclidean_l2
    from hnet_keras.nets.losses import _mace as mace
    from hnet_keras.nets.models import build_model
    from hnet_keras.estimators.predict import predict_offsets
    from hnet_keras.training.run import train

    out = {"backend": keras.backend.backend()}
    y_true = np.zeros((1, 8), np.float32)
    y_pred = np.array([[3, 4, 0, 0, -6, 8, 1, 0]], np.float32)
    out["l2"] = float(np.asarray(euclidean_l2(y_true, y_pred))[0])
    out["mace"] = float(np.asarray(mace(y_true, y_pred / 32, rho=32))[0])
    out["paper_parameters"] = build_model("regression").count_params()
    out["classification_shape"] = list(build_model("classification", input_size=32, width=0.125).output_shape[1:])

    first = train("smoke", checkpoint_dir=sys.argv[1], iterations=20, verbose=0)
    resumed = train("smoke", checkpoint_dir=sys.argv[1], iterations=30, verbose=0)
    out["iterations"] = [row["iterations"] for row in resumed.history]
    out["resumed_from"] = resumed.resumed_from
    out["losses"] = [row["loss"] for row in resumed.history]
    restored = keras.saving.load_model(resumed.directory / "last.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 2)).astype(np.float32)
    out["reload_exact"] = bool(np.array_equal(restored.predict(x, verbose=0), resumed.model.predict(x, verbose=0)))
    pairs = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 2), dtype=np.uint8)
    out["predict_shape"] = list(predict_offsets(resumed.model, pairs, rho=8).shape)
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_losses_models_and_training_run_under_jax(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax"
    assert out["l2"] == pytest.approx(np.hypot(np.hypot(3, 4), np.hypot(np.hypot(6, 8), 1)), rel=1e-5)
    assert out["mace"] == pytest.approx(4.0, rel=1e-5)
    assert out["paper_parameters"] == 34_195_336
    assert out["classification_shape"] == [8, 21]
    assert out["resumed_from"] == 2 and out["iterations"] == [10, 20, 30]
    assert all(np.isfinite(out["losses"]))
    assert out["reload_exact"]
    assert out["predict_shape"] == [2, 8]

