"""Data-parallel training on the engines' own strategies: which devices a run trains on.

:func:`plan_distribution` chooses, :func:`distribution_scope` enters the choice:

* TensorFlow backend: ``tf.distribute.MirroredStrategy`` over the chosen devices of this
  machine (its GPUs; its logical CPU devices when there is no GPU and a count is asked),
  or ``tf.distribute.MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several
  workers (each worker mirrors over all of its own GPUs).
* JAX backend: ``keras.distribution.DataParallel`` over the chosen devices, set as Keras's
  global distribution while the scope is open and restored afterwards.
* One device: nothing (a null scope).

Every replica sees a slice of each batch: the batch size is the *global* batch, split
evenly over the devices, and the gradients are averaged, so N devices train like one
device on the same batches (up to float rounding; TensorFlow's BatchNorm normalizes with
each replica's statistics, JAX's with the whole batch's). Under TensorFlow, a model must be
built inside the scope; under JAX, ``fit`` must run inside it too, so open the scope around
both.

A strategy is made once per process and kept (TensorFlow allows one collective
configuration per process): asking again for the same devices returns the same one.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field

import keras

__all__ = ["Distribution", "plan_distribution", "distribution_scope", "tf_config_workers"]

# Strategies already made in this process, by (kind, devices).
_STRATEGIES = {}


@dataclass(frozen=True)
class Distribution:
    """What :func:`plan_distribution` chose.

    Attributes:
        kind: ``"single"``, ``"mirrored"`` (TensorFlow, one machine), ``"multi_worker"``
            (TensorFlow, ``TF_CONFIG``) or ``"data_parallel"`` (JAX).
        backend: Keras's backend.
        devices: the names of this machine's devices that train (for ``"single"``, the one
            chosen, or ``()``: the backend's default device).
        workers: machines (processes) in the run; 1 except under ``"multi_worker"``.
        worker: this process's index among them (0 is the chief).
        engine: the strategy or Keras distribution (``None`` for ``"single"``).
    """

    kind: str
    backend: str
    devices: tuple = ()
    workers: int = 1
    worker: int = 0
    engine: object = field(default=None, repr=False, compare=False)

    @property
    def replicas(self):
        """Devices that share each batch, over all workers."""
        if self.kind == "multi_worker":
            return int(self.engine.num_replicas_in_sync)
        return max(1, len(self.devices))

    @property
    def is_chief(self):
        """Whether this process is the one that writes the run's files (worker 0)."""
        return self.worker == 0

    def describe(self):
        """One line, e.g. ``"MirroredStrategy over 2 devices (GPU:0, GPU:1)"``."""
        names = ", ".join(name.split("device:")[-1] for name in self.devices)
        if self.kind == "single":
            return f"one device ({keras.backend.backend()} default)"
        if self.kind == "mirrored":
            return f"MirroredStrategy over {len(self.devices)} devices ({names})"
        if self.kind == "data_parallel":
            return f"keras.distribution.DataParallel over {len(self.devices)} JAX devices ({names})"
        return (f"MultiWorkerMirroredStrategy: worker {self.worker} of {self.workers}, "
                f"{self.replicas} replicas in all")

    def check_batch_size(self, batch_size):
        """Raise a one-line ``ValueError`` unless ``batch_size`` splits evenly over the replicas."""
        if batch_size % self.replicas:
            raise ValueError(f"batch size {batch_size} does not split evenly over {self.replicas} devices; "
                             "choose a multiple of the device count (the batch size is the global batch)")

    def scope(self):
        """The context manager that makes this distribution current."""
        if self.kind == "single":
            return contextlib.nullcontext()
        return self.engine.scope()


def tf_config_workers(text=None):
    """``(workers, index)`` named by ``TF_CONFIG`` (``text``, default the environment's);
    ``(1, 0)`` when it is unset or names a single worker.

    Workers are the ``chief`` and ``worker`` tasks of ``cluster``; the chief is index 0.

    Raises:
        ValueError: ``TF_CONFIG`` is not JSON, has no ``cluster`` / ``task``, names a parameter
            server (not supported), or its task is not in the cluster.
    """
    text = os.environ.get("TF_CONFIG", "") if text is None else text
    if not text.strip():
        return 1, 0
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG: not JSON ({error})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not all(isinstance(v, list) for v in cluster.values()):
        raise ValueError('TF_CONFIG: needs "cluster": {"worker": ["host:port", ...]}')
    if set(cluster) - {"chief", "worker"}:
        raise ValueError(f"TF_CONFIG: only chief and worker tasks are supported (data parallelism), "
                         f"got {', '.join(sorted(set(cluster) - {'chief', 'worker'}))}")
    names = [*cluster.get("chief", []), *cluster.get("worker", [])]
    if len(names) <= 1:
        return 1, 0
    task = config.get("task")
    kind = task.get("type") if isinstance(task, dict) else None
    index = task.get("index") if isinstance(task, dict) else None
    if kind not in ("chief", "worker") or type(index) is not int or not 0 <= index < len(cluster.get(kind, [])):
        raise ValueError(f'TF_CONFIG: "task" must name a chief or worker of the cluster by index, got {task!r}')
    return len(names), index + (len(cluster.get("chief", [])) if kind == "worker" else 0)


