"""Training recipes as data (no Keras, so the command line lists them without loading a backend):
:class:`Preset`, the named :data:`PRESETS`, and the runs of the notebooks' experiments at each
budget (:func:`experiment_runs`, run by :mod:`hnet_keras.experiments`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..data.augment import DEFAULT_AUGMENTATION, REAL_PAIR_AUGMENTATION
from ..data.motion import MOTIONS
from ..data.synthesis import REPORT_PATCH, SynthesisConfig
from ..nets.checkpoint import describe_model
from ..nets.targets import MODEL_KINDS, model_options, unreachable_bins

__all__ = ["Preset", "AUGMENTATIONS", "PRESETS", "get_preset", "BUDGETS", "GPU_STEPS", "EXPERIMENTS", "Run", "experiment_runs"]


AUGMENTATIONS = {"default": DEFAULT_AUGMENTATION, "real": REAL_PAIR_AUGMENTATION}
"""A preset's ``photometrics``: the augmentations by name."""


@dataclass(frozen=True)
class Preset:
    """A training recipe, as data.

    Attributes:
        name: the preset's name (the default run name).
        kind: the model, see :func:`hnet_keras.nets.models.build_model`.
        image_size: ``(width, height)`` images are prepared to for on-the-fly pairs.
        input_size: patch side, the model's input.
        rho: largest corner perturbation; the targets are ``offsets / rho``.
        width: filter/unit multiplier of the model.
        dropout, batchnorm: the ablation switches of the model.
        bins: classification bins per coordinate.
        batch_size: pairs per step.
        iterations: optimizer steps of the whole run.
        steps_per_epoch: steps between checkpoints with on-the-fly data (with
            archives an epoch is one pass over them).
        optimizer: ``"sgd"`` (with ``momentum``), ``"adam"``, or ``"adamw"`` (weight decay
            1e-4, gradient clipping at 1, ``warmup_steps`` of linear warm-up to
            ``learning_rate`` then cosine decay to 1% of it at ``iterations``: the
            recipe of the iterative model).
        learning_rate: initial (``adamw``: peak) learning rate.
        momentum: SGD momentum.
        lr_drop_every: the learning rate is multiplied by ``lr_drop_factor`` every
            this many iterations (staircase); ``None`` keeps it constant.
        lr_drop_factor: see ``lr_drop_every``.
        validation_batches: batches of the held-out set evaluated each epoch.
        patch_size: side of the synthesized patches, resized to ``input_size`` for the
            model (``None``: ``input_size``). Synthesis then uses ``rho * patch_size /
            input_size``, so the targets are the same numbers.
        refinements: steps of the iterative model.
        augment: change each patch photometrically (:data:`hnet_keras.data.augment.DEFAULT_AUGMENTATION`).
        warmup_steps: ``adamw``'s warm-up.
        weights: the MobileNetV2 trunk's initial weights (``"imagenet"`` downloads them).
        standardize: the paper model standardizes each patch first (see :func:`~hnet_keras.nets.models.build_model`).
        motion: ``None`` for DeTone's corner perturbation, or a name in
            :data:`hnet_keras.data.motion.MOTIONS` (``"large"``: rotation, zoom, viewpoint, shift).
        photometrics: the augmentation's ranges when ``augment``, a name in :data:`AUGMENTATIONS`.
    """

    name: str
    kind: str = "regression"
    image_size: tuple = (320, 240)
    input_size: int = 128
    rho: int = 32
    width: float = 1.0
    dropout: bool = True
    batchnorm: bool = True
    bins: int = 21
    batch_size: int = 64
    iterations: int = 90_000
    steps_per_epoch: int = 1000
    optimizer: str = "sgd"
    learning_rate: float = 0.005
    momentum: float = 0.9
    lr_drop_every: int | None = 30_000
    lr_drop_factor: float = 0.1
    validation_batches: int = 50
    patch_size: int | None = None
    refinements: int = 6
    augment: bool = False
    warmup_steps: int = 0
    weights: str | None = None
    standardize: bool = False
    motion: str | None = None
    photometrics: str = "default"

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {self.optimizer!r}")
        for name in ("batch_size", "iterations", "steps_per_epoch", "validation_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.motion is not None and self.motion not in MOTIONS:
            raise ValueError(f"motion must be None or one of {', '.join(MOTIONS)}, got {self.motion!r}")
        if self.photometrics not in AUGMENTATIONS:
            raise ValueError(f"photometrics must be one of {', '.join(AUGMENTATIONS)}, got {self.photometrics!r}")
        object.__setattr__(self, "image_size", tuple(self.image_size))
        _ = self.synthesis  # validates the sizes early, naming them
        if self.kind == "classification":
            never = unreachable_bins(self.rho, self.bins, self.input_size / (self.patch_size or self.input_size))
            if never:
                raise ValueError(
                    f"bins={self.bins} with rho={self.rho}: {len(never)} bins are narrower than a pixel "
                    f"and never a target; use at most {2 * self.synthesis.rho + 1} bins"
                )

    @property
    def synthesis(self):
        """The :class:`SynthesisConfig` of on-the-fly pairs (before any resize to ``input_size``)."""
        patch = self.patch_size or self.input_size
        return SynthesisConfig(self.image_size, patch, self.rho * patch // self.input_size)

    def model_options(self):
        """The :func:`~hnet_keras.nets.models.build_model` options of the recipe."""
        return model_options(**dataclasses.asdict(self))

    def description(self):
        """The checkpoint description of the recipe's model (see :mod:`hnet_keras.nets.checkpoint`).

        Initial weights are left out: a checkpoint holds its own."""
        options = {key: value for key, value in self.model_options().items() if key != "weights"}
        return describe_model(self.kind, options, self.rho)


PRESETS = {
    # DeTone et al. 2016, section 4: SGD, momentum 0.9, lr 0.005 divided by 10 every
    # 30,000 iterations, 90,000 iterations of batch 64, 128x128 patches, rho 32.
    "paper": Preset(name="paper"),
    # A CPU-sized version: 64x64 patches of images scaled to 192x144 (on 2 cores, patches
    # a third of the image wide learned fastest), rho 16, a quarter of the filters and
    # FC units, no dropout (the small model underfits) and Adam, which leaves the
    # initial plateau much sooner than SGD at this size.
    "cpu": Preset(name="cpu", image_size=(192, 144), input_size=64, rho=16, width=0.25, dropout=False,
                  iterations=6000, steps_per_epoch=250, optimizer="adam", learning_rate=0.002,
                  lr_drop_every=2500, validation_batches=8),
    # Phase 1 of the earlier checkpoint kept in checkpoints/hnet_compact: the cpu preset's
    # model on half-scale pairs (160x120 images). Its reproduce.py then goes on to
    # 28,000 iterations on 128 px pairs resized to 64 px, which is that checkpoint.
    "compact": Preset(name="compact", image_size=(160, 120), input_size=64, rho=16, width=0.25, dropout=False,
                      batch_size=32, iterations=24_000, steps_per_epoch=500, optimizer="adam",
                      learning_rate=0.001, lr_drop_every=18_000, validation_batches=8),
    # Quarter-scale pairs (32 px, rho 8) for a quick CPU run; the notebooks' live runs
    # (hnet_keras.experiments) start from it.
    "tiny": Preset(name="tiny", image_size=(96, 72), input_size=32, rho=8, width=0.25, dropout=False,
                   iterations=1000, steps_per_epoch=250, optimizer="adam", learning_rate=0.002,
                   lr_drop_every=None, validation_batches=4, bins=17),
    # The iterative correlation model (hnet_keras.nets.iterative) on 128 px pairs resized to
    # 64, augmented, with the recipe of its family (AdamW, warm-up, cosine, batch 32).
    # checkpoints/hnet_iterative/reproduce.py trains this preset with train(), like every run.
    "iterative": Preset(name="iterative", kind="iterative", input_size=64, patch_size=128, rho=16, batch_size=32,
                        iterations=10_000, steps_per_epoch=250, optimizer="adamw", learning_rate=8e-4,
                        lr_drop_every=None, warmup_steps=500, augment=True, validation_batches=16),
    # The iterative model for real photographs (issue 18): B moved by up to +-45 degrees of
    # rotation, zoom 0.5-2, 50 degrees of viewpoint and half a patch of shift
    # (hnet_keras.data.motion.LARGE_MOTION), patches changed on their own by the default
    # augmentation plus illumination gradients, vignetting and JPEG, from photos prepared at
    # 480x360 so the quadrilaterals fit. checkpoints/hnet_large_motion/reproduce.py fine-tunes
    # the shipped iterative checkpoint with it.
    "large_motion": Preset(name="large_motion", kind="iterative", image_size=(480, 360), input_size=64,
                           patch_size=128, rho=16, batch_size=32, iterations=12_000, steps_per_epoch=250,
                           optimizer="adamw", learning_rate=4e-4, lr_drop_every=None, warmup_steps=250,
                           augment=True, motion="large", photometrics="real", validation_batches=16),
    # A wiring check: trains a tiny model end to end in a few seconds.
    "smoke": Preset(name="smoke", image_size=(64, 48), input_size=32, rho=8, width=0.125, batch_size=16,
                    iterations=40, steps_per_epoch=10, optimizer="adam", learning_rate=0.002,
                    lr_drop_every=20, validation_batches=2, bins=17),
}


def get_preset(preset="smoke", **overrides):
    """A :class:`Preset` by name (or as given), with fields replaced by ``overrides``."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Preset)}
    if unknown:
        raise ValueError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(preset, **overrides) if overrides else preset


BUDGETS = ("live", "full", "gpu", "paper")

EXPERIMENTS = ("regression", "classification", "rho", "ablation", "transfer", "iterative")
"""The experiments of notebooks 03, 05, 06, 07, 08 and 11, in that order."""

@dataclass(frozen=True)
class Run:
    """One training run of an experiment: a label and its recipe (a :class:`~hnet_keras.training.run.Preset`)."""

    name: str
    preset: object


# The live recipe: 32 px patches of photos scaled to 96x72 (a quarter of the paper's
# 128 px and 320x240), AdamW with a short warm-up and cosine decay.
_LIVE = dict(image_size=(96, 72), input_size=32, rho=8, width=0.25, dropout=False, batch_size=64,
             standardize=True, optimizer="adamw", learning_rate=2e-3, warmup_steps=100, lr_drop_every=None)
# What a paper run keeps of an experiment's changes: the model and rho, not the CPU sizes
# (nor the live classification's 17 bins: the paper's 21 reach every bin at rho 32).
_PAPER_FIELDS = ("kind", "dropout", "batchnorm", "weights", "rho")


GPU_STEPS = 6000
"""Steps of every run at the ``gpu`` budget (64 pairs of 128 px each)."""
# The GPU recipe: the paper's sizes (128 px patches of 320x240 images, rho 32, the full-width
# model) with the live run's optimizer (AdamW, warm-up, cosine), which leaves the identity's
# plateau far sooner than the paper's SGD. About 2.9 PFLOP for the paper's model (7.5 GFLOP a
# pair, forward and backward): an estimate of 10-20 minutes on one T4-class GPU, not a measurement.
_GPU = dict(standardize=True, optimizer="adamw", learning_rate=1e-3, warmup_steps=300, lr_drop_every=None,
            iterations=GPU_STEPS, steps_per_epoch=500, validation_batches=8)


def _recipe(budget, live_steps, full_steps, **fields):
    """The preset of one run at a budget; ``fields`` change the model (kind, dropout, rho...).

    ``paper`` is the "paper" preset (SGD, momentum 0.9, lr 0.005 divided by 10 every
    30,000 iterations, 90,000 iterations of 64 pairs, 128 px patches, rho 32, 21 bins);
    ``gpu`` is the same model and sizes with AdamW for :data:`GPU_STEPS` steps.
    """
    if budget == "paper":
        return get_preset("paper", **{key: value for key, value in fields.items() if key in _PAPER_FIELDS})
    if budget == "gpu":
        paper = {key: value for key, value in fields.items() if key in _PAPER_FIELDS + ("image_size",)}
        return get_preset("paper", **{**_GPU, **paper})
    steps = live_steps if budget == "live" else full_steps
    return get_preset("tiny", **{**_LIVE, "iterations": steps, "steps_per_epoch": max(1, steps // 8), **fields})


def _rho_fields(rho_at_128, budget):
    """rho given at 128 px, scaled to the run's patch; the image is grown to keep the margins."""
    if budget in ("paper", "gpu"):
        return {"rho": rho_at_128}
    rho = int(round(rho_at_128 * _LIVE["input_size"] / REPORT_PATCH))
    side = max(_LIVE["image_size"][1], _LIVE["input_size"] + 2 * rho)
    return {"rho": rho, "image_size": (side * 4 // 3, side)}


def experiment_runs(experiment, budget="live", steps=None):
    """The runs of an experiment at a budget, as a list of :class:`Run`.

    Args:
        experiment: one of :data:`EXPERIMENTS`.
        budget: one of :data:`BUDGETS`.
        steps: training steps of every run instead of the budget's.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}, got {experiment!r}")
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    def recipe(live, full, **fields):
        preset = _recipe(budget, live, full, **fields)
        if steps is None:
            return preset
        return get_preset(preset, iterations=steps, steps_per_epoch=max(1, min(preset.steps_per_epoch, steps // 8)))

    if experiment == "regression":
        return [Run("regression", recipe(1000, 4000))]
    if experiment == "classification":
        return [Run("classification", recipe(1600, 4000, kind="classification", bins=17))]
    if experiment == "rho":
        return [Run(f"rho {rho}", recipe(720, 2500, **_rho_fields(rho, budget))) for rho in (20, 32, 40)]
    if experiment == "ablation":
        return [
            Run(f"dropout {'on' if dropout else 'off'}, batchnorm {'on' if batchnorm else 'off'}",
                recipe(800, 2500, dropout=dropout, batchnorm=batchnorm))
            for dropout in (True, False) for batchnorm in (True, False)
        ]
    if experiment == "transfer":
        return [
            Run("MobileNetV2, ImageNet weights", recipe(800, 2500, kind="mobilenet", width=0.35, weights="imagenet")),
            Run("MobileNetV2, from scratch", recipe(800, 2500, kind="mobilenet", width=0.35)),
            Run("paper trunk, from scratch", recipe(800, 2500)),
        ]
    if budget in ("paper", "gpu"):
        iterations = steps if steps is not None else (GPU_STEPS if budget == "gpu" else None)
        return [Run("iterative", get_preset("iterative", **({} if iterations is None else {"iterations": iterations})))]
    return [Run("iterative", recipe(600, 2500, kind="iterative", batch_size=32, refinements=4))]
