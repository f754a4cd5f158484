"""The quickstart, ``python -m hnet_keras demo``: offline, on the embedded photos, with the shipped checkpoint
(or, where there is none, a smoke-trained model, and it says so), it prints the table
against the OpenCV baselines and saves figures.
"""

from __future__ import annotations

from pathlib import Path

from ..estimators.methods import DEFAULT_BASELINES, NETWORK_METHODS
from ..nets.checkpoint import load_checkpoint, shipped_checkpoint
from ..plots import plot_mace_bars, plot_pair, save_figure
from .evaluation import evaluate, load_test_set

__all__ = ["run_demo"]


def _model_for_demo(checkpoint, out, seed):
    """``(model, rho, note)`` from a checkpoint, the shipped one, or a smoke training run."""
    path = Path(checkpoint) if checkpoint else shipped_checkpoint()
    if path.exists():
        model, rho = load_checkpoint(path)
        return model, rho, f"network: {path}"
    from ..training.run import train  # Keras, only when a model must be trained

    result = train("smoke", run="demo_smoke", checkpoint_dir=Path(out) / "checkpoints", seed=seed,
                   resume=False, verbose=0)
    note = (f"no checkpoint at {path}: trained the smoke preset first "
            f"({result.history[-1]['iterations']} iterations, a wiring check, not a useful model)")
    return result.model, result.preset.rho, note


def run_demo(out="demo_output", pairs=200, seed=0, checkpoint=None, progress=True, refine=True):
    """The quickstart: network (and, with ``refine``, network + ECC) vs OpenCV baselines
    on held-out embedded photos.

    Returns:
        the :class:`hnet_keras.scoring.evaluation.Evaluation`; figures and a JSON go to ``out``.
    """
    if checkpoint and not Path(checkpoint).exists():  # a mistyped path must not fall back to a throwaway model
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    import keras  # for its seed

    out = Path(out)
    model, rho, note = _model_for_demo(checkpoint, out, seed)
    print(note)
    test_set = load_test_set(protocol="train", seed=seed, count=pairs)
    keras.utils.set_random_seed(seed)
    networks = list(NETWORK_METHODS if refine else NETWORK_METHODS[:1])
    result = evaluate(test_set, methods=list(DEFAULT_BASELINES) + networks, model=model, network_rho=rho, progress=progress)
    print(f"{len(test_set.pairs)} pairs from {test_set.source}, seed {seed}")
    print(result.table())
    out.mkdir(parents=True, exist_ok=True)
    result.write_json(out / "demo.json")
    save_figure(plot_mace_bars(result), out / "mace_bars.png")
    shown = networks[-1]
    predicted = result.predictions[shown]
    save_figure(
        plot_pair(test_set.pairs[0, :, :, 0], test_set.pairs[0, :, :, 1], test_set.offsets[0], predicted[0],
                  title=shown),
        out / "example_pair.png",
    )
    print(f"wrote {out / 'demo.json'}, {out / 'mace_bars.png'} and {out / 'example_pair.png'}")
    return result
