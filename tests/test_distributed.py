"""Data-parallel training (hnet_keras.training.distribute) on this CPU: two logical CPU devices
under TensorFlow's MirroredStrategy, two host devices under JAX's DataParallel, and two workers
on 127.0.0.1 under MultiWorkerMirroredStrategy, each against one device on the same global
batches. Every engine runs in its own process, so this process's TensorFlow state is untouched.
``python -m pytest -k distributed`` selects exactly these tests."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from hnet_keras.training.distribute import Distribution, distribution_scope, plan_distribution, tf_config_workers

ROOT = Path(__file__).resolve().parents[1]

# Trains the smoke recipe's model (no BatchNorm or dropout, so one device and N devices
# compute the same function) for 2 epochs of 3 batches of 16 held-out-free embedded-photo
# pairs, on one device and then on DEVICES devices from the same initial weights; prints
# RESULT and a JSON line. MODE "multi": a run under TF_CONFIG from the seed's weights, then the
# same on this worker's one device.
_WORKER = r'''
import json, sys
mode, devices = sys.argv[1], int(sys.argv[2])
if mode == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
import keras
import numpy as np
from hnet_keras.data.images import embedded_photo_paths
from hnet_keras.nets.models import build_model
from hnet_keras.training.distribute import distribution_scope, plan_distribution
from hnet_keras.training.presets import get_preset
from hnet_keras.training.run import compile_model, on_the_fly

preset = get_preset("smoke", batchnorm=False, dropout=False, optimizer="sgd", learning_rate=0.01,
                    lr_drop_every=None)
data = on_the_fly(preset, embedded_photo_paths("train"), 3, seed=0, fixed=True)
keras.utils.set_random_seed(0)
start = None if mode == "multi" else build_model(preset.kind, **preset.model_options()).get_weights()
result = {"backend": keras.backend.backend()}
# Under TF_CONFIG the multi-worker strategy must come first, before TensorFlow runs anything.
for count in ([None, 1] if mode == "multi" else [1, devices]):
    with distribution_scope(count) as distribution:
        model = compile_model(build_model(preset.kind, **preset.model_options()), preset)
        if start is None:
            start = model.get_weights()
        model.set_weights(start)
        history = model.fit(data, epochs=2, shuffle=False, verbose=0)
        first = model.trainable_variables[0].value
        result[str(count)] = {
            "kind": distribution.kind, "replicas": distribution.replicas, "worker": distribution.worker,
            "describe": distribution.describe(), "loss": history.history["loss"],
            "weights": np.concatenate([w.ravel() for w in model.get_weights()]).tolist(),
            "variable": type(first).__name__,
            "shards": len(getattr(getattr(first, "sharding", None), "device_set", ())),
        }
    result["restored"] = str(keras.distribution.distribution()) if result["backend"] == "jax" else None
try:
    plan_distribution(devices + 1)
except ValueError as error:
    result["too_many"] = str(error)
print("RESULT " + json.dumps(result))
'''


def _environment(backend, **more):
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CONFIG", "XLA_FLAGS")}
    env.update(KERAS_BACKEND=backend, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONWARNINGS="ignore", **more)
    return env


def _result(output, where):
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, f"{where} printed no result:\n{output[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def _run_worker(tmp_path, mode, devices, env, timeout=240):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    done = subprocess.run([sys.executable, str(script), mode, str(devices)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return _result(done.stdout, mode)


def _assert_same_training(one, many):
    """N devices train like one on the same global batches: same losses, same weights."""
    np.testing.assert_allclose(many["loss"], one["loss"], rtol=1e-4)
    assert many["loss"][1] < many["loss"][0]  # it trained
    np.testing.assert_allclose(many["weights"], one["weights"], rtol=1e-4, atol=1e-5)


def test_distributed_devices_argument_is_checked_before_any_engine_runs():
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ValueError, match="devices must be a positive integer"):
            plan_distribution(bad)
    before = keras.distribution.distribution() if keras.backend.backend() == "jax" else None
    with distribution_scope(1) as distribution:  # one device: nothing to set up
        assert (distribution.kind, distribution.replicas, distribution.engine) == ("single", 1, None)
        assert distribution.describe().startswith("one device")
    assert (keras.distribution.distribution() if keras.backend.backend() == "jax" else None) is before


def test_distributed_batch_size_must_split_evenly_over_the_devices():
    two = Distribution("mirrored", "tensorflow", ("/device:GPU:0", "/device:GPU:1"))
    assert (two.replicas, two.is_chief) == (2, True)
    two.check_batch_size(64)
    with pytest.raises(ValueError, match="batch size 63 does not split evenly over 2 devices"):
        two.check_batch_size(63)
    assert two.describe() == "MirroredStrategy over 2 devices (GPU:0, GPU:1)"


def test_distributed_tf_config_names_the_workers_and_this_ones_index():
    cluster = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222", "10.0.0.3:2222"]}
    assert tf_config_workers("") == (1, 0)
    assert tf_config_workers(json.dumps({"cluster": {"worker": ["a:1"]}})) == (1, 0)
    assert tf_config_workers(json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 2}})) == (3, 2)
    with_chief = {"chief": ["10.0.0.9:2222"], **cluster}
    assert tf_config_workers(json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})) == (4, 0)
    assert tf_config_workers(json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})) == (4, 1)
    bad = {
        "{not json": "not JSON",
        json.dumps({"task": {}}): '"cluster"',
        json.dumps({"cluster": {**cluster, "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}}): "got ps",
        json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 3}}): '"task" must name',
        json.dumps({"cluster": cluster}): '"task" must name',
    }
    for text, message in bad.items():
        with pytest.raises(ValueError, match=message):
            tf_config_workers(text)


@pytest.mark.slow
def test_distributed_mirrored_strategy_on_two_logical_cpus_trains_like_one_device(tmp_path):
    result = _run_worker(tmp_path, "tensorflow", 2, _environment("tensorflow"))
    one, two = result["1"], result["2"]
    assert (one["kind"], one["variable"]) == ("single", "ResourceVariable")
    assert (two["kind"], two["replicas"], two["variable"]) == ("mirrored", 2, "MirroredVariable")
    assert two["describe"] == "MirroredStrategy over 2 devices (CPU:0, CPU:1)"
    _assert_same_training(one, two)
    assert result["too_many"].startswith("3 devices asked for, but only 2 CPU devices are visible, and no GPU")


@pytest.mark.slow
def test_distributed_jax_data_parallel_on_two_host_devices_trains_like_one_device(tmp_path):
    pytest.importorskip("jax")
    env = _environment("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    result = _run_worker(tmp_path, "jax", 2, env)
    one, two = result["1"], result["2"]
    assert (one["kind"], one["shards"]) == ("single", 1)
    # The variables live on both devices: Keras's DataParallel laid them out.
    assert (two["kind"], two["replicas"], two["shards"]) == ("data_parallel", 2, 2)
    _assert_same_training(one, two)
    assert result["restored"] == "None"  # the previous (no) distribution is back
    assert result["too_many"] == "3 devices asked for, but only 2 JAX devices are visible (cpu:0, cpu:1)"


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for one in sockets:
        one.bind(("127.0.0.1", 0))
    ports = [one.getsockname()[1] for one in sockets]
    for one in sockets:
        one.close()
    return ports


@pytest.mark.slow
def test_distributed_multi_worker_mirrored_strategy_on_two_local_workers(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen([sys.executable, str(script), "multi", "1"], cwd=tmp_path,
                                        env=_environment("tensorflow", TF_CONFIG=config),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=150)[0])  # bounded: a lost peer never hangs the test
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert [worker.returncode for worker in workers] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    runs = [_result(output, f"worker {index}")["None"] for index, output in enumerate(outputs)]
    assert [(run["kind"], run["worker"], run["replicas"]) for run in runs] == [("multi_worker", 0, 2),
                                                                              ("multi_worker", 1, 2)]
    assert runs[0]["describe"] == "MultiWorkerMirroredStrategy: worker 0 of 2, 2 replicas in all"
    assert runs[0]["variable"] == "MirroredVariable"
    # The losses are all-reduced over both workers and the weights are kept in step.
    assert runs[0]["loss"] == runs[1]["loss"] and runs[0]["loss"][1] < runs[0]["loss"][0]
    np.testing.assert_array_equal(runs[0]["weights"], runs[1]["weights"])
    # Each worker trained on half of every global batch: together, as one device on all of it.
    _assert_same_training(_result(outputs[0], "worker 0")["1"], runs[0])