def _check_count(devices):
    if devices is None:
        return None
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices must be a positive integer, got {devices!r}")
    return devices


def _choose(available, devices, kind, note=""):
    """The first ``devices`` of ``available`` (``None``: all of them); ``kind`` names them."""
    if devices is not None and devices > len(available):
        count = len(available)
        raise ValueError(f"{devices} devices asked for, but only {count} {kind} device{'s are' if count != 1 else ' is'} "
                         f"visible{note} ({', '.join(available) or 'none'})")
    return tuple(available[: devices or len(available)])


def _made(kind, devices, make):
    key = (kind, devices)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = make()
    return _STRATEGIES[key]


def _multi_worker_strategy():
    """``tf.distribute.MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3 gives it.

    Keras 3's ``fit`` calls ``reduce`` with a tuple (its first ``(x, y)`` batch, for the
    shapes) and with ``axis=0`` on scalar logs (loss, metrics), both of which TensorFlow's
    multi-worker strategy refuses (keras-team/keras#20585). This reduces each value of a
    nest in turn, and a scalar across the replicas only, as the one-machine
    ``MirroredStrategy`` path of Keras does.
    """
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis=None):
            parent = super().reduce

            def one(item):
                local = self.experimental_local_results(item)[0]
                scalar = getattr(local, "shape", None) is not None and local.shape.rank == 0
                return parent(reduce_op, item, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerMirroredStrategy()


def _tensorflow(devices):
    import tensorflow as tf

    workers, index = tf_config_workers()
    if workers > 1:
        gpus = tf.config.list_physical_devices("GPU")
        if devices is not None and devices != max(1, len(gpus)):
            raise ValueError(f"{devices} devices asked for, but a TF_CONFIG worker trains on all of its "
                             f"{max(1, len(gpus))} visible device(s); choose a worker's GPUs with "
                             "CUDA_VISIBLE_DEVICES instead")
        try:
            strategy = _made("multi_worker", None, _multi_worker_strategy)
        except RuntimeError as error:  # "Collective ops must be configured at program startup"
            raise ValueError(f"TF_CONFIG names {workers} workers, but TensorFlow already ran in this process "
                             f"({error}); open the distribution scope before anything else") from None
        return Distribution("multi_worker", "tensorflow", tuple(d.name for d in gpus), workers, index, strategy)
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if gpus:
        chosen = _choose(gpus, devices, "GPU")
    elif devices is None:
        chosen = ()  # several CPU devices are used only when asked for
    else:
        chosen = _choose([device.name for device in tf.config.list_logical_devices("CPU")], devices, "CPU",
                         ", and no GPU")
    if len(chosen) <= 1:
        return Distribution("single", "tensorflow", chosen)
    strategy = _made("mirrored", chosen, lambda: tf.distribute.MirroredStrategy(list(chosen)))
    return Distribution("mirrored", "tensorflow", chosen, engine=strategy)


def _jax(devices):
    if tf_config_workers()[0] > 1:
        raise ValueError("TF_CONFIG names several workers, which only the TensorFlow backend uses; "
                         "unset it, or train with KERAS_BACKEND=tensorflow")
    available = keras.distribution.list_devices()
    if devices is None and available and available[0].startswith("cpu"):
        available = available[:1]  # several CPU devices are used only when asked for
    chosen = _choose(available, devices, "JAX")
    if len(chosen) <= 1:
        return Distribution("single", "jax", chosen)
    engine = _made("data_parallel", chosen, lambda: keras.distribution.DataParallel(devices=list(chosen)))
    return Distribution("data_parallel", "jax", chosen, engine=engine)


def plan_distribution(devices=None):
    """Choose how to spread training over this machine's (and the cluster's) devices.

    Args:
        devices: how many devices of this machine train; ``None``: all visible GPUs (TPUs
            under JAX), or under ``TF_CONFIG`` all of each worker's. CPU devices (logical
            ones made with ``tf.config.set_logical_device_configuration``, or JAX's host
            devices of ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) are used only
            when a count is given. 1 is one device: nothing is distributed.

    Returns:
        A :class:`Distribution`; its :meth:`~Distribution.scope` is the context to build and
        train in, :meth:`~Distribution.describe` says what was chosen.

    Raises:
        ValueError: ``devices`` is not a positive integer or more than are visible, a bad
            ``TF_CONFIG``, or a backend without a data-parallel path (one line each).
    """
    devices = _check_count(devices)
    backend = keras.backend.backend()
    if devices == 1 and tf_config_workers()[0] == 1:
        return Distribution("single", backend)  # without asking the backend for its devices
    if backend == "tensorflow":
        return _tensorflow(devices)
    if backend == "jax":
        return _jax(devices)
    if devices not in (None, 1) or tf_config_workers()[0] > 1:
        raise ValueError(f"data-parallel training needs the tensorflow or jax backend, not {backend}")
    return Distribution("single", backend)


@contextlib.contextmanager
def distribution_scope(devices=None):
    """Train inside: ``with distribution_scope(2) as distribution: ...`` builds and fits the
    model data-parallel (see :func:`plan_distribution`); yields the :class:`Distribution`.
    Keras's previous global distribution is restored on exit."""
    distribution = plan_distribution(devices)
    with distribution.scope():
        yield distribution
